"""Pareto fronts of (accuracy, cost) points, higher accuracy and lower cost being better, and
their 2-D hypervolume: how a search's front is scored against the true front of a fully
tabulated space (NAS-Bench-201).

A point *dominates* another when it is at least as accurate and at most as costly, and better
in one of the two. The front keeps one point per (accuracy, cost) pair: of equal points, the
first given.

Hypervolume (2-D) against a reference point ``(ref_accuracy, ref_cost)``: the area of the set
``{(a, c): ref_accuracy <= a <= accuracy_i and cost_i <= c <= ref_cost for some point i}``, in
accuracy x cost units; a point outside the reference box adds nothing. ``reference_point`` is
the box every point of the given set lies in (its least accuracy, its largest cost).
"""
from __future__ import annotations

import math

import numpy as np

from models.errors import CodesignError

MAX_POINTS = 10_000_000  # points of one front computation (NAS-Bench-201 has 15,625)


def _arrays(accuracy, cost) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    c = np.asarray(cost, dtype=np.float64).reshape(-1)
    if a.shape != c.shape:
        raise CodesignError(f"pareto: {a.size} accuracies but {c.size} costs")
    if a.size > MAX_POINTS:
        raise CodesignError(f"pareto: {a.size:,} points; accepted at most {MAX_POINTS:,}")
    if not (np.isfinite(a).all() and np.isfinite(c).all()):
        raise CodesignError("pareto: accuracies and costs must be finite numbers")
    return a, c


def front_indices(accuracy, cost) -> np.ndarray:
    """Indices of the non-dominated points, sorted by increasing cost (and accuracy)."""
    a, c = _arrays(accuracy, cost)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(a.size), -a, c))  # by cost, then higher accuracy, then given order
    best = np.maximum.accumulate(a[order])
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    keep[1:] = a[order][1:] > best[:-1]  # strictly more accurate than everything cheaper or equal
    return order[keep].astype(np.int64)


def nondominated_ranks(accuracy, cost) -> np.ndarray:
    """Rank of every point in non-dominated sorting: 0 for the front, 1 for the front of the rest,
    and so on (equal points share a rank)."""
    a, c = _arrays(accuracy, cost)
    n = a.size
    ranks = np.full(n, -1, dtype=np.int64)
    left = np.arange(n)
    r = 0
    while left.size:
        la, lc = a[left], c[left]
        # dominated by some other remaining point
        dom = ((la[None, :] >= la[:, None]) & (lc[None, :] <= lc[:, None])
               & ((la[None, :] > la[:, None]) | (lc[None, :] < lc[:, None]))).any(axis=1)
        ranks[left[~dom]] = r
        left = left[dom]
        r += 1
    return ranks


def crowding(accuracy, cost) -> np.ndarray:
    """NSGA-II crowding distance of each point among the given ones (the ends: infinity)."""
    a, c = _arrays(accuracy, cost)
    n = a.size
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for v in (a, c):
        order = np.argsort(v, kind="stable")
        span = v[order[-1]] - v[order[0]]
        d[order[0]] = d[order[-1]] = math.inf
        if span > 0:
            d[order[1:-1]] += (v[order[2:]] - v[order[:-2]]) / span
    return d


def reference_point(accuracy, cost) -> tuple[float, float]:
    """``(least accuracy, largest cost)`` of the points: the box all of them lie in."""
    a, c = _arrays(accuracy, cost)
    if a.size == 0:
        raise CodesignError("pareto: no points to take a reference point from")
    return float(a.min()), float(c.max())


def hypervolume(accuracy, cost, ref: tuple[float, float]) -> float:
    """Area dominated by the points inside the box bounded by ``ref = (ref_accuracy, ref_cost)``."""
    a, c = _arrays(accuracy, cost)
    ra, rc = float(ref[0]), float(ref[1])
    if not (math.isfinite(ra) and math.isfinite(rc)):
        raise CodesignError("pareto: the reference point must be finite")
    inside = (a > ra) & (c < rc)
    a, c = a[inside], c[inside]
    if a.size == 0:
        return 0.0
    idx = front_indices(a, c)
    fa, fc = a[idx], c[idx]
    widths = np.append(fc[1:], rc) - fc
    return float(np.sum(widths * (fa - ra)))


def hypervolume_ratio(found_accuracy, found_cost, all_accuracy, all_cost,
                      ref: tuple[float, float] | None = None) -> dict:
    """Hypervolume of the found points over that of the true front of all points, at ``ref``
    (default: ``reference_point`` of all points); also how many true-front points were found."""
    fa, fc = _arrays(found_accuracy, found_cost)
    ta, tc = _arrays(all_accuracy, all_cost)
    if ta.size == 0:
        raise CodesignError("pareto: no points in the whole set")
    ref = reference_point(ta, tc) if ref is None else (float(ref[0]), float(ref[1]))
    true_idx = front_indices(ta, tc)
    hv_true = hypervolume(ta[true_idx], tc[true_idx], ref)
    if hv_true <= 0:
        raise CodesignError(f"pareto: the true front has no area at the reference point {ref}")
    hv_found = hypervolume(fa, fc, ref)
    true_pts = {(float(x), float(y)) for x, y in zip(ta[true_idx], tc[true_idx])}
    hit = len(true_pts & {(float(x), float(y)) for x, y in zip(fa, fc)})
    return {"hypervolume": hv_found, "true_hypervolume": hv_true, "ratio": hv_found / hv_true,
            "reference": {"accuracy": ref[0], "cost": ref[1]},
            "true_front_size": int(true_idx.size), "true_front_found": hit}
