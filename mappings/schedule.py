"""Whole-network cost under a schedule: map every layer's tile with the per-layer mapper (shape
cache shared with ``evaluate_network``) and cost the stacks (``accelerators.schedule``).

``layer_by_layer(network)`` is the schedule of stacks of one layer: its totals equal
``evaluate_network``'s. A schedule is saved as YAML or JSON with layer names, so a file written
for one network replays on it (``Schedule.to_dict`` / ``schedule_from_dict``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from accelerators.cost import COMPONENTS
from accelerators.schedule import (OVERLAP, Flow, Stack, StackCost, aux_onchip_cost, check_stack, flow,
                                   fused_aux_onchip, plan_stack, pool_onchip_cost, stack_cost,
                                   tile_layer_cost)
from accelerators.spec import Accelerator, load_accelerator
from models.errors import MappingError, WorkloadError
from models.layer import Layer
from models.network import Network

from .cache import MappingCache, default_cache
from .evaluate import aux_cost
from .optimizers import check_objective, check_optimizer, optimize, settings


@dataclass(frozen=True)
class Schedule:
    """Stacks covering the network's layers in order, each at most once."""

    stacks: tuple[Stack, ...]
    name: str = "custom"

    def to_dict(self, network: Network) -> dict:
        return {"schedule": self.name, "network": network.name, "stacks": [
            {"layers": [network.layers[s.first].name, network.layers[s.last].name],
             "tile": list(s.tile) if s.tile else None, "overlap": s.overlap} for s in self.stacks]}


def layer_by_layer(network: Network) -> Schedule:
    return Schedule(tuple(Stack(i, i) for i in range(len(network.layers))), "layer")


def check_schedule(network: Network, sched: Schedule, fl: Flow | None) -> None:
    """Stacks must cover every layer once, in order, and each be a valid stack."""
    nxt = 0
    for st in sched.stacks:
        if st.first != nxt:
            raise WorkloadError(f"schedule: stacks must cover the layers in order; expected a stack starting at "
                                f"'{network.layers[nxt].name}' (layer {nxt}), got layer {st.first}"
                                if nxt < len(network.layers) else "schedule: stacks go past the last layer")
        if fl is not None:
            check_stack(network, fl, st)
        elif st.first != st.last or st.tile is not None:
            flow(network)  # raises: fused stacks need graph edges
        nxt = st.last + 1
    if nxt != len(network.layers):
        raise WorkloadError(f"schedule: layers from '{network.layers[nxt].name}' (layer {nxt}) on are in no stack")


@dataclass
class ScheduleCost:
    network: str
    accelerator: str
    schedule: Schedule
    stacks: list
    cycles: int
    energy_pj: float
    energy_by_component: dict
    clock_mhz: float
    macs: int
    layer_macs: int
    aux: list = field(default_factory=list)
    seconds: float = 0.0
    network_obj: Network | None = None

    @property
    def edp(self) -> float:
        return self.energy_pj * self.cycles

    @property
    def latency_ms(self) -> float:
        return self.cycles / (self.clock_mhz * 1e3)

    @property
    def dram_words(self) -> dict:
        return {k: sum(s.dram_words[k] for s in self.stacks) for k in ("weights", "activations")}

    @property
    def energy_by_space(self) -> dict:
        """Energy of the MAC layers by data space (the non-MAC operators' are apart)."""
        return {x: sum(s.energy_by_space[x] for s in self.stacks) for x in ("W", "I", "O")}

    @property
    def peak_glb_bytes(self) -> float:
        return max(s.peak_glb_bytes for s in self.stacks)

    def to_dict(self) -> dict:
        d = {"network": self.network, "accelerator": self.accelerator, "schedule": self.schedule.name,
             "total": {"cycles": self.cycles, "latency_ms": self.latency_ms, "energy_pj": self.energy_pj,
                       "edp": self.edp, "energy_by_component": self.energy_by_component,
                       "energy_by_space": self.energy_by_space,
                       "dram_words": self.dram_words, "macs": self.macs, "layer_macs": self.layer_macs,
                       "recompute_macs": self.macs - self.layer_macs, "peak_glb_bytes": self.peak_glb_bytes,
                       "stacks": len(self.stacks)},
             "stacks": [s.to_dict() for s in self.stacks], "seconds": self.seconds}
        if self.network_obj is not None:
            d["replay"] = self.schedule.to_dict(self.network_obj)
        if self.aux:
            d["aux"] = self.aux
        return d


class StackMapper:
    """Maps and costs stacks of one network on one accelerator, each distinct tile shape once."""

    def __init__(self, network: Network, accelerator, optimizer: str = "auto", objective: str = "edp",
                 cache: MappingCache | bool | None = None, seed: int = 0, budget: int | None = None):
        check_optimizer(optimizer)
        check_objective(objective)
        self.network, self.acc = network, load_accelerator(accelerator)
        self.optimizer, self.objective, self.seed, self.budget = optimizer, objective, seed, budget
        self.cache = default_cache() if cache is None else (MappingCache() if cache is False else cache)
        self.key = dict(settings(optimizer, budget), seed=seed)
        self._flow: Flow | None = None
        self._memo: dict = {}
        # a schedule search asks for the same tile shapes in many stacks: each mapping and each
        # in-context choice is looked up once (the shape cache's key hashes the accelerator)
        self._maps: dict = {}
        self._tiles: dict = {}

    @property
    def flow(self) -> Flow:
        if self._flow is None:
            self._flow = flow(self.network)
        return self._flow

    def mapping(self, layer: Layer, optimizer: str | None = None):
        """The shape cache's best mapping of ``layer`` (standalone: its data to and from DRAM)."""
        optimizer = optimizer or self.optimizer
        memo = (layer, optimizer)
        if memo not in self._maps:
            key = self.key if optimizer == self.optimizer else dict(settings(optimizer, None), seed=self.seed)
            res, _ = self.cache.get_or_compute(
                layer, self.acc, self.objective, key,
                lambda: optimize(layer, self.acc, optimizer=optimizer, objective=self.objective, seed=self.seed,
                                 budget=self.budget if optimizer == self.optimizer else None))
            self._maps[memo] = res.mapping.to_arrays()
        return self._maps[memo]

    def mapping_in(self, plan, k: int):
        """The mapping of a stack's ``k``-th tile layer. With data on chip, the mapper's
        standalone choice is re-ranked in context: the configured optimizer's and the heuristic
        mapper's mappings are costed with the layer's on-chip data and the lower EDP kept (the
        standalone optimum pays for DRAM traffic the stack does not have; on MobileNetV2 on
        Eyeriss the re-ranking lowers the fused EDP by a fifth)."""
        return self._tile(plan, k)[0]

    def _tile(self, plan, k: int) -> tuple:
        """``(mapping, tile_layer_cost)`` of a stack's ``k``-th tile layer (``mapping_in``), once
        per tile layer and context: a schedule search meets the same ones in many stacks."""
        scale = plan.dram_scale[k] if plan.dram_scale else None
        memo = (plan.tile_layers[k], plan.onchip[k], tuple(sorted(scale.items())) if scale else None)
        if memo not in self._tiles:
            layer = plan.tile_layers[k]
            best = (m := self.mapping(layer), tile_layer_cost(self.acc, plan, k, m))
            if (plan.onchip[k] or scale) and self.optimizer != "heuristic":
                alt = (m := self.mapping(layer, "heuristic"), tile_layer_cost(self.acc, plan, k, m))
                if alt[1][0].valid and (not best[1][0].valid or alt[1][0].edp < best[1][0].edp):
                    best = alt
            self._tiles[memo] = best
        return self._tiles[memo]

    def cost(self, st: Stack) -> StackCost:
        """The stack's cost (weights kept on chip when that fits and is cheaper); ``ValueError``
        when it fits the global buffer in no way."""
        key = (st.first, st.last, st.tile, st.overlap)
        if key in self._memo:
            hit = self._memo[key]
            if isinstance(hit, Exception):
                raise hit
            return hit
        single = st.first == st.last and st.tile is None
        fl = None if single else self.flow
        best, err = None, None
        for keep in ((False,) if single else (True, False)):
            plan = plan_stack(self.network, fl, st, self.acc, keep) if fl else _single_plan(self.network, st)
            try:
                tiles = [self._tile(plan, k) for k in range(len(plan.tile_layers))]
                c = stack_cost(self.network, plan, st, self.acc, [t[0] for t in tiles], [t[1] for t in tiles])
            except (ValueError, MappingError) as e:
                err = e
                continue
            if best is None or c.energy_pj * c.cycles < best.energy_pj * best.cycles:
                best = c
        self._memo[key] = best if best is not None else ValueError(str(err))
        if best is None:
            raise ValueError(str(err))
        return best


def _single_plan(network: Network, st: Stack):
    from accelerators.schedule import StackPlan
    return StackPlan(1, [network.layers[st.first]], [frozenset()], [0.0], False, 0.0)


def evaluate_schedule(network: Network, accelerator, schedule: Schedule | None = None, optimizer: str = "auto",
                      objective: str = "edp", cache: MappingCache | bool | None = None, seed: int = 0,
                      budget: int | None = None, aux: bool = False, mapper: StackMapper | None = None) -> ScheduleCost:
    """Cost of ``network`` on ``accelerator`` under ``schedule`` (layer-by-layer by default).

    ``aux=True`` also costs the non-MAC operators: residual adds whose operands stay on chip
    in a fused stack cost their element operations only, a pool crossed by a stack its element
    operations per tile (recomputed overlap included; plus its output written to DRAM when a
    reader outside the stack needs it), every other operator is an unfused pass over DRAM
    (``mappings.evaluate.aux_cost``)."""
    t0 = time.perf_counter()
    sm = mapper or StackMapper(network, accelerator, optimizer, objective, cache, seed, budget)
    acc: Accelerator = sm.acc
    schedule = schedule or layer_by_layer(network)
    fused = any(st.first != st.last or st.tile is not None for st in schedule.stacks)
    check_schedule(network, schedule, sm.flow if fused else None)
    stacks = []
    for st in schedule.stacks:
        try:
            stacks.append(sm.cost(st))
        except ValueError as e:
            names = f"'{network.layers[st.first].name}'..'{network.layers[st.last].name}'"
            raise WorkloadError(f"schedule: stack {names} (tile {st.tile}, {st.overlap}): {e}") from None
    cycles = sum(s.cycles for s in stacks)
    comp = {c: sum(s.energy_by_component.get(c, 0.0) for s in stacks) for c in COMPONENTS}
    aux_rows = []
    if aux:
        onchip = fused_aux_onchip(network, sm.flow, list(schedule.stacks)) if fused else set()
        pooled = {p["name"]: (p, s.tiles) for s in stacks for p in s.pools}
        for op in network.aux:
            if op.name in pooled:
                summary, tiles = pooled[op.name]
                cyc, energy = pool_onchip_cost(op, summary, tiles, acc)
                row = {"name": op.name, "kind": op.kind, "cycles": cyc, "energy_pj": sum(energy.values()),
                       "dram_words": summary["output_dram_words"], "onchip": True, "ops": summary["ops"]}
            elif op.name in onchip:
                cyc, energy = aux_onchip_cost(op, acc)
                row = {"name": op.name, "kind": op.kind, "cycles": cyc, "energy_pj": sum(energy.values()),
                       "dram_words": 0, "onchip": True}
            else:
                a = aux_cost(op, acc)
                cyc, energy = a.cycles, a.energy_by_component
                row = {**a.to_dict(), "onchip": False}
            cycles += cyc
            for c, e in energy.items():
                comp[c] += e
            aux_rows.append(row)
    return ScheduleCost(network.name, acc.name, schedule, stacks, int(cycles), sum(comp.values()), comp,
                        acc.clock_mhz, sum(s.macs for s in stacks), network.macs, aux_rows,
                        time.perf_counter() - t0, network)


def schedule_from_dict(d, network: Network, source: str = "schedule") -> Schedule:
    """A schedule read from ``Schedule.to_dict`` output (validated by ``models.schema.ScheduleSpec``)."""
    from models.inputs import validate
    from models.schema import ScheduleSpec
    spec = validate(ScheduleSpec, d, source, error=WorkloadError)
    index = {l.name: i for i, l in enumerate(network.layers)}
    stacks = []
    for k, s in enumerate(spec.stacks):
        ends = []
        for name in s.layers:
            if name not in index:
                raise WorkloadError(f"{source}: stacks[{k}].layers: no layer '{name}' in network '{network.name}'")
            ends.append(index[name])
        stacks.append(Stack(ends[0], ends[-1], tuple(s.tile) if s.tile else None, s.overlap))
    sched = Schedule(tuple(stacks), spec.schedule or "file")
    return sched


__all__ = ["OVERLAP", "Schedule", "ScheduleCost", "StackMapper", "check_schedule", "evaluate_schedule",
           "layer_by_layer", "schedule_from_dict"]
