"""Analytical latency: the accelerator cost model (``analytical:``) and the FPGA tiling
templates (``fpga:``). Deterministic, so ``spread`` is 0 and ``samples`` 1.

- ``analytical:<preset | accelerator.yaml>[?mapper=NAME][&aux=1]``: every layer mapped on the
  accelerator by ``mappings.evaluate.evaluate_network`` (mapper ``heuristic`` by default, the
  fast one; ``auto``, ``random``, ``evolution``, ``exhaustive`` also work), each distinct layer
  shape once per backend instance; the latency is the network's total cycles at the clock.
  ``aux=1`` adds the non-MAC operators (pooling, element-wise adds) as unfused DRAM passes.
- ``fpga:<board>:<design>``: the network on an FPGA design; ``<design>`` is a HotNAS ZCU102
  preset (``zcu102-1`` ... ``zcu102-9``) or a tiling given inline, ``Tm=..,Tn=..,Tr=..,Tc=..``
  (Zhang et al. FPGA'15; ``dtype=fix16`` optional) or
  ``Tm=..,Tn=..,Tr=..,Tc=..,Tmd=..,Ip=..,Op=..,Wp=..`` (HotNAS). ``fpga:<preset>`` uses the
  preset's own board.
"""
from __future__ import annotations

from models.errors import CodesignError

from .base import LatencyBackend, LatencyError, LatencyResult, Target, register, split_spec

DEFAULT_MAPPER = "heuristic"
HOTNAS_KEYS = ("Tmd", "Ip", "Op", "Wp")


def _spec_options(arg: str, spec: str, known: tuple[str, ...]) -> tuple[str, dict]:
    """``"eyeriss?mapper=auto"`` -> ``("eyeriss", {"mapper": "auto"})``."""
    base, sep, query = arg.partition("?")
    opts = {}
    if sep:
        for part in query.split("&"):
            if not part:
                continue
            k, eq, v = part.partition("=")
            if not eq or k not in known:
                raise LatencyError(f"{spec!r}: bad option {part!r} (known: {', '.join(f'{x}=...' for x in known)})")
            opts[k] = v
    return base.strip(), opts


def _dominant_bound(pairs) -> tuple[str, dict]:
    """The bound holding the most cycles, and cycles per bound, from ``(bound, cycles)`` pairs."""
    per: dict[str, int] = {}
    for bound, cycles in pairs:
        per[bound] = per.get(bound, 0) + int(cycles)
    return max(per, key=per.get), per


@register("analytical")
class AnalyticalBackend(LatencyBackend):
    """Latency from the accelerator cost model with mapped layers (see the module docstring)."""
    scheme = "analytical"

    def __init__(self, spec: str, *, mapper: str | None = None, objective: str = "edp", seed: int = 0,
                 budget: int | None = None, aux: bool | None = None):
        from accelerators.spec import load_accelerator
        from mappings.cache import MappingCache
        from mappings.optimizers import check_objective, check_optimizer

        super().__init__(spec)
        _, arg = split_spec(spec)
        name, opts = _spec_options(arg, spec, ("mapper", "aux"))
        if opts.get("aux", "0") not in ("0", "1"):
            raise LatencyError(f"{spec!r}: aux must be 0 or 1")
        self.aux = bool(aux) if aux is not None else opts.get("aux") == "1"
        if not name:
            raise LatencyError(f"{spec!r}: name an accelerator, e.g. analytical:eyeriss or analytical:<file.yaml>")
        try:
            self.accelerator = load_accelerator(name)
            self.mapper = check_optimizer(mapper or opts.get("mapper") or DEFAULT_MAPPER)
            self.objective = check_objective(objective)
        except CodesignError as e:
            raise LatencyError(str(e)) from None
        self.seed, self.budget = seed, budget
        self.mapping_cache = MappingCache()  # per instance: repeated shapes are mapped once

    def evaluate(self, target: Target):
        """The full ``NetworkCost`` of the target's network (per-layer mappings and costs)."""
        from mappings.evaluate import evaluate_network
        return evaluate_network(target.network, self.accelerator, optimizer=self.mapper, objective=self.objective,
                                cache=self.mapping_cache, seed=self.seed, budget=self.budget, aux=self.aux)

    def _measure(self, target: Target) -> LatencyResult:
        nc = self.evaluate(target)
        t = nc.total
        bound, per = _dominant_bound([(l.cost.bound, l.cost.cycles) for l in nc.layers]
                                     + [(a.bound, a.cycles) for a in nc.aux])
        return LatencyResult(t.latency_ms, 0.0, 1, self.spec,
                             {"accelerator": self.accelerator.name, "mapper": self.mapper, "aux": self.aux,
                              "aux_cycles": sum(a.cycles for a in nc.aux), "cycles": t.cycles,
                              "energy_pj": t.energy_pj, "edp": t.edp, "utilization": t.utilization,
                              "bound": bound, "bound_cycles": per})


def parse_fpga_spec(arg: str):
    """``"<board>:<design>"`` or ``"<preset>"`` -> ``(board, model, design, preset)``; a board
    may be a YAML path (with ``:`` in it only when that file exists)."""
    from pathlib import Path

    from accelerators.fpga import HotNASDesign, Zhang15Design, load_board
    from accelerators.fpga.hotnas import load_preset, preset_board, preset_names

    board_name, sep, design_text = arg.rpartition(":")
    if not sep:
        board_name, design_text = "", arg
    elif not board_name.strip():
        raise LatencyError(f"fpga:{arg}: empty board name: give fpga:<board>:<design> or fpga:<preset>")
    elif ":" in board_name and not Path(board_name).is_file():
        raise LatencyError(f"fpga:{arg}: expected fpga:<board>:<design> (one ':' between board and design)")
    design_text = design_text.strip()
    if not design_text:
        raise LatencyError(f"fpga:{arg}: give a design: fpga:<board>:<preset> (presets: "
                           f"{', '.join(preset_names())}) or fpga:<board>:Tm=..,Tn=..,...")
    try:
        if "=" in design_text:
            keys = {p.split("=", 1)[0].strip() for p in design_text.split(",")}
            if keys & set(HOTNAS_KEYS):
                model, design, preset = "hotnas", HotNASDesign.parse(design_text), None
            else:
                model, design, preset = "zhang15", Zhang15Design.parse(design_text), None
        else:
            model, design, preset = "hotnas", load_preset(design_text), design_text
        if not board_name:
            if preset is None:
                raise LatencyError(f"fpga:{arg}: an inline design needs a board: fpga:<board>:{design_text}")
            board_name = preset_board(preset)
        board = load_board(board_name.strip())
    except LatencyError:
        raise
    except CodesignError as e:
        raise LatencyError(f"fpga:{arg}: {e}") from None
    return board, model, design, preset


@register("fpga")
class FpgaBackend(LatencyBackend):
    """Latency of a network on an FPGA tiling design (see the module docstring)."""
    scheme = "fpga"

    def __init__(self, spec: str, *, allow_over_budget: bool = True):
        super().__init__(spec)
        _, arg = split_spec(spec)
        if not arg:
            raise LatencyError(f"{spec!r}: give fpga:<board>:<design>, e.g. fpga:zcu102:zcu102-1")
        self.board, self.model, self.design, self.preset = parse_fpga_spec(arg)
        self.allow_over_budget = allow_over_budget

    def evaluate(self, target: Target):
        """The full ``FPGANetworkResult`` of the target's network."""
        from accelerators.fpga import hotnas_network, zhang15_network

        run = hotnas_network if self.model == "hotnas" else zhang15_network
        try:
            return run(target.network, self.design, self.board, allow_over_budget=self.allow_over_budget)
        except LatencyError:
            raise
        except CodesignError as e:
            raise LatencyError(f"{self.spec}: {e}") from None

    def _measure(self, target: Target) -> LatencyResult:
        res = self.evaluate(target)
        bound, per = _dominant_bound((l.bound, l.cycles) for l in res.layers)
        return LatencyResult(res.latency_ms, 0.0, 1, self.spec,
                             {"board": self.board.name, "model": self.model, "preset": self.preset,
                              "design": self.design.to_dict(), "clock_mhz": res.clock_mhz, "cycles": res.cycles,
                              "energy_mj": res.energy["energy_mj"], "edp_j_s": res.energy["edp_j_s"],
                              "bound": bound, "bound_cycles": per, "fits": res.fits,
                              "violations": [v.message() for v in res.violations]})
