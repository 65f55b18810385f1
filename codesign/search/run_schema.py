"""Schemas of the files in a run directory: ``config.yaml`` (the search configuration), one
``journal.jsonl`` entry (a finished evaluation) and ``result.json`` (a finished run).

Every bound a run's size depends on is a named constant here; ``docs/limits.md`` lists them.
The files are parsed with ``models.inputs`` (size, depth, UTF-8, finite numbers) and checked
here; a violation is one ``RunDirError`` line naming the file, the field and the value.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from accelerators.mcu import MAX_FLASH_KB, MAX_SRAM_KB
from accelerators.memory import SRAM_SCHEDULES
from models.errors import CodesignError
from mappings.optimizers import OPTIMIZERS
from models.schema import MAX_RESOLUTION, MAX_SEED

MAX_BUDGET = 100_000          # accelerator candidates per run (a real search uses 10^2-10^3)
MAX_BATCH = 1024              # candidates asked per round
MAX_POPULATION = 1000         # sub-network search population (the literature uses 100)
MAX_GENERATIONS = 1000        # sub-network search generations (the literature uses 20-30)
MAX_WORKLOADS = 64            # workloads of one search (geomean EDP)
MAX_NAME_CHARS = 4096         # a workload spec, board path, optimizer or mapper name
MAX_DIMENSION = 1024          # numbers in a candidate vector x (the spaces use 10-30)
MAX_JOURNAL_BYTES = 1 << 30   # journal.jsonl (about 10 kB per entry at MAX_BUDGET)
MAX_JOURNAL_LINE_BYTES = 4 * 2 ** 20  # one journal entry
MAX_RESULT_BYTES = 256 * 2 ** 20      # result.json (every layer of every workload, twice)
MAX_CONFIG_BYTES = 2 ** 20            # config.yaml

OBJECTIVES = ("edp", "energy", "latency")
SUBNET_OBJECTIVE = "accuracy"  # the sub-network search alone (no accelerator): highest accuracy within limits
ACCURACY_SOURCES = ("predictor", "table")  # the space's predictor; nasbench201's measured table
# (or the name of a zero-cost proxy of ``models.proxies``, checked when the run loads it)
STATUSES = ("ok", "rejected", "unmappable")
SUBNET_STRATEGIES = ("evolution", "differentiable")  # how the sub-network search alone searches
MAX_LATENCY_MS = 1e6          # a latency target of the sub-network search (ms)
MAX_VERIFY = 50               # nasbench201: front cells measured on the target after the search (--verify)
OFA_LATENCY_SOURCE = r"^(lut:note10|analytical:[A-Za-z0-9_.-]{1,64})$"  # ofa-mbv3: per-slot tables
# nasbench201: the measured Pi 5 latency, or AdaProxy's prediction of it (codesign/validation/nb201_latency.py)
NB201_LATENCY_SOURCE = r"^(pi5:[a-z]{1,32}|adaproxy:[a-z]{1,32}:[a-z0-9_]{1,64}:[0-9]{1,9})$"
LATENCY_SOURCE = f"{OFA_LATENCY_SOURCE}|{NB201_LATENCY_SOURCE}"


class RunDirError(CodesignError):
    """A run directory, or the search options that start or resume it, are invalid."""


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RunConfig(_Strict):
    """``config.yaml``: the options a run was started with (``SearchConfig``)."""

    workloads: Annotated[list[Name], Field(max_length=MAX_WORKLOADS)]
    envelope: Optional[Name] = None
    # the accelerator search's options: required unless the objective is "accuracy" (no accelerator);
    # a value given is never None (the default is not validated: it stands for "not given")
    budget: Annotated[int, Field(ge=1, le=MAX_BUDGET)] = None
    optimizer: Name = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)]
    batch: Annotated[int, Field(ge=1, le=MAX_BATCH)] = None
    mapper: Literal[OPTIMIZERS] = None
    final_mapper: Literal[OPTIMIZERS] = None
    objective: Literal[OBJECTIVES + (SUBNET_OBJECTIVE,)]
    resolution: Optional[Annotated[int, Field(ge=1, le=MAX_RESOLUTION)]] = None
    space: Optional[Name] = None
    min_accuracy: Optional[Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]] = None
    constraint: Literal["hard", "soft"] = "hard"
    population: Annotated[int, Field(ge=1, le=MAX_POPULATION)] = 32
    generations: Annotated[int, Field(ge=0, le=MAX_GENERATIONS)] = 8
    subnet_mapper: Literal[OPTIMIZERS] = "heuristic"
    board: Optional[Name] = None
    fpga_model: Literal["hotnas", "zhang15"] = "hotnas"
    schedule: Literal["layer", "fused"] = "layer"
    accuracy: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = "predictor"
    # hard limits of the sub-network search, KB = 1024 bytes
    max_sram_kb: Optional[Annotated[float, Field(gt=0, le=MAX_SRAM_KB, allow_inf_nan=False)]] = None
    max_flash_kb: Optional[Annotated[float, Field(gt=0, le=MAX_FLASH_KB, allow_inf_nan=False)]] = None
    mcu: Optional[Name] = None
    sram_schedule: Literal[SRAM_SCHEDULES] = "layer"
    # the sub-network search alone under a latency target: strategy, target and where latency comes from
    strategy: Literal[SUBNET_STRATEGIES] = "evolution"
    max_latency_ms: Optional[Annotated[float, Field(gt=0, le=MAX_LATENCY_MS, allow_inf_nan=False)]] = None
    latency: Optional[Annotated[str, Field(pattern=LATENCY_SOURCE)]] = None
    # nasbench201 under a latency target: the front cells measured on the target after the search
    verify: Annotated[int, Field(ge=0, le=MAX_VERIFY)] = 0
    # None: written before the cost model's version was recorded
    mapper_version: Optional[Annotated[int, Field(ge=0)]] = None
    # sha256 of each input file (workload, board YAML) when the run started
    inputs_sha256: Optional[Annotated[dict[Name, Sha256], Field(max_length=MAX_WORKLOADS + 1)]] = None

    @model_validator(mode="after")
    def _consistent(self):
        alone = self.objective == SUBNET_OBJECTIVE
        if alone:
            if self.space is None:
                raise ValueError(f"'objective: {SUBNET_OBJECTIVE}' (the sub-network search alone) needs 'space'")
            given = [k for k in ("envelope", "board", "budget", "optimizer", "batch", "mapper", "final_mapper")
                     if getattr(self, k) is not None]
            if given:
                raise ValueError(f"'objective: {SUBNET_OBJECTIVE}' searches sub-networks alone (no accelerator): "
                                 f"{', '.join(repr(k) for k in given)} do not apply")
        else:
            if (self.board is None) == (self.envelope is None):
                raise ValueError("give exactly one of 'envelope' (an ASIC search) and 'board' (an FPGA search)")
            missing = [k for k in ("budget", "optimizer", "batch", "mapper", "final_mapper")
                       if getattr(self, k) is None]
            if missing:
                raise ValueError(f"missing field(s) {', '.join(repr(k) for k in missing)} (required unless "
                                 f"'objective: {SUBNET_OBJECTIVE}')")
        if (self.max_latency_ms is None) != (self.latency is None):
            raise ValueError("'max_latency_ms' and 'latency' (its source) go together")
        if self.max_latency_ms is not None:
            if not alone:
                raise ValueError(f"'max_latency_ms': a latency target of the sub-network search alone "
                                 f"('objective: {SUBNET_OBJECTIVE}')")
            given = [k for k in ("max_sram_kb", "max_flash_kb", "mcu") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"'max_latency_ms' cannot be combined with memory limits ({', '.join(given)})")
            nb201 = self.latency.split(":", 1)[0] in ("pi5", "adaproxy")
            if nb201 != ((self.space or "").replace("_", "").replace("-", "").lower() == "nasbench201"):
                raise ValueError(f"'latency: {self.latency}' is a latency of "
                                 f"{'nasbench201 cells' if nb201 else 'ofa-mbv3 sub-networks'}, not of space "
                                 f"{self.space!r}")
            if nb201 and self.strategy != "evolution":
                raise ValueError(f"'strategy: {self.strategy}': nasbench201 is searched by evolution")
            if self.verify and not nb201:
                raise ValueError(f"'verify: {self.verify}' measures nasbench201 cells on the target: it needs a "
                                 f"pi5: or adaproxy: 'latency'")
        elif self.verify:
            raise ValueError(f"'verify: {self.verify}' measures cells of a search under a latency target: it needs "
                             f"'max_latency_ms'")
        elif self.strategy != "evolution":
            raise ValueError(f"'strategy: {self.strategy}' searches under a latency target: it needs 'max_latency_ms'")
        if self.space is None:
            extra = [k for k in ("max_sram_kb", "max_flash_kb", "mcu") if getattr(self, k) is not None]
            extra += [k for k, d in (("sram_schedule", "layer"), ("accuracy", "predictor")) if getattr(self, k) != d]
            if extra:
                raise ValueError(f"{', '.join(repr(k) for k in extra)}: options of the sub-network search: "
                                 f"need 'space'")
        if self.space is not None:
            if self.min_accuracy is None and not alone:
                raise ValueError("'space' needs 'min_accuracy'")
            if self.board is not None:
                raise ValueError("'space' (the sub-network co-search) is ASIC only: no 'board'")
        elif not self.workloads:
            raise ValueError("'workloads' is empty (and no 'space')")
        if self.schedule == "fused" and (self.board is not None or self.objective == SUBNET_OBJECTIVE):
            raise ValueError("'schedule: fused' is for searches on an envelope (not 'board', not objective "
                             f"'{SUBNET_OBJECTIVE}')")
        if len(set(self.workloads)) != len(self.workloads):
            raise ValueError(f"'workloads' names one twice: {self.workloads}")
        return self


class JournalEntry(BaseModel):
    """One line of ``journal.jsonl``: candidate ``i``, its vector ``x``, status and loss; an
    ``ok`` entry also holds the score and the accelerator (or FPGA design) it decoded to."""

    model_config = ConfigDict(strict=True, extra="allow")

    i: Annotated[int, Field(ge=0, lt=MAX_BUDGET)]
    x: Annotated[list[Finite], Field(min_length=1, max_length=MAX_DIMENSION)]
    status: Literal[STATUSES]
    loss: Finite
    edp: Optional[Positive] = None
    score: Optional[Positive] = None
    accelerator: Optional[dict[str, Any]] = None
    design: Optional[dict[str, Any]] = None
    workloads: Optional[dict[str, Any]] = None

    @model_validator(mode="after")
    def _ok_entries_are_complete(self):
        if self.status == "ok":
            if self.edp is None:
                raise ValueError("an 'ok' entry needs 'edp'")
            if self.accelerator is None and self.design is None:
                raise ValueError("an 'ok' entry needs 'accelerator' (or 'design' for an FPGA run)")
            if self.design is not None and self.score is None:
                raise ValueError("an 'ok' FPGA entry needs 'score'")
        return self


# ---- result.json ----

class _Open(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class _AsicLayer(_Open):
    name: str
    macs: int
    cycles: int
    latency_ms: Finite
    energy_pj: Finite
    edp: Finite
    utilization: Finite
    bound: str
    energy_by_component: dict[str, Finite]
    dims: dict[str, int]
    mapping: dict[str, Any]


class _AsicTotal(_Open):
    macs: int
    cycles: int
    latency_ms: Positive
    energy_pj: Positive
    edp: Positive
    utilization: Finite
    energy_by_component: dict[str, Finite]


class _AsicWorkload(_Open):
    layers: list[_AsicLayer]
    total: _AsicTotal


class _AsicSide(_Open):
    edp_geomean: Positive
    workloads: dict[str, _AsicWorkload]


class _AsicBaseline(_AsicSide):
    accelerator: dict[str, Any]


class _Ratios(_Open):
    edp_improvement: Finite
    speedup: Finite
    energy_saving: Finite


class _AsicPoint(_Open):
    i: int
    status: Literal[STATUSES]
    edp: Optional[Finite] = None


class _ResultConfig(_Open):
    batch: Annotated[int, Field(ge=1, le=MAX_BATCH)]


class AsicResult(_Open):
    """``result.json`` of an accelerator search."""

    config: _ResultConfig
    accelerator: dict[str, Any]
    found: _AsicSide
    baseline: _AsicBaseline
    ratios: dict[str, _Ratios]
    edp_improvement_geomean: Positive
    convergence: list[_AsicPoint] = []

    @model_validator(mode="after")
    def _every_workload_on_both_sides(self):
        for w in self.found.workloads:
            if w not in self.baseline.workloads:
                raise ValueError(f"workload {w!r} has no baseline numbers")
            if w not in self.ratios:
                raise ValueError(f"workload {w!r} has no ratios")
        return self


class _FpgaLayer(_Open):
    name: str
    engine: str
    macs: int
    cycles: int
    latency_ms: Finite
    bound: str
    energy_mj: Finite


class _FpgaWorkload(_Open):
    layers: list[_FpgaLayer]
    total: dict[str, Any]


class _FpgaSide(_Open):
    score: Positive
    edp_geomean: Positive
    workloads: dict[str, _FpgaWorkload]


class _FpgaBaseline(_FpgaSide):
    preset: str
    design: dict[str, Any]


class _FpgaPoint(_Open):
    i: int
    status: Literal[STATUSES]
    score: Optional[Finite] = None


class FpgaResult(_Open):
    """``result.json`` of an FPGA design search (``"kind": "fpga"``)."""

    kind: Literal["fpga"]
    config: _ResultConfig
    board: dict[str, Any]
    model: str
    design: dict[str, Any]
    found: _FpgaSide
    baseline: Optional[_FpgaBaseline]
    ratios: Optional[dict[str, _Ratios]]
    edp_improvement_geomean: Optional[Positive]
    convergence: list[_FpgaPoint]

    @model_validator(mode="after")
    def _every_workload_on_both_sides(self):
        if self.baseline is not None:
            for w in self.found.workloads:
                if w not in self.baseline.workloads or len(self.baseline.workloads[w].layers) != \
                        len(self.found.workloads[w].layers):
                    raise ValueError(f"workload {w!r} has no matching baseline numbers")
                if w not in (self.ratios or {}):
                    raise ValueError(f"workload {w!r} has no ratios")
        return self


class _SubnetPoint(_Open):
    arch: dict[str, Any]
    accuracy: Finite
    peak_sram_bytes: Annotated[int, Field(ge=0)]
    peak_sram_kb: Annotated[Finite, Field(ge=0)]
    flash_bytes: Annotated[int, Field(ge=0)]
    flash_kb: Annotated[Finite, Field(ge=0)]
    macs: Annotated[int, Field(ge=0)]
    patch_layers: Annotated[int, Field(ge=0)]


class _SubnetConfig(_Open):
    space: str
    seed: int
    population: Annotated[int, Field(ge=1)]
    generations: Annotated[int, Field(ge=0)]


class SubnetResult(_Open):
    """``result.json`` of a sub-network search alone (``"kind": "subnet"``)."""

    kind: Literal["subnet"]
    config: _SubnetConfig
    space: str
    mcu: Optional[dict[str, Any]]
    limits: dict[str, Any]
    best: _SubnetPoint
    pareto: Annotated[list[_SubnetPoint], Field(min_length=1)]
    evaluated: Annotated[int, Field(ge=1)]
    seconds: Annotated[Finite, Field(ge=0)]


class _LatencyPoint(_Open):
    seconds: Annotated[Finite, Field(ge=0)]
    accuracy: Finite
    evaluations: Annotated[int, Field(ge=0)]


class _LatencyBest(_Open):
    arch: dict[str, Any]
    accuracy: Finite
    latency_ms: Positive
    # nasbench201: the measured accuracy and target latency of the cell
    true_accuracy: Optional[Finite] = None
    true_latency_ms: Optional[Positive] = None


class _Hypervolume(_Open):
    ratio: Annotated[Finite, Field(ge=0)]
    reference: dict[str, Finite]
    true_front_size: Annotated[int, Field(ge=1)]
    true_front_found: Annotated[int, Field(ge=0)]


class _LatencyTruth(_Open):
    """nasbench201: the run against the measured target latency of every cell."""

    latency: str
    latency_srcc: Optional[Finite]
    optimum: Optional[_LatencyBest]
    accuracy_gap: Optional[Finite]
    violations: Annotated[int, Field(ge=0)]
    hypervolume: Optional[_Hypervolume]
    hypervolume_median_ref: Optional[_Hypervolume]
    found_front: list[_LatencyBest]
    true_front: list[_LatencyBest]
    adaptation: Optional[dict[str, Any]]


class _VerifiedCell(_LatencyBest):
    meets_target: bool


class _Verified(_Open):
    """nasbench201 with ``verify``: the front's most accurate cells measured on the target."""

    k: Annotated[int, Field(ge=1, le=MAX_VERIFY)]
    latency: str
    target_ms: Positive
    measurements: Annotated[int, Field(ge=0, le=MAX_VERIFY)]
    cells: Annotated[list[_VerifiedCell], Field(max_length=MAX_VERIFY)]
    kept: Optional[_VerifiedCell]
    closest: Optional[_VerifiedCell]
    accuracy_gap: Optional[Finite]


class LatencyTargetResult(_Open):
    """``result.json`` of the sub-network search alone under a latency target (``"kind":
    "subnet-latency"``): the most accurate sub-network within ``target_ms``, by ``strategy``."""

    kind: Literal["subnet-latency"]
    config: _SubnetConfig
    space: str
    strategy: Literal[SUBNET_STRATEGIES]
    latency: str
    target_ms: Positive
    best: _LatencyBest
    trajectory: Annotated[list[_LatencyPoint], Field(min_length=1)]
    front: Annotated[list[_LatencyBest], Field(min_length=1)]
    evaluations: Annotated[int, Field(ge=1)]
    search_seconds: Annotated[Finite, Field(ge=0)]
    seconds: Annotated[Finite, Field(ge=0)]
    truth: Optional[_LatencyTruth] = None
    verified: Optional[_Verified] = None
