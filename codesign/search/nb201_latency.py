"""NAS-Bench-201 under a latency target, with real accuracy and a known truth.

``codesign search --space nasbench201 --objective accuracy --max-latency MS --latency-source SPEC``:
the most accurate cell whose latency under ``SPEC`` is at most ``MS``, by the sub-network
evolution. ``SPEC`` is one of

- ``pi5:RUNTIME``: the measured Raspberry Pi 5 latency of every cell (HW-NAS-Bench-360,
  ``models.nb201_table``; RUNTIME is ``litert``, ``onnx`` or ``torchmobile``);
- ``adaproxy:TARGET:PROXY[:N]``: the Pi 5 latency of runtime TARGET *predicted* for every cell
  by AdaProxy (``codesign.validation.adaproxy``) from a proxy device: PROXY is a device column of
  the "One Proxy Device" latency set (``nasbench201/oneproxy_latency.csv``, 1,999 measured cells)
  or another Pi 5 runtime. The proxy's per-operator latencies are a non-negative least-squares
  fit of its measurements on each default encoding of the cells (operator counts, counts over
  the live edges, both plus the live one-hot; ``codesign.validation.monotonicity``); a Pi 5 proxy,
  measured on every cell, also keeps the part of its latency the fit misses. AdaProxy is fitted
  to N (default 30) target cells drawn with the run's seed and predicts all 15,625
  (``codesign.validation.adaproxy.bag``: the average of 20 fits on subsamples; below 15 samples
  no lambda can be validated and the fit is the proxy's ranking rescaled).

Every cell's measured target latency is known either way, so a run also records the truth: the
found cell's measured latency and whether it meets the target, the exact most accurate cell
within the target (from the table) and the gap to it, and the hypervolume ratio of the front of
the cells the search evaluated (measured accuracy and latency) against the true front within
the target (reference points: the table's least, or its median, accuracy and the target).

``--verify K`` (:func:`verify`) then measures the K most accurate cells of the search's front on
the target and keeps the most accurate one that truly meets it: the run's answer is
``verified.kept`` (``best`` stays the search's own pick, the one ``truth`` judges).
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from models.errors import CodesignError

PI5 = "pi5"
ADAPROXY = "adaproxy"
DEFAULT_SOURCE = "pi5:litert"
DEFAULT_SAMPLES = 30
MIN_SAMPLES = 5           # AdaProxy target samples: fewer leave alpha and c to two or three cells
MUTATION_PROB = 0.3       # each of the 6 edges resampled in a mutation (studies/nb201_cosearch.py)
LATENCY_FLOOR_MS = 1e-3   # a predicted latency below it (a negative intercept) is raised to it
ONEPROXY_ASSET = "nasbench201/oneproxy_latency.csv"
ONEPROXY_ORIGIN = "the data released with 'One Proxy Device Is Enough for Hardware-Aware Neural Architecture Search'"


def is_nb201_source(spec) -> bool:
    """Whether ``spec`` names a NAS-Bench-201 latency (``pi5:...`` or ``adaproxy:...``)."""
    return isinstance(spec, str) and spec.split(":", 1)[0] in (PI5, ADAPROXY)


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--latency-source`` of nasbench201: ``kind`` ``"pi5"`` (measured) or
    ``"adaproxy"`` (predicted), the Pi 5 runtime ``target`` that is the truth, and for AdaProxy
    the ``proxy`` and the number of target ``samples``."""

    kind: str
    target: str
    proxy: str | None = None
    samples: int | None = None

    @property
    def text(self) -> str:
        if self.kind == PI5:
            return f"{PI5}:{self.target}"
        return f"{ADAPROXY}:{self.target}:{self.proxy}:{self.samples}"


def _runtime(spec: str, name: str, what: str) -> str:
    from models.nb201_table import RUNTIMES

    if name not in RUNTIMES:
        raise CodesignError(f"--latency-source {spec!r}: unknown Raspberry Pi 5 runtime {name!r} as {what} "
                            f"(known: {', '.join(RUNTIMES)})")
    return name


def parse_source(spec: str) -> SourceSpec:
    """``SourceSpec`` of ``spec`` (one ``CodesignError`` line when malformed; proxy devices and
    the sample count against the cells are checked by :func:`latency_source`)."""
    parts = spec.split(":") if isinstance(spec, str) else []
    if len(parts) == 2 and parts[0] == PI5:
        return SourceSpec(PI5, _runtime(spec, parts[1], "the measured latency"))
    if len(parts) in (3, 4) and parts[0] == ADAPROXY:
        target = _runtime(spec, parts[1], "the target")
        proxy = parts[2]
        if not re.fullmatch(r"[a-z0-9_]{1,64}", proxy):
            raise CodesignError(f"--latency-source {spec!r}: the proxy {proxy!r} is not a device name")
        n = DEFAULT_SAMPLES
        if len(parts) == 4:
            if not re.fullmatch(r"[0-9]{1,9}", parts[3]):
                raise CodesignError(f"--latency-source {spec!r}: N (target samples) must be a whole number, "
                                    f"got {parts[3]!r}")
            n = int(parts[3])
        if n < MIN_SAMPLES:
            raise CodesignError(f"--latency-source {spec!r}: AdaProxy needs at least {MIN_SAMPLES} target samples, "
                                f"got N={n}")
        if proxy == target:
            raise CodesignError(f"--latency-source {spec!r}: the proxy is the target itself; for the measured "
                                f"latency give {PI5}:{target}")
        return SourceSpec(ADAPROXY, target, proxy, n)
    raise CodesignError(f"--latency-source {spec!r}: for nasbench201 give {PI5}:RUNTIME (the measured Raspberry Pi 5 "
                        f"latency: litert, onnx, torchmobile) or {ADAPROXY}:TARGET:PROXY[:N] (TARGET a Pi 5 runtime "
                        f"predicted by AdaProxy from device PROXY with N target samples, default {DEFAULT_SAMPLES})")


# ---- the proxy's features over every cell ----------------------------------------------------

@lru_cache(maxsize=1)
def cell_encodings() -> dict:
    """``{encoding: matrix}`` of every table cell (rows in ``load_hw360`` order) for the default
    AdaProxy encodings (``codesign.validation.monotonicity.DEFAULT_ENCODINGS``)."""
    from codesign.validation.monotonicity import DEFAULT_ENCODINGS, LatencyTable
    from models.nb201_table import load_hw360
    from models.spaces.nasbench201 import NasBench201Space

    table = load_hw360()
    space = NasBench201Space()
    X = np.hstack([np.array([space.encode(s) for s in table.arch_strs], dtype=np.float64), np.ones((len(table), 1))])
    cells = LatencyTable("nasbench201 cells", X=X, arch_strs=list(table.arch_strs))
    return {e: cells.encoding(e) for e in DEFAULT_ENCODINGS}


@lru_cache(maxsize=1)
def load_oneproxy():
    """The "One Proxy Device" latency set (``codesign.validation.monotonicity.LatencyTable``)."""
    from codesign.validation.monotonicity import load_latency_csv
    from models.assets import asset_path

    return load_latency_csv(asset_path(ONEPROXY_ASSET, origin=ONEPROXY_ORIGIN))


def proxy_devices() -> list[str]:
    """Proxy names ``adaproxy:`` accepts: the oneproxy device columns and the Pi 5 runtimes."""
    from models.nb201_table import RUNTIMES

    return list(load_oneproxy().columns) + list(RUNTIMES)


@lru_cache(maxsize=16)
def proxy_features(proxy: str) -> tuple[dict, np.ndarray]:
    """``(sets, linear)``: the proxy's AdaProxy features of every table cell per encoding
    (``{encoding: phi}``), and its own latency model of every cell (the measured latency for a
    Pi 5 runtime, the first encoding's linear fit for a oneproxy device)."""
    from codesign.validation.adaproxy import fit_linear_proxy
    from codesign.validation.adaproxy import proxy_features as features
    from models.nb201_table import RUNTIMES, load_hw360

    enc = cell_encodings()
    if proxy in RUNTIMES:
        y = load_hw360().latency(proxy)
        return {e: features(X, y)[0] for e, X in enc.items()}, y
    op = load_oneproxy()
    if proxy not in op.columns:
        raise CodesignError(f"--latency-source: unknown proxy device {proxy!r} (known: {', '.join(op.columns)} "
                            f"in {ONEPROXY_ASSET}, or a Pi 5 runtime: {', '.join(RUNTIMES)})")
    y = op.column(proxy, latency=True)
    sets, own = {}, None
    for e, X in enc.items():
        w, c = fit_linear_proxy(op.encoding(e), y)
        keep = w != 0
        sets[e] = X[:, keep] * w[keep]
        if own is None:
            own = sets[e].sum(axis=1) + c
    return sets, own


def sample_rows(n_cells: int, samples: int, seed: int) -> np.ndarray:
    """The ``samples`` target cells a run measures (rows, sorted), drawn with ``seed``."""
    if samples > n_cells:
        raise CodesignError(f"--latency-source: N={samples} target samples, more than the {n_cells:,} cells with a "
                            f"measured Pi 5 latency")
    return np.sort(np.random.default_rng([seed, 0xADA]).choice(n_cells, size=samples, replace=False))


@dataclass
class Nb201Latency:
    """A latency source over the table's cells: ``latency_ms`` (what the search sees, per row),
    ``true_ms`` (the measured Pi 5 latency of ``target``), ``srcc`` of the two over every cell,
    ``info`` (the adaptation: proxy, samples, the encodings chosen)."""

    spec: str
    target: str
    latency_ms: np.ndarray
    true_ms: np.ndarray
    srcc: float
    info: dict = field(default_factory=dict)


def _finish(spec: SourceSpec, pred: np.ndarray, info: dict) -> Nb201Latency:
    from codesign.validation.monotonicity import srcc
    from models.nb201_table import load_hw360

    true = load_hw360().latency(spec.target)
    low = int((pred < LATENCY_FLOOR_MS).sum())
    pred = np.maximum(pred, LATENCY_FLOOR_MS)
    pred.setflags(write=False)  # shared by every caller of the cached source
    return Nb201Latency(spec.text, spec.target, pred, true, srcc(pred, true), {**info, "floored_cells": low})


@lru_cache(maxsize=8)
def latency_source(spec: str, seed: int = 0) -> Nb201Latency:
    """The latency of every table cell under ``spec`` (``pi5:...`` or ``adaproxy:...``); an
    AdaProxy source draws its target samples with ``seed``."""
    from codesign.validation.adaproxy import bag
    from models.nb201_table import load_hw360

    s = parse_source(spec)
    table = load_hw360()
    if s.kind == PI5:
        return _finish(s, table.latency(s.target).copy(), {})
    sets, _ = proxy_features(s.proxy)
    rows = sample_rows(len(table), s.samples, seed)
    y = table.latency(s.target)[rows]
    model = bag(sets, rows, y, seed=seed)
    pred = model.predict(sets)
    return _finish(s, pred, {"proxy": s.proxy, "samples": s.samples, "sample_rows": rows.tolist(),
                             "features": model.feature_counts()})


def scaled_proxy(target: str, proxy: str, samples: int, seed: int = 0) -> Nb201Latency:
    """The proxy's own latency, rescaled to the target by least squares on the same target
    samples an ``adaproxy`` source draws (``alpha * proxy + c`` only: no per-operator correction);
    the baseline AdaProxy is measured against (``studies/nb201_latency_sources.py``)."""
    from models.nb201_table import load_hw360

    s = parse_source(f"{ADAPROXY}:{target}:{proxy}:{samples}")
    table = load_hw360()
    _, own = proxy_features(s.proxy)
    rows = sample_rows(len(table), s.samples, seed)
    A = np.column_stack([own[rows], np.ones(len(rows))])
    alpha, c = np.linalg.lstsq(A, table.latency(s.target)[rows], rcond=None)[0]
    if alpha <= 0:  # noise must not reverse the proxy's ranking: proportional instead
        alpha, c = float(table.latency(s.target)[rows].sum() / own[rows].sum()), 0.0
    out = _finish(s, alpha * own + c, {"proxy": s.proxy, "samples": s.samples, "alpha": float(alpha), "c": float(c)})
    out.spec = f"scaled:{target}:{proxy}:{samples}"
    return out


# ---- checks and the exact answer -------------------------------------------------------------

def check_target(src: Nb201Latency, target_ms: float) -> None:
    """``InfeasibleError`` when no cell's latency under the source reaches ``target_ms``."""
    from models.nb201_table import load_hw360

    from .subnet_evolution import InfeasibleError

    i = int(np.argmin(src.latency_ms))
    low = float(src.latency_ms[i])
    if target_ms < low:
        raise InfeasibleError(f"target {target_ms:g} ms is below the latency of the fastest nasbench201 cell on "
                              f"{src.spec}: {low:.3f} ms ({load_hw360().arch_strs[i]})", {"latency_ms": low})


def optimum(accuracy: np.ndarray, latency_ms: np.ndarray, target_ms: float) -> int | None:
    """Row of the most accurate cell whose ``latency_ms`` is at most ``target_ms`` (of equally
    accurate ones the fastest, then the first); ``None`` when no cell is within the target."""
    ok = np.flatnonzero(latency_ms <= target_ms)
    if ok.size == 0:
        return None
    return int(ok[np.lexsort((ok, latency_ms[ok], -accuracy[ok]))[0]])


def front_hypervolume(found_rows, accuracy: np.ndarray, latency_ms: np.ndarray, target_ms: float,
                      ref_accuracy: float | None = None) -> dict | None:
    """Hypervolume ratio of the cells ``found_rows`` against the true front of all cells, by
    measured accuracy and latency, at the reference point ``(ref_accuracy, target)`` (default
    ``ref_accuracy``: the table's least accuracy): only what lies within the target and above
    ``ref_accuracy`` counts. ``None`` when the true front has no area there."""
    from .pareto import front_indices, hypervolume

    ref = (float(accuracy.min() if ref_accuracy is None else ref_accuracy), float(target_ms))
    true_idx = front_indices(accuracy, latency_ms)
    true_idx = true_idx[(latency_ms[true_idx] < ref[1]) & (accuracy[true_idx] > ref[0])]
    hv_true = hypervolume(accuracy[true_idx], latency_ms[true_idx], ref)
    if hv_true <= 0:
        return None
    rows = np.asarray(sorted(set(int(r) for r in found_rows)), dtype=np.int64)
    hv = hypervolume(accuracy[rows], latency_ms[rows], ref) if rows.size else 0.0
    return {"ratio": hv / hv_true, "hypervolume": hv, "true_hypervolume": hv_true,
            "reference": {"accuracy": ref[0], "latency_ms": ref[1]}, "true_front_size": int(true_idx.size),
            "true_front_found": int(np.isin(true_idx, rows).sum())}


# ---- the search ------------------------------------------------------------------------------

def search(src: Nb201Latency, target_ms: float, predictor=None, population: int = 32, generations: int = 8,
           seed: int = 0) -> dict:
    """The most accurate cell (``predictor``: default the table's measured accuracy) whose latency
    under ``src`` is at most ``target_ms``: ``subnet_evolution.evolve`` with ``select="accuracy"``
    and a hard latency ``Limit``. Returns the best cell, the trajectory, the front of what was
    evaluated and the truth (see the module docstring)."""
    from models.nb201_table import TableAccuracy, load_hw360
    from models.spaces import get_space

    from .pareto import front_indices
    from .subnet_evolution import EvolutionConfig, Limit, evolve

    check_target(src, target_ms)
    table = load_hw360()
    predictor = predictor if predictor is not None else TableAccuracy(table)
    calls = {"n": 0}

    class Counting:  # counts the cells the evolution scores
        def predict(self, archs):
            archs = list(archs)
            calls["n"] += len(archs)
            return predictor.predict(archs)

    def measure(arch):
        return {"latency_ms": float(src.latency_ms[table.row(arch)])}

    trajectory = []
    t0 = time.perf_counter()

    def progress(gen, cand):
        if not trajectory or cand.accuracy > trajectory[-1]["accuracy"]:
            trajectory.append({"seconds": time.perf_counter() - t0, "accuracy": float(cand.accuracy),
                               "evaluations": calls["n"]})

    cfg = EvolutionConfig(population=population, generations=generations, seed=seed, select="accuracy",
                          mode="hard", mutation_prob=MUTATION_PROB)
    res = evolve(get_space("nasbench201"), Counting(), lambda a: measure(a)["latency_ms"], -math.inf, cfg,
                 progress=progress, measure=measure, limits=[Limit("latency_ms", float(target_ms), "latency", "ms")])
    secs = time.perf_counter() - t0
    b = res.best
    if not trajectory or b.accuracy > trajectory[-1]["accuracy"]:
        trajectory.append({"seconds": secs, "accuracy": float(b.accuracy), "evaluations": calls["n"]})
    acc, true = table.accuracy, src.true_ms
    found = table.rows([c.arch for c in res.candidates])

    def point(arch, score) -> dict:
        r = table.row(arch)
        return {"arch": {"ops": list(arch["ops"])}, "accuracy": float(score), "latency_ms": float(src.latency_ms[r]),
                "true_accuracy": float(acc[r]), "true_latency_ms": float(true[r])}

    def cell(r) -> dict:  # measured accuracy and target latency of table row r
        return {"arch": _arch(table.arch_strs[r]), "accuracy": float(acc[r]), "latency_ms": float(true[r])}

    best = point(b.arch, b.accuracy)
    best["meets_target"] = bool(best["true_latency_ms"] <= target_ms)
    opt = optimum(acc, true, target_ms)
    truth = {"latency": f"{PI5}:{src.target}", "latency_srcc": src.srcc if math.isfinite(src.srcc) else None,
             "optimum": None if opt is None else cell(opt),
             "accuracy_gap": None if opt is None else float(acc[opt] - best["true_accuracy"]),
             "violations": int((true[found] > target_ms).sum()),
             "hypervolume": front_hypervolume(found, acc, true, target_ms),
             "hypervolume_median_ref": front_hypervolume(found, acc, true, target_ms, float(np.median(acc))),
             "found_front": [cell(found[i]) for i in front_indices(acc[found], true[found]) if true[found[i]] <= target_ms],
             "true_front": [cell(i) for i in front_indices(acc, true) if true[i] <= target_ms],
             "adaptation": {k: v for k, v in src.info.items() if k != "sample_rows"} or None}
    return {"best": best, "trajectory": trajectory, "front": [point(c.arch, c.accuracy) for c in res.pareto],
            "evaluations": calls["n"], "distinct_evaluated": res.evaluated, "seconds": secs, "truth": truth,
            "info": {"population": population, "generations": generations, "mutation_prob": MUTATION_PROB,
                     "latency_source": src.spec}}


def verify(front, src: Nb201Latency, target_ms: float, k: int) -> dict:
    """Measure the ``k`` most accurate cells of a search's ``front`` (points of :func:`search`;
    by the accuracy the search saw, ties in front order; only cells within ``target_ms`` under
    ``src``) on the target: the table's measured Pi 5 latency of ``src.target``, which for a
    ``pi5:`` source is the latency the search saw. Returns the ``verified`` block: ``cells`` (each
    with its ``latency_ms`` under the source and its measured ``true_latency_ms``), ``kept`` (the
    most accurate verified cell that truly meets the target, or ``None``), ``closest`` (the
    verified cell with the lowest measured latency), ``accuracy_gap`` (the exact optimum's
    accuracy within the target minus the kept cell's measured accuracy; ``None`` without a kept
    cell or an optimum) and ``measurements`` (the cells measured: ``k``, or fewer when the front
    has fewer within the target)."""
    from models.nb201_table import load_hw360

    table = load_hw360()
    within = [p for p in front if p["latency_ms"] <= target_ms]
    cells = []
    for p in sorted(within, key=lambda p: -p["accuracy"])[:k]:
        r = table.row(p["arch"])
        measured = float(src.true_ms[r])  # the measurement on the target
        cells.append({"arch": {"ops": list(p["arch"]["ops"])}, "accuracy": float(p["accuracy"]),
                      "latency_ms": float(src.latency_ms[r]), "true_accuracy": float(table.accuracy[r]),
                      "true_latency_ms": measured, "meets_target": bool(measured <= target_ms)})
    kept = next((c for c in cells if c["meets_target"]), None)
    closest = min(cells, key=lambda c: c["true_latency_ms"]) if cells else None
    opt = optimum(table.accuracy, src.true_ms, target_ms)
    gap = None if kept is None or opt is None else float(table.accuracy[opt]) - kept["true_accuracy"]
    return {"k": int(k), "latency": f"{PI5}:{src.target}", "target_ms": float(target_ms), "measurements": len(cells),
            "cells": cells, "kept": kept, "closest": closest, "accuracy_gap": gap}


def verified_text(v: dict) -> str:
    """One line on a ``verified`` block: the kept cell, or that none of the verified cells meets
    the target and the closest one."""
    n = v["measurements"]
    if v["kept"] is None:
        c = v["closest"]
        return (f"none of the {n} verified cells meets the target; the closest: {c['true_latency_ms']:.3f} ms on "
                f"{v['latency']} (accuracy {c['true_accuracy']:.4f}, arch {c['arch']})" if c else
                "no cell of the front to verify")
    k = v["kept"]
    gap = f", {v['accuracy_gap']:.4f} below the exact optimum" if v["accuracy_gap"] is not None else ""
    return (f"kept after verifying the {n} most accurate front cells on {v['latency']}: accuracy "
            f"{k['true_accuracy']:.4f} at {k['true_latency_ms']:.3f} ms measured ({k['latency_ms']:.3f} ms "
            f"predicted){gap}; arch {k['arch']}")


def _arch(arch_str: str) -> dict:
    from models.spaces.nasbench201 import arch_from_string

    return arch_from_string(arch_str)


def search_latency_target(cfg) -> dict:
    """The ``result.json`` (``"kind": "subnet-latency"``) of ``codesign search --space nasbench201
    --objective accuracy --max-latency MS --latency-source SPEC``; the accuracy is ``cfg.accuracy``
    (the table, or a zero-cost proxy's score: then ``true_accuracy`` is the table's)."""
    from .outer_loop import load_accuracy

    t0 = time.perf_counter()
    src = latency_source(cfg.latency, cfg.seed)
    res = search(src, cfg.max_latency_ms, load_accuracy(cfg.space, cfg.accuracy), cfg.population, cfg.generations,
                 cfg.seed)
    extra = {"verified": verify(res["front"], src, cfg.max_latency_ms, cfg.verify)} if cfg.verify else {}
    return {"kind": "subnet-latency", "config": cfg.to_dict(), "space": cfg.space, "strategy": cfg.strategy,
            "latency": src.spec, "target_ms": cfg.max_latency_ms, "best": res["best"],
            "trajectory": res["trajectory"], "front": res["front"], "evaluations": res["evaluations"],
            "search_seconds": res["seconds"], "seconds": time.perf_counter() - t0,
            "info": {**res["info"], "distinct_evaluated": res["distinct_evaluated"]}, "truth": res["truth"], **extra}
