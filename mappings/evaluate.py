"""Whole-network cost: map every layer (each distinct shape once) and add the layers up.

Layers run one after the other, so cycles and energy add; the network's EDP is its total
energy times its total cycles (not the sum of per-layer EDPs), and its lower bound is built the
same way from the per-layer bounds.

Non-MAC operators (pooling, element-wise adds, activations: the network's ``aux``) are left
out by default, as in the NAAS cost model. With ``aux=True`` each one is costed as an unfused
DRAM-to-DRAM pass (see :func:`aux_cost`) and added to the totals; the lower bound stays that
of the MAC layers.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from accelerators.cost import COMPONENTS, Cost, LowerBound, lower_bound
from accelerators.spec import Accelerator, load_accelerator
from models.layer import Layer
from models.network import AuxOp, Network

from .cache import MappingCache, default_cache
from .optimizers import MapResult, check_objective, check_optimizer, optimize, settings


@dataclass
class LayerCost:
    """One layer of a network: its mapping, cost and lower bound."""

    name: str
    layer: Layer
    result: MapResult
    lower: LowerBound
    cached: bool = False

    @property
    def cost(self) -> Cost:
        return self.result.cost

    @property
    def mapping(self):
        return self.result.mapping

    @property
    def ratio_to_lower_bound(self) -> float:
        """EDP over its lower bound (>= 1)."""
        return self.cost.edp / self.lower.edp

    def to_dict(self) -> dict:
        l, c = self.layer, self.cost
        return {"name": self.name, "op": l.op, "dims": l.dims, "stride": l.stride, "dilation": l.dilation,
                "padding": l.padding, "macs": l.macs, "cycles": c.cycles, "compute_cycles": c.compute_cycles,
                "pipeline_cycles": c.pipeline_cycles, "startup_cycles": c.startup_cycles,
                "tail_cycles": c.tail_cycles, "latency_ms": c.latency_ms, "energy_pj": c.energy_pj,
                "edp": c.edp, "utilization": c.utilization, "bound": c.bound,
                "energy_by_component": c.energy_by_component, "lower_bound": self.lower.to_dict(),
                "ratio_to_lower_bound": self.ratio_to_lower_bound, "mapping": self.mapping.to_dict(),
                "evaluated": self.result.evaluated, "cached": self.cached}


@dataclass(frozen=True)
class AuxCost:
    """One non-MAC operator run as an unfused pass over DRAM."""

    name: str
    kind: str
    cycles: int
    latency_ms: float
    energy_by_component: dict  # "dram" (the traffic) and "mac" (the element operations)
    dram_words: int
    bound: str  # "compute" or "dram"

    @property
    def energy_pj(self) -> float:
        return sum(self.energy_by_component.values())

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "cycles": self.cycles, "latency_ms": self.latency_ms,
                "energy_pj": self.energy_pj, "energy_by_component": self.energy_by_component,
                "dram_words": self.dram_words, "bound": self.bound}


def aux_cost(op: AuxOp, acc: Accelerator) -> AuxCost:
    """Cost of a non-MAC operator: its inputs read from and its outputs written to DRAM once
    (no fusion with the neighbouring layers), one input element per PE per cycle, at whichever
    of the compute and DRAM roofs binds; energy is the DRAM traffic plus one MAC-energy
    operation per input element (an add or compare costs at most a MAC)."""
    from accelerators.cost import transfer_weights

    words = op.in_elems + op.out_elems
    compute = -(-op.in_elems // acc.num_pes)
    w, bw = transfer_weights(acc, "dram")  # activations in and out: the input word width
    dram = math.ceil(words * w["I"] / bw) if words else 0
    cycles = int(max(compute, dram))
    energy = {"dram": float(op.in_elems * acc.dram.read_energy_pj + op.out_elems * acc.dram.write_energy_pj),
              "mac": float(op.in_elems * acc.mac_energy_pj)}
    return AuxCost(op.name, op.kind, cycles, cycles / (acc.clock_mhz * 1e3), energy, int(words),
                   "compute" if compute >= dram else "dram")


@dataclass
class NetworkTotal:
    macs: int
    cycles: int
    latency_ms: float
    energy_pj: float
    energy_by_component: dict
    utilization: float
    lower_bound_cycles: int
    lower_bound_energy_pj: float

    @property
    def edp(self) -> float:
        """Total energy x total cycles (pJ x cycles)."""
        return self.energy_pj * self.cycles

    @property
    def lower_bound_edp(self) -> float:
        return self.lower_bound_energy_pj * self.lower_bound_cycles

    @property
    def ratio_to_lower_bound(self) -> float:
        return self.edp / self.lower_bound_edp

    def to_dict(self) -> dict:
        return {"macs": self.macs, "cycles": self.cycles, "latency_ms": self.latency_ms,
                "energy_pj": self.energy_pj, "energy_by_component": self.energy_by_component,
                "edp": self.edp, "edp_js": self.energy_pj * 1e-12 * self.latency_ms * 1e-3,
                "utilization": self.utilization,
                "lower_bound": {"cycles": self.lower_bound_cycles, "energy_pj": self.lower_bound_energy_pj,
                                "edp": self.lower_bound_edp},
                "lower_bound_edp": self.lower_bound_edp, "ratio_to_lower_bound": self.ratio_to_lower_bound}


@dataclass
class NetworkCost:
    network: str
    accelerator: str
    optimizer: str
    objective: str
    layers: list
    total: NetworkTotal
    seconds: float = 0.0
    distinct_shapes: int = 0
    cache: dict = field(default_factory=dict)
    aux: list = field(default_factory=list)  # AuxCost per non-MAC operator, when costed

    def to_dict(self) -> dict:
        d = {"network": self.network, "accelerator": self.accelerator, "optimizer": self.optimizer,
             "objective": self.objective, "layers": [l.to_dict() for l in self.layers],
             "total": self.total.to_dict(), "distinct_shapes": self.distinct_shapes,
             "seconds": self.seconds, "cache": self.cache}
        if self.aux:
            d["aux"] = [a.to_dict() for a in self.aux]
        return d


def _total(layers: list[LayerCost], acc: Accelerator, aux: list[AuxCost] = ()) -> NetworkTotal:
    cycles = sum(l.cost.cycles for l in layers) + sum(a.cycles for a in aux)
    macs = sum(l.layer.macs for l in layers)
    comp = {c: sum(l.cost.energy_by_component.get(c, 0.0) for l in layers) for c in COMPONENTS}
    for a in aux:
        for c, e in a.energy_by_component.items():
            comp[c] += e
    aux_energy = sum(a.energy_pj for a in aux)
    return NetworkTotal(
        macs=macs, cycles=cycles, latency_ms=cycles / (acc.clock_mhz * 1e3),
        energy_pj=sum(l.cost.energy_pj for l in layers) + aux_energy, energy_by_component=comp,
        utilization=macs / (cycles * acc.num_pes),
        lower_bound_cycles=sum(l.lower.cycles for l in layers),
        lower_bound_energy_pj=sum(l.lower.energy_pj for l in layers))


def evaluate_network(network: Network, accelerator, optimizer: str = "auto", objective: str = "edp",
                     cache: MappingCache | bool | None = None, seed: int = 0, budget: int | None = None,
                     progress: bool = False, aux: bool = False) -> NetworkCost:
    """Map every layer of ``network`` on ``accelerator`` and total the costs.

    ``aux=True`` also costs the network's non-MAC operators (:func:`aux_cost`) and adds them
    to the totals.

    ``cache``: a ``MappingCache``, ``None`` for the process-wide one (``default_cache()``), or
    ``False`` for none (repeated shapes inside the network are still mapped once). Layer order
    is preserved. A layer that fits no mapping raises ``MappingError`` naming it and the level.
    """
    check_optimizer(optimizer)
    check_objective(objective)
    acc = load_accelerator(accelerator)
    if cache is None:
        cache = default_cache()
    elif cache is False:
        cache = MappingCache()
    t0 = time.perf_counter()
    key = dict(settings(optimizer, budget), seed=seed)
    by_shape: dict[tuple, tuple[MapResult, bool, LowerBound]] = {}
    hits0, disk0, misses0 = cache.hits, cache.disk_hits, cache.misses
    shapes = network.unique_shapes()
    it = shapes
    if progress:
        from tqdm import tqdm
        it = tqdm(shapes, desc=f"mapping {network.name}", unit="shape", leave=False)
    for layer, _count in it:
        res, was_cached = cache.get_or_compute(
            layer, acc, objective, key,
            lambda layer=layer: optimize(layer, acc, optimizer=optimizer, objective=objective, seed=seed,
                                         budget=budget))
        by_shape[layer.shape_key] = (res, was_cached, lower_bound(layer, acc))
    layers = []
    for layer in network.layers:
        res, was_cached, lb = by_shape[layer.shape_key]
        layers.append(LayerCost(name=layer.name, layer=layer, result=res, lower=lb, cached=was_cached))
    aux_costs = [aux_cost(op, acc) for op in network.aux] if aux else []
    return NetworkCost(network=network.name, accelerator=acc.name, optimizer=optimizer, objective=objective,
                       layers=layers, total=_total(layers, acc, aux_costs), seconds=time.perf_counter() - t0,
                       distinct_shapes=len(shapes),
                       cache={"hits": cache.hits - hits0, "disk_hits": cache.disk_hits - disk0,
                              "misses": cache.misses - misses0,
                              "directory": str(cache.directory) if cache.directory else None},
                       aux=aux_costs)
