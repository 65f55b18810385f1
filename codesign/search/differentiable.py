"""Differentiable hardware-aware sub-network search over the OFA MobileNetV3 space.

ProxylessNAS / FBNet-style: every choice of the space gets logits, the accuracy term is the
OFA authors' MLP predictor fed a relaxed encoding, and the latency term is the expected
latency under the choice probabilities, from per-operator costs (the Note10 lookup table).

Choices and probabilities (per restart): kernel ``p[i,k]`` and expand ratio ``q[i,e]`` of each
of the 20 block slots, depth ``d[s,j]`` of each of the 5 stages (j over {2, 3, 4}), resolution
``rho[r]``. Slot ``j`` (0-based) of stage ``s`` is built with probability
``a[i] = P(depth_s > j)`` (1 for the first two slots). With ``L[r,i,k,e]`` the latency of slot
``i`` and ``F[r]`` that of the fixed parts (stem, first block, head)::

    E[lat] = sum_r rho[r] * (F[r] + sum_i a[i] * sum_{k,e} p[i,k] q[i,e] L[r,i,k,e])

(exact: the choices are independent, and the lookup table is a sum over operators).
Accuracy: the predictor's 128 inputs are the one-hots of kernel and expand ratio per slot
times "built", and the resolution bin; the relaxation feeds ``a[i] p[i,:]``, ``a[i] q[i,:]``
and ``rho`` (``relax="softmax"``: all probabilities are ``softmax(logits / tau)``, ``tau``
annealed, for both terms) or straight-through Gumbel-softmax samples of the same
(``relax="gumbel"``: the forward value is the predictor on a sampled discrete arch, the
gradient that of the tempered softmax; E[lat] under ``softmax(logits)``). Loss per restart::

    loss = -acc + lam * max(0, E[lat] / target - 1)

with ``lam`` a dual variable (multiplied by ``exp(eta * (E[lat]/target - 1))`` each step) and
restarts vectorised in one batch. Every discrete arch the search touches (the arg-max of each
restart, Gumbel samples) is scored exactly (predictor and table latency) and the best one within
the target kept; a discrete local search (single and paired gene changes, exact scores) repairs
and polishes it at the end.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from models.errors import CodesignError

from .subnet_evolution import EvolutionConfig, InfeasibleError, Limit, evolve

KS = (3, 5, 7)
EXPAND = (3, 4, 6)
DEPTHS = (2, 3, 4)
MAX_DEPTH = 4
RELAXATIONS = ("gumbel", "softmax")
STRATEGIES = ("differentiable", "evolution")
PENALTY = 10.0  # discrete polish: accuracy units per unit of relative latency excess


# ---- per-operator latency table ---------------------------------------------------------------
@dataclass
class LatencyTable:
    """Per-operator latency of an elastic-MBConv space: ``block[r, i, k, e]`` (ms) of slot ``i``
    with kernel ``KS[k]`` and expand ratio ``EXPAND[e]`` at resolution ``resolutions[r]``, and
    ``fixed[r]`` (stem, first block, head). An arch's latency is ``fixed[r]`` plus the entries of
    its built slots."""

    space_name: str
    source: str
    resolutions: tuple
    block: np.ndarray   # [R, n_blocks, 3, 3]
    fixed: np.ndarray   # [R]
    n_stages: int = 5
    unit: str = "ms"

    @property
    def n_blocks(self) -> int:
        return self.block.shape[1]

    def r_index(self, r: int) -> int:
        try:
            return self.resolutions.index(int(r))
        except ValueError:
            raise CodesignError(f"{self.source}: no latency entries at resolution {r} (it has "
                                f"{', '.join(map(str, self.resolutions))})") from None

    def latency(self, arch: dict) -> float:
        """Latency (ms) of one arch dict."""
        return float(self.latency_idx(*to_indices(arch, self))[0])

    def latency_idx(self, K, E, D, R) -> np.ndarray:
        """Latencies (ms) of a batch of archs in index form (see ``to_indices``)."""
        K, E, D, R = (np.atleast_2d(K), np.atleast_2d(E), np.atleast_2d(D), np.atleast_1d(R))
        act = active_mask(D)
        per = self.block[R[:, None], np.arange(self.n_blocks)[None, :], K, E]
        return self.fixed[R] + (per * act).sum(1)

    def min_latency(self) -> tuple[float, dict]:
        """The smallest latency any arch reaches (ms) and that arch."""
        best = None
        for ri, r in enumerate(self.resolutions):
            m = self.block[ri].reshape(self.n_blocks, -1)
            arg = m.argmin(1)
            K, E = arg // len(EXPAND), arg % len(EXPAND)
            D = []
            for s in range(self.n_stages):
                cum = np.cumsum(m.min(1)[s * MAX_DEPTH:(s + 1) * MAX_DEPTH])
                D.append(int(np.argmin([cum[d - 1] for d in DEPTHS])))
            lat = float(self.latency_idx(K[None], E[None], np.array([D]), np.array([ri]))[0])
            if best is None or lat < best[0]:
                best = (lat, from_indices(K, E, np.array(D), ri, self))
        return best

    def max_latency(self) -> float:
        """The largest latency any arch reaches (ms)."""
        return max(float(self.fixed[ri] + self.block[ri].reshape(self.n_blocks, -1).max(1).sum())
                   for ri in range(len(self.resolutions)))

    def to_dict(self) -> dict:
        return {"space": self.space_name, "source": self.source, "unit": self.unit,
                "resolutions": list(self.resolutions), "fixed": self.fixed.tolist(), "block": self.block.tolist()}


def lut_table(backend, space="ofa-mbv3") -> LatencyTable:
    """A lookup-table latency backend (``lut:note10``: ``codesign.validation.latency.get_backend``)
    split into per-slot entries for ``space``, at each resolution it has tables for. The entries
    are the backend's own per-operator latencies (``layer_latencies``), so the sum over an arch's
    built slots equals the backend's latency of that arch."""
    sp = get_space_obj(space)
    resolutions = getattr(backend, "resolutions", None)
    if not resolutions:
        raise CodesignError(f"{getattr(backend, 'spec', backend)}: a per-slot table needs a lookup-table backend "
                            f"with one table per resolution (lut:note10)")
    return per_slot_table(sp, resolutions, lambda a: backend.layer_latencies(a, space=sp.name), backend.spec)


def per_slot_table(space, resolutions, op_latencies, source: str, unit: str = "ms") -> LatencyTable:
    """Per-slot table of ``space`` from ``op_latencies(arch) -> [(operator name, cost)]`` in network
    order: first conv, first (fixed) block, one operator per built slot, then the head (what a
    lookup-table backend's ``layer_latencies`` returns). Probed with all slots built, one kernel /
    expand ratio everywhere, at each resolution."""
    sp = get_space_obj(space)
    nb = sp.n_blocks
    res = tuple(int(r) for r in resolutions)
    block = np.zeros((len(res), nb, len(KS), len(EXPAND)))
    fixed = np.zeros(len(res))
    for ri, r in enumerate(res):
        fixed_names = None
        for ki, k in enumerate(KS):
            for ei, e in enumerate(EXPAND):
                ops = op_latencies({"ks": [k] * nb, "e": [e] * nb, "d": [MAX_DEPTH] * sp.n_stages, "r": r})
                if len(ops) <= 2 + nb:
                    raise CodesignError(f"{source}: {len(ops)} operators for a sub-network of {sp.name} with all "
                                        f"{nb} slots built; expected the stem, {nb} slots and a head")
                slots, rest = ops[2:2 + nb], ops[:2] + ops[2 + nb:]
                block[ri, :, ki, ei] = [float(v) for _, v in slots]
                names = [n for n, _ in rest]
                if fixed_names is None:
                    fixed_names, fixed[ri] = names, sum(float(v) for _, v in rest)
                elif names != fixed_names:
                    raise CodesignError(f"{source}: the fixed operators of {sp.name} change with the slots' genes")
    return LatencyTable(sp.name, source, res, block, fixed, sp.n_stages, unit)


def get_space_obj(space):
    """A search space object from its name (or itself)."""
    from models.spaces import get_space

    return get_space(space) if isinstance(space, str) else space


METRICS = {"latency": ("latency_ms", "ms"), "energy": ("energy_pj", "pJ")}


def analytical_table(accelerator="eyeriss", space="ofa-mbv3", metric: str = "latency", optimizer: str = "heuristic",
                     budget: int | None = None, resolutions=(160, 176, 192, 208, 224), seed: int = 0) -> LatencyTable:
    """Per-slot costs of ``space`` on an accelerator (preset name, YAML path or ``Accelerator``) from
    the analytical model: every layer mapped by ``mappings.evaluate.evaluate_network`` (shape
    cache) and summed per block. ``metric``: "latency" (ms) or "energy" (pJ), both additive over
    layers, so an arch's entry sum equals ``evaluate_network(...).total`` of it (no aux ops). EDP
    is a product of two sums and has no per-slot table."""
    from mappings.cache import MappingCache
    from mappings.evaluate import evaluate_network

    if metric not in METRICS:
        raise CodesignError(f"unknown cost metric {metric!r} (known: {', '.join(METRICS)})")
    attr, unit = METRICS[metric]
    sp = get_space_obj(space)
    nb = sp.n_blocks
    res = tuple(int(r) for r in resolutions)
    block = np.zeros((len(res), nb, len(KS), len(EXPAND)))
    fixed = np.zeros(len(res))
    cache = MappingCache()
    name = None
    for ri, r in enumerate(res):
        for ki, k in enumerate(KS):
            for ei, e in enumerate(EXPAND):
                arch = {"ks": [k] * nb, "e": [e] * nb, "d": [MAX_DEPTH] * sp.n_stages, "r": r}
                cost = evaluate_network(sp.to_network(arch), accelerator, optimizer=optimizer, objective=metric,
                                        cache=cache, seed=seed, budget=budget)
                name = cost.accelerator
                per_slot, rest = np.zeros(nb), 0.0
                for lc in cost.layers:
                    part = lc.name.split(".")
                    # blocks.0 is the fixed first block; blocks.1 .. blocks.nb are the slots (all built)
                    b = int(part[1]) if part[0] == "blocks" else 0
                    v = float(getattr(lc.cost, attr))
                    if 1 <= b <= nb:
                        per_slot[b - 1] += v
                    else:
                        rest += v
                block[ri, :, ki, ei] = per_slot
                fixed[ri] = rest
    return LatencyTable(sp.name, f"analytical:{name}:{metric}", res, block, fixed, sp.n_stages, unit)


# ---- index form of archs --------------------------------------------------------------------
def active_mask(D) -> np.ndarray:
    """[B, 20] bool: which slots are built for depth indices ``D`` [B, 5]."""
    D = np.atleast_2d(D)
    depth = np.asarray(DEPTHS)[D]                      # [B, S]
    j = np.arange(MAX_DEPTH)
    return (j[None, None, :] < depth[:, :, None]).reshape(D.shape[0], -1)


def to_indices(arch: dict, table: LatencyTable):
    """``(K, E, D, R)`` index arrays (batch of one) of an arch dict."""
    try:
        K = np.array([[KS.index(int(k)) for k in arch["ks"]]])
        E = np.array([[EXPAND.index(int(e)) for e in arch["e"]]])
        D = np.array([[DEPTHS.index(int(d)) for d in arch["d"]]])
    except (KeyError, TypeError, ValueError):
        raise CodesignError(f"not an arch of {table.space_name}: {arch!r}") from None
    return K, E, D, np.array([table.r_index(arch["r"])])


def from_indices(K, E, D, ri, table: LatencyTable) -> dict:
    """The canonical arch dict of one index-form arch (unbuilt slots get the smallest genes)."""
    act = active_mask(np.asarray(D)[None])[0]
    return {"ks": [KS[int(k)] if a else KS[0] for k, a in zip(K, act)],
            "e": [EXPAND[int(e)] if a else EXPAND[0] for e, a in zip(E, act)],
            "d": [DEPTHS[int(d)] for d in D], "r": int(table.resolutions[int(ri)])}


def _res_bins(table: LatencyTable, space) -> np.ndarray:
    """Predictor resolution-bin column of each table resolution."""
    from models.spaces.ofa_mbv3 import RES_BIN_START, RES_BIN_WIDTH
    off = space.n_blocks * (len(KS) + len(EXPAND))
    return np.array([off + (r - RES_BIN_START) // RES_BIN_WIDTH for r in table.resolutions])


class _Exact:
    """Exact scores of index-form archs: the predictor's MLP on the one-hot encoding (torch,
    float32 as ``predictor.predict``, one thread: numpy's threaded BLAS is erratic on small
    batches of a busy machine) and the table's latency; counts the archs scored."""

    def __init__(self, space, predictor, table: LatencyTable, relaxation: "Relaxation"):
        self.space, self.predictor, self.table, self.rel = space, predictor, table, relaxation
        self.bins = _res_bins(table, space)
        self.evaluations = 0

    def features(self, K, E, D, R) -> np.ndarray:
        """The predictor's input rows (``space.encode_batch`` of the archs)."""
        n, nb = K.shape
        act = active_mask(D)
        X = np.zeros((n, self.space.n_features), np.float32)
        rows, cols = np.nonzero(act)
        X[rows, cols * len(KS) + K[rows, cols]] = 1.0
        X[rows, nb * len(KS) + cols * len(EXPAND) + E[rows, cols]] = 1.0
        X[np.arange(n), self.bins[R]] = 1.0
        return X

    def __call__(self, K, E, D, R):
        self.evaluations += len(R)
        acc = self.rel.mlp(self.rel.torch.from_numpy(self.features(K, E, D, R))).numpy()
        return acc, self.table.latency_idx(K, E, D, R)


# ---- the relaxation (torch) -----------------------------------------------------------------
class Relaxation:
    """Differentiable accuracy and expected latency of the choice probabilities (torch)."""

    def __init__(self, space, predictor, table: LatencyTable):
        import torch

        self.torch = torch
        self.space, self.table = space, table
        self.layers = [(torch.from_numpy(np.ascontiguousarray(w.T)),
                        None if b is None else torch.from_numpy(b)) for w, b in predictor.weights]
        self.offset = float(predictor.offset)
        self.L = torch.from_numpy(table.block)          # [R, nb, 3, 3] float64
        self.F = torch.from_numpy(table.fixed)          # [R]
        n_res_bins = space.n_features - space.n_blocks * (len(KS) + len(EXPAND))
        bins = _res_bins(table, space) - space.n_blocks * (len(KS) + len(EXPAND))
        self.res_map = torch.zeros(len(table.resolutions), n_res_bins)
        self.res_map[torch.arange(len(bins)), torch.from_numpy(bins)] = 1.0

    def active(self, pd):
        """P(slot built) [B, nb] from depth probabilities ``pd`` [B, S, 3]: P(depth > j)."""
        torch = self.torch
        tail = torch.flip(torch.cumsum(torch.flip(pd, [-1]), -1), [-1])   # P(d >= DEPTHS[j])
        ones = torch.ones_like(pd[..., :2])
        # slot j is built when depth > j: j = 0, 1 always; j = 2 when d >= 3; j = 3 when d = 4
        return torch.cat([ones, tail[..., 1:]], -1).reshape(pd.shape[0], -1)

    def accuracy(self, pk, pe, pd, pr):
        """Predictor output on the relaxed encoding [B]."""
        torch = self.torch
        a = self.active(pd)[..., None]
        h = torch.cat([(pk * a).flatten(1), (pe * a).flatten(1), pr.to(torch.float32) @ self.res_map], 1)
        return self.mlp(h.to(torch.float32))

    def mlp(self, h):
        """The predictor on feature rows ``h`` (float32 tensor) [B], as float64."""
        torch = self.torch
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            h = h @ w
            if b is not None:
                h = h + b
            if i < last:
                h = torch.relu(h)
        return h[:, 0].to(torch.float64) + self.offset

    def expected_latency(self, pk, pe, pd, pr):
        """E[lat] (ms) [B] under independent choices (ProxylessNAS), exact for the table."""
        torch = self.torch
        a = self.active(pd.to(torch.float64))
        per = torch.einsum("bik,bie,rike->bri", pk.to(torch.float64), pe.to(torch.float64), self.L)
        return (pr.to(torch.float64) * (self.F[None] + (per * a[:, None, :]).sum(-1))).sum(-1)


def _gumbel_hard(logits, tau: float, gen):
    """Straight-through Gumbel-softmax sample (one-hot forward, tempered-softmax gradient) drawn
    from ``gen`` (``torch.nn.functional.gumbel_softmax`` draws from the global generator)."""
    import torch

    u = torch.rand(logits.shape, generator=gen, dtype=logits.dtype).clamp_(1e-12, 1 - 1e-12)
    y = torch.softmax((logits - torch.log(-torch.log(u))) / tau, -1)
    hard = torch.nn.functional.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)
    return hard - y.detach() + y


# ---- search result --------------------------------------------------------------------------
@dataclass
class SearchResult:
    """Best arch within the latency target, its exact predicted accuracy and table latency, the
    wall time, the number of archs scored exactly, and the trajectory ``[(seconds, best
    accuracy within the target so far, evaluations)]``."""

    strategy: str
    target_ms: float
    arch: dict
    accuracy: float
    latency_ms: float
    seconds: float
    evaluations: int
    trajectory: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    front: list = field(default_factory=list)  # accuracy-latency front of the archs scored within the target

    def time_to_reach(self, accuracy: float, tol: float = 1e-9):
        """Seconds until the best accuracy within the target first reached ``accuracy`` (None if never)."""
        return next((t for t, acc, _ in self.trajectory if acc >= accuracy - tol), None)

    def evaluations_to_reach(self, accuracy: float, tol: float = 1e-9):
        """Archs scored until the best accuracy within the target first reached ``accuracy`` (None if never)."""
        return next((n for _, acc, n in self.trajectory if acc >= accuracy - tol), None)

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "target_ms": self.target_ms, "arch": self.arch,
                "accuracy": self.accuracy, "latency_ms": self.latency_ms, "seconds": self.seconds,
                "evaluations": self.evaluations,
                "trajectory": [{"seconds": t, "accuracy": a, "evaluations": n} for t, a, n in self.trajectory],
                "front": self.front, "info": self.info}


class _Best:
    """Best arch within the target seen so far (and in the current round), with the trajectory
    of its accuracy."""

    def __init__(self, target: float, t0: float, exact: _Exact):
        self.target, self.t0, self.exact = target, t0, exact
        self.acc, self.lat, self.idx = -math.inf, math.inf, None
        self.trajectory = []
        self.within = []  # every arch scored within the target: (K, E, D, R, acc, lat) arrays
        self.new_round()

    def new_round(self) -> None:
        self.round_acc, self.round_idx = -math.inf, None

    def front(self, table: LatencyTable) -> list[dict]:
        """The archs scored within the target that no other scored one beats in both accuracy and
        latency, by increasing latency: ``{"arch", "accuracy", "latency_ms"}``."""
        from .pareto import front_indices

        if not self.within:
            return []
        K, E, D, R, acc, lat = (np.concatenate(x) for x in zip(*self.within))
        return [{"arch": from_indices(K[i], E[i], D[i], int(R[i]), table), "accuracy": float(acc[i]),
                 "latency_ms": float(lat[i])} for i in front_indices(acc, lat)]

    def offer(self, K, E, D, R, acc, lat) -> None:
        ok = lat <= self.target
        if not ok.any():
            return
        self.within.append((K[ok], E[ok], D[ok], np.asarray(R)[ok], acc[ok], lat[ok]))
        i = int(np.flatnonzero(ok)[np.argmax(acc[ok])])
        if acc[i] > self.round_acc:
            self.round_acc, self.round_idx = float(acc[i]), (K[i].copy(), E[i].copy(), D[i].copy(), int(R[i]))
        if acc[i] > self.acc:
            self.acc, self.lat = float(acc[i]), float(lat[i])
            self.idx = (K[i].copy(), E[i].copy(), D[i].copy(), int(R[i]))
            self.trajectory.append((time.perf_counter() - self.t0, self.acc, self.exact.evaluations))


def check_target(table: LatencyTable, target_ms: float) -> None:
    """``InfeasibleError`` (a ``CodesignError``) when no arch reaches ``target_ms``."""
    if not (isinstance(target_ms, (int, float)) and math.isfinite(target_ms) and target_ms > 0):
        raise CodesignError(f"target must be a positive number of {table.unit}, got {target_ms!r}")
    low, arch = table.min_latency()
    if target_ms < low:
        raise InfeasibleError(f"target {target_ms:g} {table.unit} is below the smallest latency any {table.space_name} "
                              f"sub-network reaches on {table.source}: {low:.3f} {table.unit} (depths {arch['d']}, "
                              f"r={arch['r']})", {"latency_ms": low})


# ---- discrete polish ------------------------------------------------------------------------
def _moves(K, E, D, R, n_res):
    """One-gene moves of one index-form arch that keep its depths: ``(kind, pos, value)`` arrays,
    kind 0 = kernel of slot ``pos``, 1 = expand ratio of slot ``pos``, 2 = resolution."""
    slots = np.flatnonzero(active_mask(D[None])[0])
    kind, pos, val = [], [], []
    for g, cur in ((0, K), (1, E)):
        for v in range(3):
            ch = slots[cur[slots] != v]
            kind += [g] * len(ch); pos += list(ch); val += [v] * len(ch)
    for v in range(n_res):
        if v != R:
            kind.append(2); pos.append(0); val.append(v)
    return np.array(kind), np.array(pos), np.array(val)


def _apply(K, E, D, R, kind, pos, val):
    """The batch of archs: ``(K, E, D, R)`` with move ``n`` (of each given move array) applied."""
    n = len(kind)
    Kb, Eb, Db, Rb = np.tile(K, (n, 1)), np.tile(E, (n, 1)), np.tile(D, (n, 1)), np.full(n, R)
    rows = np.arange(n)
    for g, arr in ((0, Kb), (1, Eb)):
        m = kind == g
        arr[rows[m], pos[m]] = val[m]
    m = kind == 2
    Rb[m] = val[m]
    return Kb, Eb, Db, Rb


def _depth_moves(K, E, D, R):
    """The archs one stage depth away; newly built slots copy the last built slot of the stage."""
    out = []
    for s in range(len(D)):
        for v in range(len(DEPTHS)):
            if v == D[s]:
                continue
            k, e, d = K.copy(), E.copy(), D.copy()
            d[s] = v
            last = s * MAX_DEPTH + DEPTHS[D[s]] - 1
            for j in range(DEPTHS[D[s]], DEPTHS[v]):
                k[s * MAX_DEPTH + j], e[s * MAX_DEPTH + j] = K[last], E[last]
            out.append((k, e, d))
    return (np.stack([o[0] for o in out]), np.stack([o[1] for o in out]), np.stack([o[2] for o in out]),
            np.full(len(out), R))


def polish(exact: "_Exact", best: "_Best", start, deadline: float | None = None, pairs: int = 12,
           max_rounds: int = 100) -> None:
    """Discrete local search from ``start`` (index form) with exact scores: repeatedly move to the
    best of all one-gene neighbours (kernel, expand ratio, depth, resolution) and of pairs of
    gene changes (one of the ``pairs`` most accurate kernel / expand / resolution moves with any
    latency-lowering one) by ``acc - PENALTY * max(0, lat/target - 1)``, until no move improves
    it. Feeds every scored arch to ``best``."""
    T = best.target
    K, E, D, R = (np.array(start[0]), np.array(start[1]), np.array(start[2]), int(start[3]))
    acc, lat = exact(K[None], E[None], D[None], np.array([R]))
    cur, cur_lat = float(acc[0] - PENALTY * max(0.0, lat[0] / T - 1)), float(lat[0])
    best.offer(K[None], E[None], D[None], np.array([R]), acc, lat)
    n_res = len(exact.table.resolutions)

    def score(batch):
        a, l = exact(*batch)
        best.offer(*batch, a, l)
        return batch, a, l, a - PENALTY * np.maximum(0.0, l / T - 1)

    for _ in range(max_rounds):
        if deadline is not None and time.perf_counter() > deadline:
            return
        kind, pos, val = _moves(K, E, D, R, n_res)
        single = score(_apply(K, E, D, R, kind, pos, val))
        scored = [single, score(_depth_moves(K, E, D, R))]
        if pairs:
            # an accuracy gain that overshoots the target, paid for by a latency cut elsewhere
            up = np.argsort(-single[1])[:pairs]
            down = np.flatnonzero(single[2] < cur_lat)
            u, d = np.repeat(up, len(down)), np.tile(down, len(up))
            ok = (kind[u] != kind[d]) | (pos[u] != pos[d])
            u, d = u[ok], d[ok]
            if len(u):
                Kp, Ep, Dp, Rp = _apply(K, E, D, R, kind[u], pos[u], val[u])
                rows = np.arange(len(d))
                for g, arr in ((0, Kp), (1, Ep)):
                    m = kind[d] == g
                    arr[rows[m], pos[d][m]] = val[d][m]
                m = kind[d] == 2
                Rp[m] = val[d][m]
                scored.append(score((Kp, Ep, Dp, Rp)))
        b, a, l, sc = max(scored, key=lambda t: float(t[3].max()))
        i = int(np.argmax(sc))
        if sc[i] <= cur + 1e-12:
            return
        cur, cur_lat = float(sc[i]), float(l[i])
        K, E, D, R = b[0][i].copy(), b[1][i].copy(), b[2][i].copy(), int(b[3][i])


# ---- the searches ---------------------------------------------------------------------------
def _mbv3_space(space, table: LatencyTable):
    """The space object (from its name), checked to be an OFA MobileNetV3 space the table is of."""
    from models.spaces import OfaMbv3Space

    sp = get_space_obj(space)
    if not isinstance(sp, OfaMbv3Space):
        raise CodesignError(f"the differentiable search covers the OFA MobileNetV3 spaces, not {sp.name}")
    if sp.name != table.space_name:
        raise CodesignError(f"the cost table is of space {table.space_name}, the search is over {sp.name}")
    return sp


def search_differentiable(space, predictor, latency_table: LatencyTable, target_ms: float, seed: int = 0,
                          steps: int = 60, restarts: int = 16, lr: float = 0.2, relax: str = "softmax",
                          tau: tuple = (1.0, 0.3), lam0: float = 0.1, eta: float = 0.5,
                          time_limit: float | None = None, rounds: int | None = 1,
                          polish_pairs: int = 12, do_polish: bool = True,
                          threads: int | None = 1) -> SearchResult:
    """Gradient search for the most accurate arch whose table latency is at most ``target_ms``.

    ``restarts`` independent logit sets (random init from ``seed``) are optimized together by Adam
    for ``steps`` steps (temperature annealed geometrically from ``tau[0]`` to ``tau[1]``); the best
    discrete arch within the target met on the way is then polished by a discrete local search.
    ``rounds``: how many such rounds (new seeds) to run; ``None`` runs rounds until ``time_limit``
    (seconds, which also stops a round early). Raises ``InfeasibleError`` when the target is below
    the smallest reachable latency. Set-up (torch import, tensors) is not counted in ``seconds``.
    """
    import torch

    if relax not in RELAXATIONS:
        raise CodesignError(f"unknown relaxation {relax!r} (known: {', '.join(RELAXATIONS)})")
    if rounds is None and time_limit is None:
        raise CodesignError("rounds=None (until the time limit) needs a time_limit")
    if steps < 0 or restarts < 1:
        raise CodesignError("steps must be at least 0 and restarts at least 1")
    check_target(latency_table, target_ms)
    space = _mbv3_space(space, latency_table)
    rel = Relaxation(space, predictor, latency_table)
    exact = _Exact(space, predictor, latency_table, rel)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit
    best = _Best(float(target_ms), t0, exact)
    T = float(target_ms)
    nb, S, nR = space.n_blocks, space.n_stages, len(latency_table.resolutions)
    rnd = 0
    try:
        while rounds is None or rnd < rounds:
            if deadline is not None and time.perf_counter() > deadline:
                break
            gen = torch.Generator().manual_seed(int(seed) * 1000 + rnd)
            B = restarts
            shapes = ((B, nb, len(KS)), (B, nb, len(EXPAND)), (B, S, len(DEPTHS)), (B, nR))
            logits = [(0.5 * torch.randn(s, generator=gen, dtype=torch.float64)).requires_grad_() for s in shapes]
            opt = torch.optim.Adam(logits, lr=lr)
            # each restart its own starting multiplier, spread over a decade around lam0
            lam = lam0 * torch.logspace(-0.5, 0.5, B, dtype=torch.float64)
            best.new_round()
            idx = [x.detach().argmax(-1).numpy() for x in logits]
            best.offer(*idx, *exact(*idx))
            for step in range(steps):
                if deadline is not None and time.perf_counter() > deadline:
                    break
                t = tau[0] * (tau[1] / tau[0]) ** (step / max(1, steps - 1))
                if relax == "gumbel":
                    probs = [torch.softmax(x, -1) for x in logits]
                    samples = [_gumbel_hard(x, t, gen) for x in logits]
                    acc = rel.accuracy(*samples)
                else:
                    probs = [torch.softmax(x / t, -1) for x in logits]
                    acc = rel.accuracy(*probs)
                elat = rel.expected_latency(*probs)
                over = elat / T - 1
                loss = (-acc + lam * torch.relu(over)).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    lam = (lam * torch.exp(eta * over.detach())).clamp(1e-3, 1e3)
                    # the discrete archs of this step: the arg-max of each restart (and the samples)
                    idx = [x.argmax(-1).numpy() for x in logits]
                    a_acc, a_lat = exact(*idx)
                    best.offer(*idx, a_acc, a_lat)
                    if relax == "gumbel":
                        sidx = [s.argmax(-1).numpy() for s in samples]
                        s_acc, s_lat = exact(*sidx)
                        best.offer(*sidx, s_acc, s_lat)
            if best.round_idx is None:
                # nothing within the target this round: repair the arg-max closest to it
                idx = [x.detach().argmax(-1).numpy() for x in logits]
                _, a_lat = exact(*idx)
                i = int(np.argmin(a_lat))
                polish(exact, best, tuple(v[i] for v in idx), deadline, pairs=polish_pairs)
            elif do_polish:
                polish(exact, best, best.round_idx, deadline, pairs=polish_pairs)
            rnd += 1
    finally:
        torch.set_num_threads(old_threads)
    secs = time.perf_counter() - t0
    if best.idx is None:
        raise InfeasibleError(f"differentiable search found no sub-network within {T:g} {latency_table.unit} in "
                              f"{secs:.2f} s",
                              {"latency_ms": latency_table.min_latency()[0]})
    arch = from_indices(*best.idx, latency_table)
    acc = float(predictor.predict([arch])[0])
    lat = latency_table.latency(arch)
    return SearchResult("differentiable", T, arch, acc, lat, secs, exact.evaluations, best.trajectory,
                        {"rounds": rnd, "steps": steps, "restarts": restarts, "relax": relax, "lr": lr,
                         "tau": list(tau), "lam0": lam0, "eta": eta, "latency_source": latency_table.source},
                        best.front(latency_table))


class TableResolutions:
    """``space`` with every sub-network's resolution snapped to the nearest one the table has
    (the evolution's operators draw from the space's own resolutions)."""

    def __init__(self, space, resolutions):
        self.space, self.name, self.resolutions = space, space.name, tuple(resolutions)

    def _snap(self, arch: dict) -> dict:
        r = min(self.resolutions, key=lambda x: (abs(x - arch["r"]), x))
        return arch if r == arch["r"] else {**arch, "r": r}

    def sample(self, rng):
        return self._snap(self.space.sample(rng))

    def mutate(self, arch, rng, prob):
        return self._snap(self.space.mutate(arch, rng, prob))

    def crossover(self, a, b, rng):
        return self._snap(self.space.crossover(a, b, rng))

    def validate(self, arch):
        return self.space.validate(arch)

    def to_network(self, arch):
        return self.space.to_network(arch)


def search_evolution(space, predictor, latency_table: LatencyTable, target_ms: float, seed: int = 0,
                     cfg: EvolutionConfig | None = None) -> SearchResult:
    """The evolutionary baseline at a latency target: ``subnet_evolution.evolve`` with
    ``select="accuracy"`` (the most accurate arch) and a hard ``Limit`` on the table latency.
    ``cfg`` defaults to ``EvolutionConfig`` (population 100, 20 generations) with ``seed``."""
    check_target(latency_table, target_ms)
    space = _mbv3_space(space, latency_table)
    from models.spaces.ofa_mbv3 import SAMPLE_RESOLUTIONS

    if set(SAMPLE_RESOLUTIONS) - set(latency_table.resolutions):
        space = TableResolutions(space, latency_table.resolutions)
    cfg = cfg or EvolutionConfig(seed=seed)
    cfg = EvolutionConfig(**{**cfg.to_dict(), "select": "accuracy", "mode": "hard"})
    T = float(target_ms)
    calls = {"n": 0}

    class Counting:  # counts the archs the evolution scores with the predictor
        def predict(self, archs):
            archs = list(archs)
            calls["n"] += len(archs)
            return predictor.predict(archs)

    memo: dict = {}

    def measure(arch):
        k = (tuple(arch["ks"]), tuple(arch["e"]), tuple(arch["d"]), arch["r"])
        if k not in memo:
            memo[k] = {"latency_ms": latency_table.latency(arch)}
        return memo[k]

    trajectory = []
    t0 = time.perf_counter()

    def progress(gen, cand):
        if not trajectory or cand.accuracy > trajectory[-1][1]:
            trajectory.append((time.perf_counter() - t0, float(cand.accuracy), calls["n"]))

    res = evolve(space, Counting(), lambda a: measure(a)["latency_ms"], -math.inf, cfg, progress=progress,
                 measure=measure, limits=[Limit("latency_ms", T, "latency", "ms")])
    secs = time.perf_counter() - t0
    b = res.best
    if not trajectory or b.accuracy > trajectory[-1][1]:
        trajectory.append((secs, float(b.accuracy), calls["n"]))
    return SearchResult("evolution", T, b.arch, float(b.accuracy), float(b.measures["latency_ms"]), secs, calls["n"],
                        trajectory, {"population": cfg.population, "generations": cfg.generations,
                                     "distinct_evaluated": res.evaluated, "latency_source": latency_table.source},
                        [{"arch": c.arch, "accuracy": float(c.accuracy), "latency_ms": float(c.measures["latency_ms"])}
                         for c in res.pareto])


def search(target_ms: float, latency_table: LatencyTable, strategy: str = "differentiable", space="ofa-mbv3",
           seed: int = 0, predictor=None, **options) -> dict:
    """The most accurate sub-network of ``space`` whose cost on ``latency_table`` (``lut_table`` or
    ``analytical_table``) is at most ``target_ms``, by ``strategy`` ("differentiable":
    ``search_differentiable``; "evolution": ``search_evolution``; ``options`` go to it).
    ``predictor`` defaults to the space's. Returns ``SearchResult.to_dict()`` (JSON-able)."""
    from models.predictors import load_predictor

    if strategy not in STRATEGIES:
        raise CodesignError(f"unknown search strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    sp = get_space_obj(space)
    predictor = predictor if predictor is not None else load_predictor(sp.name)
    fn = search_differentiable if strategy == "differentiable" else search_evolution
    return fn(sp, predictor, latency_table, target_ms, seed=seed, **options).to_dict()


def search_latency_target(cfg, latency_table: LatencyTable) -> dict:
    """The ``result.json`` (``"kind": "subnet-latency"``) of ``codesign search --objective accuracy
    --max-latency MS``: the most accurate sub-network of ``cfg.space`` within ``cfg.max_latency_ms``
    on ``latency_table`` (built from ``cfg.latency``), searched by ``cfg.strategy``; evolution
    with the run's population and generations. ``search_seconds`` is the search's own wall time,
    ``seconds`` includes the set-up."""
    t0 = time.perf_counter()
    options = {}
    if cfg.strategy == "evolution":
        options["cfg"] = EvolutionConfig(population=cfg.population, generations=cfg.generations, seed=cfg.seed)
    else:  # torch's first calls (about 1 s) are set-up, outside the timed search, as in the study
        search(cfg.max_latency_ms, latency_table, strategy="differentiable", space=cfg.space, seed=cfg.seed,
               steps=3, restarts=2, do_polish=False)
    res = search(cfg.max_latency_ms, latency_table, strategy=cfg.strategy, space=cfg.space, seed=cfg.seed, **options)
    return {"kind": "subnet-latency", "config": cfg.to_dict(), "space": cfg.space, "strategy": cfg.strategy,
            "latency": cfg.latency, "target_ms": cfg.max_latency_ms,
            "best": {"arch": res["arch"], "accuracy": res["accuracy"], "latency_ms": res["latency_ms"]},
            "trajectory": res["trajectory"], "front": res["front"], "evaluations": res["evaluations"],
            "search_seconds": res["seconds"], "seconds": time.perf_counter() - t0, "info": res["info"]}
