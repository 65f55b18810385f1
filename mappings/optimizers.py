"""Mapping optimizers behind one interface: ``optimize(layer, acc, optimizer=...)``.

- ``exhaustive``: every capacity-valid mapping of the ``MappingSpace`` (small spaces; the
  ground truth the others are measured against).
- ``random``: valid mappings sampled from the space; the best one.
- ``heuristic``: dataflow-aware seeds (weight-, output-, input- and row-stationary-like): the
  array filled for the highest utilization, the register file grown greedily with the
  stationary data space, the global buffer grown greedily, every order combination.
- ``evolution``: a genetic algorithm over the NAAS encoding (``encoding.py``).
- ``auto`` (default): the heuristic seeds and random samples, then best-improvement local
  search from the best few: change one loop's split together with the loop orders; when that
  is stuck, change the splits of two loops at once (e.g. trade the PEs of a shared array
  dimension). It gave the best quality per second in ``codesign bench mapper`` (see
  docs/benchmarks.md).

Every optimizer evaluates candidates in bulk with the numba kernel; only the winner is turned
into a ``Cost`` by the scalar path. Same seed, same result.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from accelerators.cost import Cost, evaluate_mapping
from accelerators.kernel import COL, evaluate_batch, hw_arrays
from accelerators.spec import Accelerator, load_accelerator
from models.errors import MappingError
from models.layer import DIMS, Layer

from .mapping import Mapping
from .space import N_ORDER_COMBOS, N_ORDERS, NDIM, ORDER_STATIONARY, MappingSpace

OBJECTIVES = {"edp": "edp", "energy": "energy_pj", "latency": "cycles"}
OPTIMIZERS = ("auto", "heuristic", "random", "evolution", "exhaustive")
DEFAULT_BUDGET = {"auto": 2000, "random": 20000, "evolution": 4000, "heuristic": 0, "exhaustive": 400_000_000}


@dataclass
class MapResult:
    """The best mapping found, its cost, how many mappings were evaluated and the time taken."""

    mapping: Mapping
    cost: Cost
    evaluated: int
    seconds: float
    optimizer: str = "auto"
    objective: str = "edp"

    @property
    def value(self) -> float:
        """The objective value of the mapping (EDP in pJ x cycles, energy in pJ, or cycles)."""
        return {"edp": self.cost.edp, "energy": self.cost.energy_pj, "latency": self.cost.cycles}[self.objective]

    def to_dict(self) -> dict:
        return {"optimizer": self.optimizer, "objective": self.objective, "evaluated": self.evaluated,
                "seconds": self.seconds, "mapping": self.mapping.to_dict(), "cost": self.cost.to_dict()}


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise MappingError(f"unknown objective '{objective}' (known: {', '.join(OBJECTIVES)})")
    return objective


def check_optimizer(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise MappingError(f"unknown mapping optimizer '{optimizer}' (known: {', '.join(OPTIMIZERS)})")
    return optimizer


def _argbest(obj, edp) -> int:
    """First row with the least objective, ties broken by EDP."""
    ties = np.flatnonzero(obj == obj.min())
    return int(ties[np.argmin(edp[ties])]) if len(ties) > 1 else int(ties[0])


# ---- shared search state ------------------------------------------------------------------
class _Search:
    """Evaluates batches with the kernel, counts them and keeps the best valid mapping.

    Candidates are ranked by the objective, ties broken by EDP, then by first seen.
    """

    def __init__(self, space: MappingSpace, objective: str, observe=None):
        self.space = space
        self.observe = observe
        self.layer = space.layer
        self.hw = hw_arrays(space.acc)
        self.col = COL[OBJECTIVES[objective]]
        self.evaluated = 0
        self.best_key = (math.inf, math.inf)
        self.best = None  # (T, S, O) of the best so far

    def run(self, T, S, O) -> tuple[np.ndarray, np.ndarray]:
        """Objective and EDP of every row (``inf`` where invalid)."""
        if len(T) == 0:
            return np.empty(0), np.empty(0)
        out = evaluate_batch(self.layer, self.hw, T, S, O)
        self.evaluated += len(T)
        if self.observe is not None:
            self.observe(out, T, S, O)
        valid = out[:, COL["reason"]] == 0
        obj = np.where(valid, out[:, self.col], np.inf)
        edp = np.where(valid, out[:, COL["edp"]], np.inf)
        i = _argbest(obj, edp)
        if (obj[i], edp[i]) < self.best_key:
            self.best_key = (float(obj[i]), float(edp[i]))
            self.best = (T[i].copy(), S[i].copy(), O[i].copy())
        return obj, edp

    def run_idx(self, idx, oc):
        return self.run(*self.space.arrays(idx, oc))

    def run_all_orders(self, idx):
        """Every split combination of ``idx`` under every order combination."""
        return self.run(*self.space.arrays_all_orders(idx))

    def result(self, name: str, objective: str, t0: float) -> MapResult:
        if self.best is None:
            raise MappingError(f"layer '{self.layer.name}': no valid mapping found on '{self.space.acc.name}'")
        m = Mapping.from_arrays(*self.best)
        cost = evaluate_mapping(self.layer, self.space.acc, *m.to_arrays())
        return MapResult(mapping=m, cost=cost, evaluated=self.evaluated,
                         seconds=time.perf_counter() - t0, optimizer=name, objective=objective)


def _trivial(space: MappingSpace):
    """Every loop at DRAM level: fits whenever one element of each data space fits."""
    idx = np.array([[space.split_index(d, (1, 1, int(space.bounds[d])), (1, 1, 1)) for d in range(NDIM)]])
    return idx, np.zeros(1, dtype=np.int64)


def _best_rows(obj, edp, k: int) -> np.ndarray:
    """Indices of the ``k`` best finite rows (objective, then EDP)."""
    order = np.lexsort((edp, obj))
    order = order[np.isfinite(obj[order])]
    return order[:k]


# ---- exhaustive ---------------------------------------------------------------------------
def _exhaustive(search: _Search, rng, budget: int):
    space = search.space
    for idx in space.enumerate_splits():
        if search.evaluated + len(idx) * N_ORDER_COMBOS > budget:
            raise MappingError(f"layer '{space.layer.name}': mapping space too large for exhaustive search "
                               f"(more than {budget:,} mappings; use another optimizer or a larger budget)")
        search.run_all_orders(idx)


# ---- random -------------------------------------------------------------------------------
def _random(search: _Search, rng, budget: int):
    search.run_idx(*_trivial(search.space))
    left = max(0, budget - 1)
    while left > 0:
        n = min(left, 1 << 16)
        search.run_idx(*search.space.sample_indices(n, rng))
        left -= n


# ---- heuristic seeds ----------------------------------------------------------------------
# (loops grown in the register file, loop orders in which the global buffer is grown)
_STYLES = (
    ("CKSR", ("KCPQRSNG", "PQNKCRSG")),   # weight-stationary: a weight tile per PE
    ("QPKN", ("KCPQRSNG", "PQNKCRSG")),   # output-stationary: an output tile per PE
    ("CQPSR", ("KCPQRSNG", "PQNKCRSG")),  # input-stationary: an input tile per PE
    ("SQC", ("PQNKCRSG", "KCPQRSNG")),    # row-stationary-like: a filter row and an input row per PE
)
_MAX_SPATIAL = 50_000


def _spatial_choices(space: MappingSpace, k: int) -> list[np.ndarray]:
    """The ``k`` spatial assignments (``[8, 3]`` factors) with the fewest temporal iterations."""
    cur = np.ones((1, NDIM, 3), dtype=np.int64)
    for d in range(NDIM):
        opts = np.unique(space.splits[d][:, 3:6], axis=0)
        M, n = len(cur), len(opts)
        nxt = np.repeat(cur, n, axis=0)
        nxt[:, d] = np.tile(opts, (M, 1))
        cur = nxt[np.all(nxt.prod(axis=1) <= space.array_caps, axis=1)]
        if len(cur) > _MAX_SPATIAL:  # keep the most parallel partial assignments
            par = cur.prod(axis=(1, 2)) / space.passes(cur.prod(axis=1))
            cur = cur[np.argsort(-par, kind="stable")[:_MAX_SPATIAL]]
    per_dim = cur.prod(axis=2)  # [M, 8] total spatial factor of each loop
    iters = np.prod(-(-space.bounds // per_dim), axis=1).astype(np.float64) * space.passes(cur.prod(axis=1))
    order = np.lexsort((per_dim.prod(axis=1), iters))
    return [cur[i] for i in order[:k]]


def _greedy(space: MappingSpace, sp: np.ndarray, rf_dims: str, glb_dims: str):
    """Split indices: spatial factors ``sp[8, 3]``, register-file factors grown loop by loop in
    ``rf_dims`` order as far as they fit, then buffer factors the same way over ``glb_dims``."""
    sp_tot = sp.prod(axis=1)
    t0 = np.ones(NDIM, dtype=np.int64)
    t1 = np.ones(NDIM, dtype=np.int64)
    rows = [space.splits[d][np.all(space.splits[d][:, 3:6] == sp[d], axis=1)] for d in range(NDIM)]

    def fits() -> bool:
        # the loops above are not chosen yet: a double-buffered level keeps room for two copies
        return bool(space.fits(0, t0[None], assume_refilled=True)[0]
                    and space.fits(1, (t0 * sp_tot * t1)[None], assume_refilled=True)[0])

    def grow(t, d, values):
        for v in sorted({int(x) for x in values}, reverse=True):
            t[d] = v
            if fits():
                return
        t[d] = 1

    for c in rf_dims:
        d = DIMS.index(c)
        grow(t0, d, rows[d][:, 0])
    for c in glb_dims:
        d = DIMS.index(c)
        grow(t1, d, rows[d][rows[d][:, 0] == t0[d], 1])
    idx = []
    for d in range(NDIM):
        r = rows[d][(rows[d][:, 0] == t0[d]) & (rows[d][:, 1] == t1[d])]
        if len(r) == 0:
            return None
        idx.append(space.split_index(d, r[0, 0:3], r[0, 3:6]))
    return np.array(idx, dtype=np.int64)


def heuristic_seeds(space: MappingSpace, n_spatial: int = 3):
    """Dataflow-aware seed mappings as ``(idx[M, 8], oc[M])``: for each of the ``n_spatial``
    most parallel array assignments and each style, the register file grown with the style's
    stationary data and the global buffer grown after it; under one order per stationary data
    space at each level (3 x 3 combinations)."""
    seeds = []
    for sp in _spatial_choices(space, n_spatial):
        for rf_dims, glb_orders in _STYLES:
            for glb_dims in glb_orders:
                idx = _greedy(space, sp, rf_dims, glb_dims)
                if idx is not None:
                    seeds.append(idx)
    if not seeds:
        return _trivial(space)
    idx = np.unique(np.array(seeds), axis=0)
    combos = _order_neighbours(0)  # one order per stationary space at each level (3 x 3)
    return np.repeat(idx, len(combos), axis=0), np.tile(combos, len(idx))


def _heuristic(search: _Search, rng, budget: int):
    search.run_idx(*_trivial(search.space))
    search.run_idx(*heuristic_seeds(search.space))
    # then every order combination (window-first variants too) of the best seed
    best = search.space.indices_of(*search.best) if search.best is not None else None
    if best is not None:
        search.run_idx(np.repeat(best[0][None], N_ORDER_COMBOS, axis=0), np.arange(N_ORDER_COMBOS))


# ---- local search (auto) ------------------------------------------------------------------
def _neighbourhood(space: MappingSpace):
    """Template of all one-loop split changes: ``(dims[N], rows[N])``."""
    dims = [d for d in range(NDIM) if len(space.splits[d]) > 1]
    nd = np.concatenate([np.full(len(space.splits[d]), d) for d in dims]) if dims else np.zeros(0, np.int64)
    nr = np.concatenate([np.arange(len(space.splits[d])) for d in dims]) if dims else np.zeros(0, np.int64)
    return nd.astype(np.int64), nr.astype(np.int64)


def local_search(search: _Search, idx, oc, max_steps: int = 100):
    """Best-improvement descent: each step tries every other split of every loop under the
    stationarity choices of every order (the current window-first variant of each) and the
    current splits under every order combination, and moves to the best if it improves.
    Returns the final point."""
    space = search.space
    nd, nr = _neighbourhood(space)
    N = len(nd)
    idx = np.asarray(idx, dtype=np.int64).copy()
    obj, edp = search.run_idx(idx[None], np.array([oc]))
    cur = (obj[0], edp[0])
    for _ in range(max_steps):
        cand = np.repeat(idx[None], N, axis=0)
        cand[np.arange(N), nd] = nr
        combos = _order_neighbours(oc)
        rows = np.concatenate([np.tile(cand, (len(combos), 1)), np.repeat(idx[None], N_ORDER_COMBOS, axis=0)])
        ocs = np.concatenate([np.repeat(combos, N), np.arange(N_ORDER_COMBOS)])
        obj, edp = search.run_idx(rows, ocs)
        j = _argbest(obj, edp)
        if not (obj[j], edp[j]) < cur:
            break
        cur = (obj[j], edp[j])
        idx = rows[j].copy()
        oc = int(ocs[j])
    return idx, oc, cur


def _order_neighbours(oc: int) -> np.ndarray:
    """Order combinations one stationarity choice away from ``oc``: the same window-first
    variant where it exists, every stationary space at each level (3 x 3 combinations)."""
    g, d = divmod(int(oc), N_ORDERS)
    pick = []
    for lvl_order in (g, d):
        same = {}
        for o, x in enumerate(ORDER_STATIONARY):
            same.setdefault(x, o)
        same[ORDER_STATIONARY[lvl_order]] = lvl_order
        pick.append(sorted(same.values()))
    return np.array([a * N_ORDERS + b for a in pick[0] for b in pick[1]], dtype=np.int64)


def _pair_moves(space: MappingSpace, idx, rng, cap: int):
    """Index rows changing the splits of two loops at once (every pair of loops; a random
    subset of at most ``cap`` rows when there are more)."""
    dims = [d for d in range(NDIM) if len(space.splits[d]) > 1]
    blocks = []
    for i, a in enumerate(dims):
        for b in dims[i + 1:]:
            na, nb = len(space.splits[a]), len(space.splits[b])
            rows = np.repeat(idx[None], na * nb, axis=0)
            rows[:, a] = np.repeat(np.arange(na), nb)
            rows[:, b] = np.tile(np.arange(nb), na)
            blocks.append(rows)
    if not blocks:
        return np.zeros((0, NDIM), dtype=np.int64)
    rows = np.concatenate(blocks)
    if len(rows) > cap:
        rows = rows[np.sort(rng.choice(len(rows), cap, replace=False))]
    return rows


def _descend(search: _Search, idx, oc, rng, pair_cap: int, rounds: int = 10):
    """Local search with one-loop moves; when stuck, try two-loop moves (e.g. trading PEs of a
    shared array dimension between two loops) and descend again from any improvement."""
    idx, oc, cur = local_search(search, idx, oc)
    for _ in range(rounds):
        if pair_cap <= 0:
            break
        cand = _pair_moves(search.space, idx, rng, pair_cap)
        obj, edp = search.run_idx(cand, np.full(len(cand), oc))
        if len(cand) == 0:
            break
        j = _argbest(obj, edp)
        if not (obj[j], edp[j]) < cur:
            break
        idx, oc, cur = local_search(search, cand[j], oc)
    return idx, oc, cur


def _auto(search: _Search, rng, budget: int, starts: int = 3, pair_cap: int = 60000):
    """Seeds + ``budget`` random samples, then ``_descend`` from the ``starts`` best distinct."""
    space = search.space
    pool_idx, pool_oc = [], []
    for idx, oc in (_trivial(space), heuristic_seeds(space), space.sample_indices(budget, rng)):
        pool_idx.append(idx)
        pool_oc.append(oc)
    idx, oc = np.concatenate(pool_idx), np.concatenate(pool_oc)
    obj, edp = search.run_idx(idx, oc)
    seen = set()
    for i in _best_rows(obj, edp, 8 * starts):
        key = tuple(idx[i])
        if key in seen:
            continue
        seen.add(key)
        _descend(search, idx[i], int(oc[i]), rng, pair_cap)
        if len(seen) == starts:
            break


# ---- evolution over the NAAS encoding -----------------------------------------------------
def _evolution(search: _Search, rng, budget: int, population: int = 64, mutation_sigma: float = 0.15,
               mutation_prob: float = 0.2):
    """(mu + lambda) genetic algorithm: tournament parents, uniform crossover, Gaussian
    mutation of the encoding vector; the initial population is sampled from the space."""
    from .encoding import ENCODING_LENGTH, decode_batch, encode

    space = search.space
    layer, acc = space.layer, space.acc
    init_idx, init_oc = space.sample_indices(population, rng)
    T, S, O = space.arrays(init_idx, init_oc)
    pop = np.array([encode(Mapping.from_arrays(T[i], S[i], O[i]), layer, acc) for i in range(len(T))])
    fit, edp = search.run(T, S, O)
    while search.evaluated < budget:
        n = min(population, budget - search.evaluated)
        # tournament selection of two parents per child, uniform crossover, Gaussian mutation
        a = rng.integers(0, len(pop), (n, 2))
        b = rng.integers(0, len(pop), (n, 2))
        pa = np.where(fit[a[:, 0]] <= fit[a[:, 1]], a[:, 0], a[:, 1])
        pb = np.where(fit[b[:, 0]] <= fit[b[:, 1]], b[:, 0], b[:, 1])
        mask = rng.random((n, ENCODING_LENGTH)) < 0.5
        child = np.where(mask, pop[pa], pop[pb])
        mut = rng.random((n, ENCODING_LENGTH)) < mutation_prob
        child = np.clip(child + mut * rng.normal(0.0, mutation_sigma, (n, ENCODING_LENGTH)), 0.0, 1.0)
        cfit, cedp = search.run(*decode_batch(child, layer, acc))
        allv = np.concatenate([pop, child])
        allf = np.concatenate([fit, cfit])
        alle = np.concatenate([edp, cedp])
        keep = np.lexsort((alle, allf))[:population]
        pop, fit, edp = allv[keep], allf[keep], alle[keep]


_RUNNERS = {"exhaustive": _exhaustive, "random": _random, "heuristic": _heuristic,
            "evolution": _evolution, "auto": _auto}


def optimize(layer: Layer, acc: Accelerator, optimizer: str = "auto", objective: str = "edp",
             seed: int = 0, budget: int | None = None, observe=None) -> MapResult:
    """Best mapping of ``layer`` on ``acc`` for ``objective`` (``edp``, ``energy``, ``latency``).

    ``budget``: for ``random`` and ``evolution`` the mappings to evaluate, for ``auto`` the
    random samples added to the seeds, for ``exhaustive`` the most mappings it may enumerate.
    ``observe(out, T, S, O)``, when given, sees every batch the search evaluates (the kernel's
    output rows, ``accelerators.kernel.COL``, and the mapping arrays).
    Raises ``MappingError`` naming the layer and the memory level when nothing fits.
    """
    check_optimizer(optimizer)
    check_objective(objective)
    t0 = time.perf_counter()
    space = MappingSpace(layer, load_accelerator(acc))
    space.require_fit()
    search = _Search(space, objective, observe)
    rng = np.random.default_rng(seed)
    _RUNNERS[optimizer](search, rng, DEFAULT_BUDGET[optimizer] if budget is None else int(budget))
    return search.result(optimizer, objective, t0)


def settings(optimizer: str, budget: int | None = None) -> dict:
    """The settings that change an optimizer's result (part of the cache key, with the seed)."""
    check_optimizer(optimizer)
    return {"optimizer": optimizer, "budget": DEFAULT_BUDGET[optimizer] if budget is None else int(budget)}
