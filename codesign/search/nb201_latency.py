"""NAS-Bench-201 under a latency target, with real accuracy and a known truth.

``codesign search --space nasbench201 --objective accuracy --max-latency MS --latency-source SPEC``:
the most accurate cell whose latency under ``SPEC`` is at most ``MS``, by the sub-network
evolution. The source (``codesign.validation.nb201_latency``: the measured Pi 5 latency, or
AdaProxy's prediction from a proxy device) is built by the caller and passed in.

Every cell's measured target latency is known either way, so a run also records the truth: the
found cell's measured latency and whether it meets the target, the exact most accurate cell
within the target (from the table) and the gap to it, and the hypervolume ratio of the front of
the cells the search evaluated (measured accuracy and latency) against the true front within
the target (reference points: the table's least, or its median, accuracy and the target).
"""
from __future__ import annotations

import math
import time

import numpy as np

MUTATION_PROB = 0.3       # each of the 6 edges resampled in a mutation (studies/nb201_cosearch.py)


# ---- checks and the exact answer -------------------------------------------------------------

def check_target(src, target_ms: float) -> None:
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

def search(src, target_ms: float, predictor=None, population: int = 32, generations: int = 8,
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
    truth = {"latency": src.truth, "latency_srcc": src.srcc if math.isfinite(src.srcc) else None,
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


def verify(front, src, target_ms: float, k: int) -> dict:
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
    return {"k": int(k), "latency": src.truth, "target_ms": float(target_ms), "measurements": len(cells),
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


def search_latency_target(cfg, src) -> dict:
    """The ``result.json`` (``"kind": "subnet-latency"``) of ``codesign search --space nasbench201
    --objective accuracy --max-latency MS --latency-source SPEC``; the accuracy is ``cfg.accuracy``
    (the table, or a zero-cost proxy's score: then ``true_accuracy`` is the table's); ``src`` the
    source named by ``cfg.latency`` (``codesign.validation.nb201_latency.latency_source``)."""
    from .outer_loop import load_accuracy

    t0 = time.perf_counter()
    res = search(src, cfg.max_latency_ms, load_accuracy(cfg.space, cfg.accuracy), cfg.population, cfg.generations,
                 cfg.seed)
    extra = {"verified": verify(res["front"], src, cfg.max_latency_ms, cfg.verify)} if cfg.verify else {}
    return {"kind": "subnet-latency", "config": cfg.to_dict(), "space": cfg.space, "strategy": cfg.strategy,
            "latency": src.spec, "target_ms": cfg.max_latency_ms, "best": res["best"],
            "trajectory": res["trajectory"], "front": res["front"], "evaluations": res["evaluations"],
            "search_seconds": res["seconds"], "seconds": time.perf_counter() - t0,
            "info": {**res["info"], "distinct_evaluated": res["distinct_evaluated"]}, "truth": res["truth"], **extra}
