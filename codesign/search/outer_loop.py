"""NAAS outer loop: a nevergrad search over accelerators inside a resource envelope, each
candidate scored by the EDP of its best mappings (geomean over the workloads); or, with a
``board``, over the FPGA designs of one tiling template on that board (``fpga_space.py``), each
scored by its latency, energy or EDP under the FPGA power model.

Candidates are asked in fixed-size batches and told back in ask order, so a seed gives the
same result on any executor. Every finished evaluation is appended to the run's journal; a
resumed run replays the journal (checking that the optimizer asks the same points) and
evaluates only what is missing.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np

from mappings.cache import MAPPER_VERSION
from models.errors import CodesignError, MappingError
from models.inputs import validate

from .hardware_space import HardwareSpace
from .run_schema import ACCURACY_SOURCES, SUBNET_OBJECTIVE, RunConfig, RunDirError
from .rundir import RunDir

PENALTY_LOSS = 100.0  # log10 EDP of a rejected or unmappable candidate (real ones are ~10-20)
ACCURACY_OBJECTIVE = SUBNET_OBJECTIVE  # the sub-network search alone: highest accuracy within the limits
# options of the accelerator search, left out of the config of a sub-network search alone
ACCELERATOR_KEYS = ("envelope", "budget", "optimizer", "batch", "mapper", "final_mapper", "constraint",
                    "subnet_mapper", "board", "fpga_model", "schedule")


@dataclass
class SearchConfig:
    workloads: list = field(default_factory=lambda: ["mobilenet_v2"])
    envelope: str = "eyeriss"
    budget: int = 60
    optimizer: str = "PortfolioDiscreteOnePlusOne"  # best of seven measured (docs/benchmarks.md)
    seed: int = 0
    batch: int = 8
    mapper: str = "heuristic"      # ranks candidates during the search
    final_mapper: str = "auto"     # maps the found accelerator and the baseline for the result
    objective: str = "edp"
    resolution: int | None = None
    # sub-network co-search (mid loop): an OFA space and an accuracy constraint
    space: str | None = None
    min_accuracy: float | None = None
    constraint: str = "hard"
    population: int = 32
    generations: int = 8
    subnet_mapper: str = "heuristic"
    # FPGA target: a board (name or YAML path) and a tiling template instead of an envelope
    board: str | None = None
    fpga_model: str = "hotnas"
    # "fused": every candidate (and the baseline) is costed under its searched depth-first schedule
    schedule: str = "layer"
    # where a sub-network's accuracy comes from: "predictor" (the space's), "table" (nasbench201's
    # measured CIFAR-100 accuracy)
    accuracy: str = "predictor"
    # hard limits of the sub-network search (kB = 1024 bytes): peak activation SRAM (int8) under
    # ``sram_schedule`` ("layer" by layer or "patch"-based) and weight Flash (int8); ``mcu`` names the
    # board they were taken from (the limits themselves are stored)
    max_sram_kb: float | None = None
    max_flash_kb: float | None = None
    mcu: str | None = None
    sram_schedule: str = "layer"
    # the sub-network search alone under a latency target: ``strategy`` ("evolution" or
    # "differentiable"), the target (ms) and the latency source ("lut:note10", "analytical:<preset>"; nasbench201:
    # "pi5:<runtime>", "adaproxy:<target>:<proxy>:<N>", see nb201_latency.py)
    strategy: str = "evolution"
    max_latency_ms: float | None = None
    latency: str | None = None
    # nasbench201 under a latency target: the K most accurate front cells measured on the target (0: off)
    verify: int = 0
    # the cost model's version (None: a run saved before it was recorded; such a run cannot resume)
    mapper_version: int | None = MAPPER_VERSION
    # sha256 of each input file (workload or board YAML) when the run started: see ``with_input_hashes``
    inputs_sha256: dict | None = None

    def __post_init__(self):
        validate(RunConfig, self.to_dict(), "search config", error=RunDirError)

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.board is None:  # ASIC runs keep the config they had before FPGA targets existed
            del d["board"], d["fpga_model"]
        if self.inputs_sha256 is None:
            del d["inputs_sha256"]
        if self.schedule == "layer":  # runs keep the config they had before fused schedules existed
            del d["schedule"]
        for k, default in (("accuracy", "predictor"), ("max_sram_kb", None), ("max_flash_kb", None), ("mcu", None),
                           ("sram_schedule", "layer"), ("strategy", "evolution"), ("max_latency_ms", None),
                           ("latency", None), ("verify", 0)):
            if d[k] == default:  # runs keep the config they had before these options existed
                del d[k]
        if self.objective == ACCURACY_OBJECTIVE:  # no accelerator: its options do not apply
            for k in ACCELERATOR_KEYS:
                d.pop(k, None)
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "search config") -> "SearchConfig":
        """A config from its saved form, checked against the ``config.yaml`` schema."""
        if not isinstance(d, dict):
            raise RunDirError(f"{source}: expected a mapping of search options")
        validate(RunConfig, d, source, error=RunDirError)
        return cls(**{**{k: v for k, v in d.items() if k in cls.__dataclass_fields__},
                      "mapper_version": d.get("mapper_version")})

    def input_files(self) -> list[str]:
        """The workloads and board given as files (what ``inputs_sha256`` fingerprints)."""
        specs = list(self.workloads) + ([self.board] if self.board is not None else [])
        return [s for s in specs if os.path.isfile(s)]

    def with_input_hashes(self) -> "SearchConfig":
        """This config with the sha256 of its input files, so that a resume notices an edited file."""
        files = self.input_files()
        return replace(self, inputs_sha256={f: _sha256(f) for f in files} or None)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise RunDirError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()


def check_resumable(cfg: SearchConfig, source: str = "the run") -> None:
    """Refuse to add evaluations to a run made by another cost-model version, or whose input
    files changed since it started: its journal would mix two models."""
    if cfg.mapper_version != MAPPER_VERSION:
        made = ("before the cost model's version was recorded" if cfg.mapper_version is None
                else f"by cost model version {cfg.mapper_version}")
        raise RunDirError(f"{source}: the run was made {made}, this code's is version {MAPPER_VERSION}: its "
                          f"evaluations cannot be mixed with new ones; start a new run with --out (the same "
                          f"options repeat the search)")
    for path, digest in (cfg.inputs_sha256 or {}).items():
        if not os.path.isfile(path):
            raise RunDirError(f"{source}: its input file {path} is not found (from {os.getcwd()}); "
                              f"resume from the directory the run was started in")
        if _sha256(path) != digest:
            raise RunDirError(f"{source}: its input file {path} changed since the run started; the journaled "
                              f"evaluations are of the old file: restore it or start a new run with --out")


def optimizer_names() -> list[str]:
    import nevergrad as ng
    return sorted(ng.optimizers.registry.keys())


@lru_cache(maxsize=8)
def _space(envelope: str) -> HardwareSpace:
    return HardwareSpace.from_envelope(envelope)


@lru_cache(maxsize=8)
def _fpga_space(board: str, model: str, workloads: tuple, resolution, objective: str):
    from .fpga_space import FPGASpace
    return FPGASpace(board, model, [_network(w, resolution) for w in workloads], objective)


def search_space(cfg: SearchConfig):
    """The space the outer loop searches: the envelope's accelerators or the board's designs."""
    if cfg.board is not None:
        return _fpga_space(cfg.board, cfg.fpga_model, tuple(cfg.workloads), cfg.resolution, cfg.objective)
    return _space(cfg.envelope)


@lru_cache(maxsize=32)
def _network(spec: str, resolution):
    from models.importers import load_workload
    return load_workload(spec, resolution=resolution)


def geomean(values) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


class FixedResolution:
    """A search space whose sub-networks all have input resolution ``r`` (``--resolution`` with
    ``--space``): the wrapped space's operators, then ``r`` set."""

    def __init__(self, space, r: int):
        probe = space.sample(np.random.default_rng(0))
        if not isinstance(probe, dict) or "r" not in probe:
            raise CodesignError(f"space {space.name} has a fixed input size: --resolution does not apply to it")
        try:
            space.validate({**probe, "r": r})
        except CodesignError as e:
            raise CodesignError(f"--resolution {r}: {e}") from None
        self.space, self.r, self.name = space, int(r), space.name

    def sample(self, rng):
        return {**self.space.sample(rng), "r": self.r}

    def mutate(self, arch, rng, prob):
        return {**self.space.mutate(arch, rng, prob), "r": self.r}

    def crossover(self, a, b, rng):
        return {**self.space.crossover(a, b, rng), "r": self.r}

    def validate(self, arch):
        return self.space.validate(arch)

    def to_network(self, arch):
        return self.space.to_network(arch)


class ProxyScore:
    """A zero-cost proxy of ``models.proxies`` behind the predictor interface (``predict``), each
    cell scored once. Its values are scores (higher is better), not accuracy fractions."""

    def __init__(self, name: str):
        from models import proxies

        self.name, self._fn, self._memo = name, proxies.get_proxy(name), {}

    def predict(self, archs) -> np.ndarray:
        from models.spaces.nasbench201 import NasBench201Space

        keys = [NasBench201Space.to_string(a) for a in archs]
        new = list(dict.fromkeys(k for k in keys if k not in self._memo))
        if new:
            for k, v in zip(new, np.asarray(self._fn(new), dtype=np.float64)):
                self._memo[k] = float(v)
        return np.array([self._memo[k] for k in keys])


def proxy_names() -> list[str]:
    """The zero-cost proxies ``--accuracy`` accepts (none when ``models.proxies`` is absent);
    ``rank`` is left out: it ranks cells within a population, not one cell."""
    try:
        from models import proxies
    except ImportError:
        return []
    return [n for n in proxies.PROXIES if n != "rank"]


def is_proxy(source: str) -> bool:
    return source not in ACCURACY_SOURCES and source in proxy_names()


def load_accuracy(space: str, source: str = "predictor"):
    """What scores a sub-network's accuracy: the space's predictor, or (``"table"``, nasbench201
    only) the measured CIFAR-100 accuracy of every cell (``models.nb201_table.TableAccuracy``), or
    (nasbench201 only) a zero-cost proxy's score (``ProxyScore``)."""
    from models.spaces import get_space

    name = get_space(space).name
    if source == "table":
        if name != "nasbench201":
            raise CodesignError(f"--accuracy table: the measured accuracy table is of nasbench201 cells, not "
                                f"of space {space!r}; use --accuracy predictor")
        from models.nb201_table import TableAccuracy
        return TableAccuracy()
    if is_proxy(source):
        if name != "nasbench201":
            raise CodesignError(f"--accuracy {source}: the zero-cost proxies score nasbench201 cells, not space "
                                f"{space!r}")
        return ProxyScore(source)
    if source != "predictor":
        raise CodesignError(f"unknown accuracy source {source!r} (known: "
                            f"{', '.join(list(ACCURACY_SOURCES) + proxy_names())})")
    if name == "nasbench201":
        raise CodesignError("no accuracy predictor for space 'nasbench201': give --accuracy table (the measured "
                            "CIFAR-100 accuracy of every cell)")
    from models.predictors import load_predictor
    return load_predictor(name)


def memory_limits(cfg: SearchConfig) -> list:
    """The hard limits ``max_sram_kb`` and ``max_flash_kb`` of ``cfg`` as ``Limit``s on bytes."""
    from .subnet_evolution import Limit

    out = []
    if cfg.max_sram_kb is not None:
        out.append(Limit("peak_sram_bytes", cfg.max_sram_kb * 1024, "peak SRAM", "kB", 1024))
    if cfg.max_flash_kb is not None:
        out.append(Limit("flash_bytes", cfg.max_flash_kb * 1024, "Flash", "kB", 1024))
    return out


def memory_measure(space, schedule: str = "layer"):
    """arch -> ``{"peak_sram_bytes", "flash_bytes", "patch_layers", "macs"}`` (int8 activations and
    weights; ``accelerators.memory.peak_memory``), computed once per sub-network."""
    import json

    from accelerators.memory import peak_memory

    memo: dict[str, dict] = {}

    def measure(arch: dict) -> dict:
        k = json.dumps(arch, sort_keys=True)
        if k not in memo:
            net = space.to_network(arch)
            pm = peak_memory(net, schedule)
            memo[k] = {"peak_sram_bytes": pm.peak_sram_bytes, "flash_bytes": pm.flash_bytes,
                       "patch_layers": pm.patch_layers, "macs": net.macs}
        return memo[k]
    return measure


def subnet_setup(cfg: SearchConfig):
    """``(space, accuracy, measure, limits)`` of a sub-network search: the space (with its
    resolution fixed by ``cfg.resolution``), what scores accuracy, the memory measure (None when
    there is nothing to bound or report) and the limits."""
    from models.spaces import get_space

    space = get_space(cfg.space)
    if cfg.resolution is not None:
        space = FixedResolution(space, cfg.resolution)
    limits = memory_limits(cfg)
    measure = memory_measure(space, cfg.sram_schedule) if limits or cfg.objective == ACCURACY_OBJECTIVE else None
    return space, load_accuracy(cfg.space, cfg.accuracy), measure, limits


def _evolution_config(cfg: SearchConfig, **kw):
    from .subnet_evolution import EvolutionConfig

    select = "accuracy" if cfg.objective == ACCURACY_OBJECTIVE else "cost"
    mode = "hard" if select == "accuracy" else cfg.constraint
    return EvolutionConfig(**{"population": cfg.population, "generations": cfg.generations, "mode": mode,
                              "seed": cfg.seed, "select": select, **kw})


def _min_accuracy(cfg: SearchConfig) -> float:
    """The accuracy constraint; none (``-inf``: a proxy's score may be negative) when not given."""
    return -math.inf if cfg.min_accuracy is None else cfg.min_accuracy


def check_subnet_feasible(cfg: SearchConfig) -> None:
    """Raise ``InfeasibleError`` (saying how close the best came) when the sub-network search
    would find nothing to start from: the search's own first sampling, without costing anything."""
    from .subnet_evolution import InfeasibleError, evolve

    space, predictor, measure, limits = subnet_setup(cfg)
    try:
        evolve(space, predictor, lambda a: 1.0, _min_accuracy(cfg),
               _evolution_config(cfg, population=1, generations=0), measure=measure if limits else None,
               limits=limits)
    except InfeasibleError as e:
        hints = []
        if "peak_sram_bytes" in e.closest and e.closest["peak_sram_bytes"] > cfg.max_sram_kb * 1024:
            hints.append("for SRAM: " + ("a lower --resolution, " if _can_lower_resolution(cfg) else "")
                         + ("--sram-schedule patch, " if cfg.sram_schedule == "layer" else "") + "a larger --max-sram")
        if "flash_bytes" in e.closest and e.closest["flash_bytes"] > cfg.max_flash_kb * 1024:
            hints.append("for Flash (the weights; no resolution changes it): a larger --max-flash or a smaller space")
        if hints:
            raise InfeasibleError(f"{e}; try {'; '.join(hints)}", e.closest) from None
        raise


def _can_lower_resolution(cfg: SearchConfig) -> bool:
    """Whether the space has a resolution gene that accepts a value below ``cfg.resolution``."""
    from models.spaces import get_space

    space = get_space(cfg.space)
    probe = space.sample(np.random.default_rng(0))
    if not isinstance(probe, dict) or "r" not in probe:
        return False
    if cfg.resolution is None:
        return True
    try:
        space.validate({**probe, "r": cfg.resolution - 1})
    except CodesignError:
        return False
    return True


def _limits_dict(cfg: SearchConfig) -> dict:
    return {"max_sram_kb": cfg.max_sram_kb, "max_flash_kb": cfg.max_flash_kb, "sram_schedule": cfg.sram_schedule,
            "mcu": cfg.mcu}


def search_subnet(cfg: SearchConfig, progress=None) -> dict:
    """The sub-network search alone (``objective="accuracy"``, TinyNAS-style): the highest
    predicted accuracy among the sub-networks within the memory limits, and the front of
    (accuracy, peak SRAM) over everything evaluated. Returns the ``result.json`` of the run."""
    from .subnet_evolution import evolve

    if cfg.objective != ACCURACY_OBJECTIVE or not cfg.space:
        raise CodesignError("search_subnet needs a space and objective 'accuracy'")
    t0 = time.perf_counter()
    space, predictor, measure, limits = subnet_setup(cfg)
    res = evolve(space, predictor, lambda a: measure(a)["peak_sram_bytes"], _min_accuracy(cfg),
                 _evolution_config(cfg), progress=progress, measure=measure, limits=limits)

    def point(c) -> dict:
        m = c.measures
        return {"arch": c.arch, "accuracy": c.accuracy, "peak_sram_bytes": int(m["peak_sram_bytes"]),
                "peak_sram_kb": m["peak_sram_bytes"] / 1024, "flash_bytes": int(m["flash_bytes"]),
                "flash_kb": m["flash_bytes"] / 1024, "macs": int(m["macs"]), "patch_layers": int(m["patch_layers"])}

    mcu = None
    if cfg.mcu is not None:
        from accelerators.mcu import load_mcu
        mcu = load_mcu(cfg.mcu).to_dict()
    return {"kind": "subnet", "config": cfg.to_dict(), "space": cfg.space, "mcu": mcu, "limits": _limits_dict(cfg),
            "best": point(res.best), "pareto": [point(c) for c in res.pareto],
            "evolution": [{k: v for k, v in h.items() if k != "population_costs"} for h in res.history],
            "evaluated": res.evaluated, "seconds": time.perf_counter() - t0}


def score_subnet(acc, cfg: SearchConfig, detail: bool = False) -> dict:
    """Mid loop for one accelerator: the sub-network with the lowest EDP that meets the
    accuracy constraint and the memory limits (evolutionary search; every shape is mapped once
    per accelerator; a sub-network over a limit is never mapped)."""
    from mappings.cache import MappingCache
    from mappings.evaluate import evaluate_network

    from .subnet_evolution import evolve

    space, predictor, measure, limits = subnet_setup(cfg)
    cache = MappingCache()

    def cost(arch):
        return evaluate_network(space.to_network(arch), acc, optimizer=cfg.subnet_mapper,
                                objective=cfg.objective, cache=cache, seed=cfg.seed).total.edp

    res = evolve(space, predictor, cost, cfg.min_accuracy, _evolution_config(cfg), measure=measure, limits=limits)
    best, edp = res.best, res.best.cost
    out = {"subnet": {"arch": best.arch, "accuracy": best.accuracy, "edp": edp}, "evaluated_subnets": res.evaluated}
    if cfg.schedule == "fused":
        best, edp, out["fused_finalists"] = _fused_finalists(space, res, acc, cfg)
        out["subnet"] = {"arch": best.arch, "accuracy": best.accuracy, "edp": edp, "layer_by_layer_edp": best.cost}
    out["edp_geomean"] = edp
    if best.measures:
        out["subnet"]["memory"] = dict(best.measures)
    if detail:
        net = space.to_network(best.arch)
        if cfg.schedule == "fused":
            nc = _fused_score(net, acc, cfg, cfg.final_mapper, detail=True)
            out["workloads"] = {"subnet": nc}
            out["edp_geomean"] = nc["total"]["edp"]
        else:
            nc = evaluate_network(net, acc, optimizer=cfg.final_mapper, objective=cfg.objective, seed=cfg.seed)
            out["workloads"] = {"subnet": nc.to_dict()}
            out["edp_geomean"] = nc.total.edp
        out["pareto"] = [c.to_dict() for c in res.pareto]
        out["evolution"] = res.history
    else:
        out["workloads"] = {"subnet": {"edp": edp}}
    return out


FUSED_FINALISTS = 3  # sub-networks re-costed under their searched schedules per accelerator


def _fused_finalists(space, res, acc, cfg: SearchConfig):
    """``(candidate, fused EDP, finalists)``: the ``FUSED_FINALISTS`` sub-networks of least
    layer-by-layer EDP that meet the constraint, each costed under its searched depth-first
    schedule; the least fused EDP wins. (A schedule search per evaluated sub-network would cost
    tens of seconds each, so the evolution ranks layer by layer and fusion re-ranks its best.)"""
    valid = sorted((c for c in res.candidates if c.accuracy >= cfg.min_accuracy), key=lambda c: c.cost)
    scored = []
    for c in valid[:FUSED_FINALISTS]:
        f = _fused_score(space.to_network(c.arch), acc, cfg, cfg.subnet_mapper, detail=False)
        scored.append((f["edp"], c))
    if not scored:  # nothing met the constraint: the evolution's best (its cost is the penalty)
        return res.best, res.best.cost, []
    edp, best = min(scored, key=lambda t: t[0])
    return best, edp, [{"arch": c.arch, "accuracy": c.accuracy, "layer_by_layer_edp": c.cost, "edp": e}
                       for e, c in scored]


def score_accelerator(acc, cfg: SearchConfig, detail: bool = False) -> dict:
    """EDP of every workload on ``acc``; geomean is the score. The search ranks with
    ``cfg.mapper``; ``detail`` (the final result) maps with ``cfg.final_mapper``. With an OFA
    ``space``, the workload is the best sub-network meeting the constraint."""
    from mappings.evaluate import evaluate_network

    if cfg.space:
        return score_subnet(acc, cfg, detail)

    per = {}
    for w in cfg.workloads:
        net = _network(w, cfg.resolution)
        mapper = cfg.final_mapper if detail else cfg.mapper
        if cfg.schedule == "fused":
            per[w] = _fused_score(net, acc, cfg, mapper, detail)
            continue
        nc = evaluate_network(net, acc, optimizer=mapper, objective=cfg.objective, seed=cfg.seed)
        per[w] = nc.to_dict() if detail else {
            "edp": nc.total.edp, "energy_pj": nc.total.energy_pj, "cycles": nc.total.cycles}
    g = geomean([v["total"]["edp"] if detail else v["edp"] for v in per.values()])
    return {"edp_geomean": g, "workloads": per}


FUSED_MAX_LAYERS = 4  # stacks of up to one inverted-residual block and a neighbour: 15-20 s a candidate


def _fused_score(net, acc, cfg: SearchConfig, mapper: str, detail: bool) -> dict:
    """A workload's cost on ``acc`` under its searched depth-first schedule. ``detail``: the
    layer-by-layer result (per-layer rows, as without fusion) whose ``total`` is the fused
    schedule's, with the schedule (``schedule``) and the layer-by-layer total beside it."""
    from mappings.evaluate import evaluate_network
    from mappings.schedule import StackMapper, evaluate_schedule

    from .schedule import search_schedule

    sm = StackMapper(net, acc, optimizer=mapper, objective=cfg.objective, seed=cfg.seed)
    sc = search_schedule(net, sm.acc, objective=cfg.objective, max_layers=FUSED_MAX_LAYERS, mapper=sm)
    if not detail:
        return {"edp": sc.edp, "energy_pj": sc.energy_pj, "cycles": sc.cycles}
    nc = evaluate_network(net, sm.acc, optimizer=mapper, objective=cfg.objective, seed=cfg.seed).to_dict()
    lbl = evaluate_schedule(net, sm.acc, mapper=sm)
    by_space = sc.energy_by_space
    total = dict(nc["total"], cycles=sc.cycles, latency_ms=sc.latency_ms, energy_pj=sc.energy_pj,
                 energy_by_component=sc.energy_by_component, edp=sc.edp,
                 edp_js=sc.energy_pj * 1e-12 * sc.latency_ms * 1e-3,
                 utilization=nc["total"]["macs"] / (sc.cycles * sm.acc.num_pes), energy_by_space=by_space,
                 dram_words=sc.dram_words, schedule="fused")
    total["ratio_to_lower_bound"] = sc.edp / total["lower_bound_edp"]  # the layers' bound: fusion may beat it
    return {**nc, "total": total, "layer_by_layer_total": nc["total"], "schedule": sc.to_dict(),
            "layer_by_layer_dram_words": lbl.dram_words}


def score_design(design, cfg: SearchConfig, detail: bool = False) -> dict:
    """An FPGA design on every workload: the objective's geomean is the score (``edp_geomean``
    is the EDP in J*s); ``detail`` keeps every layer."""
    from .fpga_space import objective_value

    space = search_space(cfg)
    per, score, edp = {}, [], []
    for w in cfg.workloads:
        r = space.evaluate(design, _network(w, cfg.resolution))
        score.append(objective_value(r, cfg.objective))
        edp.append(r.energy["edp_j_s"])
        per[w] = r.to_dict() if detail else {"cycles": r.cycles, "latency_ms": r.latency_ms,
                                             "energy_mj": r.energy["energy_mj"], "edp_j_s": r.energy["edp_j_s"]}
    if len(per) == 1:  # exactly the workload's numbers
        return {"score": score[0], "edp_geomean": edp[0], "workloads": per}
    return {"score": geomean(score), "edp_geomean": geomean(edp), "workloads": per}


def _loss(score: float, x: list) -> float:
    """log10 of a candidate's score; a score that is not a finite positive number is an error."""
    if not (isinstance(score, (int, float)) and math.isfinite(score) and score > 0):
        raise CodesignError(f"the cost model scored candidate {[round(v, 6) for v in x]} {score!r}: not a finite "
                            f"positive number; nothing of it was journaled")
    return math.log10(score)


def _evaluate_fpga(x: list, cfg: SearchConfig) -> dict:
    design = search_space(cfg).decode(x)
    if design is None:
        return {"status": "rejected", "loss": PENALTY_LOSS}
    t0 = time.perf_counter()
    s = score_design(design, cfg)
    _loss(s["edp_geomean"], x)
    return {"status": "ok", "loss": _loss(s["score"], x), "score": s["score"], "edp": s["edp_geomean"],
            "workloads": s["workloads"], "design": design.to_dict(), "seconds": time.perf_counter() - t0}


def evaluate_candidate(x: list, cfg_dict: dict) -> dict:
    """Evaluate one candidate vector (runs in a worker: arguments and result are plain data)."""
    cfg = SearchConfig.from_dict(cfg_dict)
    if cfg.board is not None:
        return _evaluate_fpga(x, cfg)
    acc = _space(cfg.envelope).decode(x)
    if acc is None:
        return {"status": "rejected", "loss": PENALTY_LOSS}
    t0 = time.perf_counter()
    try:
        s = score_accelerator(acc, cfg)
    except MappingError as e:
        return {"status": "unmappable", "reason": str(e), "loss": PENALTY_LOSS,
                "accelerator": acc.to_dict()}
    return {"status": "ok", "loss": _loss(s["edp_geomean"], x), "edp": s["edp_geomean"],
            "workloads": s["workloads"], "accelerator": acc.to_dict(),
            "seconds": time.perf_counter() - t0}


def check_optimizer(name: str) -> None:
    """One clear error for a name that is not a nevergrad optimizer."""
    import nevergrad as ng

    if name not in ng.optimizers.registry:
        close = [n for n in ng.optimizers.registry if n.lower() == name.lower()]
        hint = f" (did you mean {close[0]}?)" if close else " (see 'codesign search --list-optimizers')"
        raise CodesignError(f"unknown nevergrad optimizer '{name}'{hint}")


def _make_optimizer(cfg: SearchConfig):
    import nevergrad as ng

    check_optimizer(cfg.optimizer)
    space = search_space(cfg)
    param = ng.p.Array(shape=(space.dimension,), lower=0.0, upper=1.0)
    param.random_state = np.random.RandomState(cfg.seed)
    opt = ng.optimizers.registry[cfg.optimizer](parametrization=param, budget=cfg.budget,
                                                num_workers=cfg.batch)
    # nevergrad asks its suggestions last first: the seeds, then the baseline on top
    if cfg.schedule == "fused" and hasattr(space, "storage_seeds"):
        for x in reversed(space.storage_seeds()[: max(0, cfg.budget - 1)]):
            opt.suggest(x)
    if space.base is not None:  # an FPGA board may have no preset that fits
        opt.suggest(space.encode(space.base))  # the first candidate is the baseline itself
    return opt


def _ask(opt, cfg: SearchConfig):
    try:
        return opt.ask()
    except (TypeError, ValueError, ArithmeticError) as e:
        # nevergrad's own failures (e.g. its MetaModel under numpy 2: nevergrad issue #1612)
        raise CodesignError(f"nevergrad optimizer '{cfg.optimizer}' failed inside nevergrad ({type(e).__name__}: "
                            f"{e}); finished evaluations are kept in the journal; choose another --optimizer "
                            f"for a new run") from None


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def run_search(cfg: SearchConfig, run: RunDir, executor, progress: bool = True, warn=None) -> list[dict]:
    """Run (or resume) the outer loop; returns the journal entries in index order.

    Holds the run directory's lock throughout. A bad last journal line is set aside and
    reported through ``warn(message)`` (default: a ``RuntimeWarning``)."""
    with run.lock():
        return _run_search(cfg, run, executor, progress, warn or _warn)


def _run_search(cfg: SearchConfig, run: RunDir, executor, progress: bool, warn) -> list[dict]:
    check_resumable(cfg, str(run.path))
    for w in ([] if cfg.space else cfg.workloads):
        _network(w, cfg.resolution)  # fail fast on a bad workload, before any evaluation
    space = search_space(cfg)
    opt = _make_optimizer(cfg)
    journal = run.load_journal(space.dimension, cfg.budget, recover=True, warn=warn)
    done = {e["i"]: e for e in journal}
    cfg_dict = cfg.to_dict()
    entries: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.budget, desc="search", unit="eval", initial=0, dynamic_ncols=True)
    best = math.inf
    try:
        i = 0
        while i < cfg.budget:
            cands = [_ask(opt, cfg) for _ in range(min(cfg.batch, cfg.budget - i))]
            results: list[dict | None] = [None] * len(cands)
            futures = {}
            for j, c in enumerate(cands):
                x = [float(v) for v in c.value]
                if i + j in done:
                    e = done[i + j]
                    if not np.allclose(e["x"], x, rtol=0, atol=1e-12):
                        raise CodesignError(f"{run.journal_path}: entry {i + j} does not match this run's "
                                            f"optimizer state (was the config or code changed?)")
                    results[j] = e
                elif space.decode(x) is None:
                    results[j] = {"i": i + j, "x": x, "status": "rejected", "loss": PENALTY_LOSS}
                    run.append(results[j])  # rejected before evaluation: nothing to compute
                else:
                    futures[executor.submit(evaluate_candidate, x, cfg_dict)] = (j, x)
            try:
                for fut in as_completed(futures):
                    j, x = futures[fut]
                    r = {"i": i + j, "x": x, **fut.result()}
                    if not math.isfinite(r["loss"]):  # a custom evaluation; ours check with _loss
                        raise CodesignError(f"candidate {i + j}: the cost model returned a non-finite score "
                                            f"({r.get('edp')}); not journaled")
                    run.append(r)
                    results[j] = r
            except BrokenProcessPool:
                raise CodesignError(f"a worker process died (killed, or out of memory); finished evaluations are "
                                    f"in {run.journal_path}; continue with --resume") from None
            for c, r in zip(cands, results):
                opt.tell(c, r["loss"])
                entries.append(r)
                if r["status"] == "ok":
                    best = min(best, r.get("score", r["edp"]))
            i += len(cands)
            if bar is not None:
                bar.update(len(cands))
                if math.isfinite(best):
                    bar.set_postfix_str(f"best {'EDP' if cfg.board is None else cfg.objective} {best:.3e}")
    finally:
        if bar is not None:
            bar.close()
    return entries


def best_entry(entries: list[dict]) -> dict:
    ok = [e for e in entries if e["status"] == "ok"]
    if not ok:
        raise CodesignError("no candidate could be mapped: widen the envelope or raise the budget")
    return min(ok, key=lambda e: (e["loss"], e["i"]))


def convergence(entries: list[dict]) -> list[dict]:
    out, best = [], math.inf
    for e in entries:
        if e["status"] == "ok":
            best = min(best, e["edp"])
        out.append({"i": e["i"], "status": e["status"], "edp": e.get("edp"),
                    "best_edp": best if math.isfinite(best) else None})
    return out


def fpga_convergence(entries: list[dict]) -> list[dict]:
    """Per candidate: its score (the objective's geomean), EDP, and the best score so far."""
    out, best = [], math.inf
    for e in entries:
        if e["status"] == "ok":
            best = min(best, e["score"])
        out.append({"i": e["i"], "status": e["status"], "score": e.get("score"), "edp": e.get("edp"),
                    "best_score": best if math.isfinite(best) else None})
    return out


def _ratios(found: dict, baseline: dict, edp_key: str, energy_key: str) -> dict:
    """Per workload, baseline over found: EDP improvement, speedup and energy saving."""
    out = {}
    for w in found["workloads"]:
        f, bl = found["workloads"][w]["total"], baseline["workloads"][w]["total"]
        out[w] = {"edp_improvement": bl[edp_key] / f[edp_key],
                  "speedup": bl["latency_ms"] / f["latency_ms"],
                  "energy_saving": bl[energy_key] / f[energy_key]}
    return out


def _status_counts(entries: list[dict]) -> dict:
    return {s: sum(1 for e in entries if e["status"] == s) for s in ("ok", "rejected", "unmappable")}


def finalize_fpga(cfg: SearchConfig, run: RunDir, entries: list[dict], seconds: float) -> dict:
    """Evaluate the best FPGA design and the baseline preset (if one fits) layer by layer, and
    write ``result.json`` and ``design.yaml``. Without a baseline, ``baseline``,
    ``ratios`` and ``edp_improvement_geomean`` are null."""
    import yaml

    space = search_space(cfg)
    if not any(e["status"] == "ok" for e in entries):
        raise CodesignError(f"no {cfg.fpga_model} candidate fitted {space.board.name}'s limits for these workloads: "
                            f"raise the budget")
    b = best_entry(entries)
    design = space.design_from_dict(b["design"])
    found = score_design(design, cfg, detail=True)
    baseline, ratios, improvement = None, None, None
    if space.base is not None:
        baseline = {"preset": space.base_name, "design": space.base.to_dict(),
                    **score_design(space.base, cfg, detail=True)}
        ratios = _ratios(found, baseline, "edp_j_s", "energy_mj")
        improvement = baseline["edp_geomean"] / found["edp_geomean"]
    counts = _status_counts(entries)
    res = space.resources(design)
    result = {
        "kind": "fpga",
        "config": cfg.to_dict(),
        "board": space.board.to_dict(),
        "model": cfg.fpga_model,
        "design": design.to_dict(),
        "resources": res.to_dict(),
        "found": found,
        "baseline": baseline,
        "presets": [dict(p) for p in space.presets],
        "ratios": ratios,
        "edp_improvement_geomean": improvement,
        "objective_improvement": None if baseline is None else baseline["score"] / found["score"],
        "best_index": b["i"],
        "evaluations": counts,
        "convergence": fpga_convergence(entries),
        "seconds": seconds,
    }
    run.write_json("result.json", result)
    run.write_text("design.yaml", yaml.safe_dump({"board": space.board.name, "model": cfg.fpga_model,
                                                  "design": design.to_dict()}, sort_keys=False))
    return result


def finalize(cfg: SearchConfig, run: RunDir, entries: list[dict], seconds: float) -> dict:
    """Re-map the best accelerator in detail, evaluate the envelope's preset with the same
    mapper as the baseline, and write ``result.json`` and ``accelerator.yaml``
    (FPGA runs: ``finalize_fpga``)."""
    if cfg.board is not None:
        return finalize_fpga(cfg, run, entries, seconds)
    from accelerators import accelerator_from_dict, load_accelerator

    b = best_entry(entries)
    acc = accelerator_from_dict(b["accelerator"], source=f"{run.journal_path}: candidate {b['i']}: accelerator")
    found = score_accelerator(acc, cfg, detail=True)
    base = load_accelerator(cfg.envelope)
    if cfg.space:
        # the baseline runs the same sub-network, so the ratios compare hardware alone; its own
        # best sub-network is reported beside it
        from mappings.evaluate import evaluate_network
        from models.spaces import get_space
        net = get_space(cfg.space).to_network(found["subnet"]["arch"])
        if cfg.schedule == "fused":
            nc = _fused_score(net, base, cfg, cfg.final_mapper, detail=True)
            baseline = {"edp_geomean": nc["total"]["edp"], "workloads": {"subnet": nc}}
        else:
            nc = evaluate_network(net, base, optimizer=cfg.final_mapper, objective=cfg.objective, seed=cfg.seed)
            baseline = {"edp_geomean": nc.total.edp, "workloads": {"subnet": nc.to_dict()}}
    else:
        baseline = score_accelerator(base, cfg, detail=True)
    ratios = _ratios(found, baseline, "edp", "energy_pj")
    extra = {}
    if cfg.schedule == "fused":  # the gain over the baseline as it runs today: layer by layer
        lbl = {w: {"total": v["layer_by_layer_total"]} for w, v in baseline["workloads"].items()}
        extra["ratios_vs_layer_by_layer_baseline"] = _ratios(found, {"workloads": lbl}, "edp", "energy_pj")
    counts = _status_counts(entries)
    result = {
        "config": cfg.to_dict(),
        "accelerator": acc.to_dict(),
        "found": found,
        "baseline": {"accelerator": base.to_dict(), **baseline},
        "ratios": ratios,
        "edp_improvement_geomean": baseline["edp_geomean"] / found["edp_geomean"],
        **extra,
        "best_index": b["i"],
        "evaluations": counts,
        "convergence": convergence(entries),
        "seconds": seconds,
    }
    run.write_json("result.json", result)
    run.write_text("accelerator.yaml", acc.to_yaml())
    return result
