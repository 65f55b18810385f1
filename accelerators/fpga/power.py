"""The simple FPGA power model and the result types both FPGA templates return.

Energy of running ``cycles`` clock cycles (numbers per board in ``boards/*.yaml``, with sources):

    E = P_static * t  +  DSPs x cycles x e_dsp  +  BRAM18s x cycles x e_bram  +  DRAM bytes x e_dram

Every DSP and BRAM the design occupies is charged for every cycle (clock-enabled the whole time),
which makes the dynamic part an upper bound; EDP is ``E * t`` in joule-seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .boards import Board, FPGAError, ResourceUse, Violation, design_label, over_budget_message, violations


def energy_terms(board: Board, cycles, dsp, bram18, dram_bytes, clock_mhz: float | None = None) -> dict:
    """Energy (mJ) split into static, DSP, BRAM and DRAM parts, and EDP (J*s).

    Works elementwise on numpy arrays as well as on numbers.
    """
    p = board.power
    f_hz = (board.clock_mhz if clock_mhz is None else clock_mhz) * 1e6
    t_s = cycles / f_hz
    static_j = p.static_w * t_s
    dsp_j = dsp * cycles * p.dsp_pj_per_cycle * 1e-12
    bram_j = bram18 * cycles * p.bram18_pj_per_cycle * 1e-12
    dram_j = dram_bytes * p.dram_pj_per_byte * 1e-12
    total_j = static_j + dsp_j + bram_j + dram_j
    return {"static_mj": static_j * 1e3, "dsp_mj": dsp_j * 1e3, "bram_mj": bram_j * 1e3,
            "dram_mj": dram_j * 1e3, "energy_mj": total_j * 1e3, "edp_j_s": total_j * t_s}


def network_energy(board: Board, layers, res: ResourceUse | None = None) -> dict:
    """Energy of a whole network: from the one design's resources (``res``), or, when every layer
    has its own design (layer-specific mode), the sum of the per-layer energies."""
    cycles = sum(l.cycles for l in layers)
    t_s = cycles / (board.clock_mhz * 1e6)
    if res is not None:
        d = energy_terms(board, cycles, res.dsp, res.bram18, sum(l.dram_bytes for l in layers))
    else:
        e_mj = math.fsum(l.energy_mj for l in layers)
        d = {"energy_mj": e_mj, "edp_j_s": e_mj * 1e-3 * t_s}
    d["power_w"] = d["energy_mj"] * 1e-3 / t_s if t_s > 0 else 0.0
    return d


@dataclass(frozen=True)
class FPGALayerResult:
    """One layer on one FPGA design. ``terms`` holds the template's own quantities."""

    name: str
    model: str          # "zhang15" | "hotnas"
    engine: str         # "conv" | "dwconv"
    macs: int
    cycles: int
    latency_ms: float
    gops: float
    bound: str          # "compute" | "memory" (zhang15) | "compute" / "<x>-port" (hotnas)
    dram_bytes: int
    energy_mj: float
    terms: dict = field(default_factory=dict)
    resources: ResourceUse | None = None
    design: dict | None = None

    def to_dict(self) -> dict:
        d = {"name": self.name, "model": self.model, "engine": self.engine, "macs": self.macs,
             "cycles": self.cycles, "latency_ms": self.latency_ms, "gops": self.gops,
             "bound": self.bound, "dram_bytes": self.dram_bytes, "energy_mj": self.energy_mj,
             "terms": self.terms}
        if self.resources is not None:
            d["resources"] = self.resources.to_dict()
        if self.design is not None:
            d["design"] = self.design
        return d


@dataclass(frozen=True)
class FPGANetworkResult:
    """A network on a board: per-layer results, totals, resources, limits broken, energy."""

    network: str
    model: str
    board: str
    clock_mhz: float
    mode: str                       # "design" | "cross-layer" | "layer-specific"
    design: dict | None             # None in layer-specific mode (each layer has its own)
    layers: tuple[FPGALayerResult, ...]
    resources: ResourceUse
    violations: tuple[Violation, ...]
    energy: dict

    @property
    def cycles(self) -> int:
        return sum(l.cycles for l in self.layers)

    @property
    def latency_ms(self) -> float:
        return self.cycles / (self.clock_mhz * 1e3)

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def gops(self) -> float:
        return 2 * self.macs / (self.latency_ms * 1e6)

    @property
    def dram_bytes(self) -> int:
        return sum(l.dram_bytes for l in self.layers)

    @property
    def fits(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        return {
            "network": self.network, "model": self.model, "board": self.board,
            "clock_mhz": self.clock_mhz, "mode": self.mode, "design": self.design,
            "layers": [l.to_dict() for l in self.layers],
            "total": {"cycles": self.cycles, "latency_ms": self.latency_ms, "gops": self.gops,
                      "macs": self.macs, "dram_bytes": self.dram_bytes, **self.energy},
            "resources": self.resources.to_dict(),
            "violations": [v.to_dict() for v in self.violations],
            "fits": self.fits,
        }


def network_result(network, design, board: Board, model: str, resources, layer_result, *,
                   allow_over_budget: bool, mode: str) -> "FPGANetworkResult":
    """Every layer of ``network`` on one design of ``model``: ``resources(design, layers)``
    sizes the buffers for the network, ``layer_result(...)`` costs one layer. With
    ``allow_over_budget=False`` a design that does not fit raises ``FPGAError`` naming each
    resource with the amount used and available."""
    res = resources(design, network)
    broken = violations(res, board)
    if broken and not allow_over_budget:
        raise FPGAError(over_budget_message(f"{model} design {design_label(design)}", board, broken))
    layers = tuple(layer_result(l, design, board, res, with_resources=False) for l in network.layers)
    return FPGANetworkResult(network=network.name, model=model, board=board.name, clock_mhz=board.clock_mhz,
                             mode=mode, design=design.to_dict(), layers=layers, resources=res,
                             violations=tuple(broken), energy=network_energy(board, layers, res))
