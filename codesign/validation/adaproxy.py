"""Proxy adaptation (AdaProxy) and the one-proxy search procedure of Lu et al., "One Proxy
Device Is Enough for Hardware-Aware Neural Architecture Search" (SIGMETRICS 2022).

A proxy device has a linear latency model ``w`` over an architecture encoding ``x``
(per-operator latencies; :func:`fit_linear_proxy` fits one from proxy measurements). Its
features are ``phi = w o x`` (one row per architecture, ``phi.sum() = w . x``). AdaProxy
predicts the target latency as

    L(x) = ((alpha * 1 + b) o w) . x + c  =  alpha * sum(phi) + b . phi + c

from a few target measurements: ``alpha`` rescales the proxy as a whole, ``b`` is a sparse
per-feature relative correction (L1 penalty ``lambda``), ``c`` a constant. ``alpha`` and ``c``
are not penalized. The objective, as in the authors' solver, is

    mean((y - L(x))**2) + lambda * ||b||_1.

``lambda`` is chosen from a grid by the SRCC of the predictions on held-out target samples
(see :class:`AdaProxy`); with ``b = 0`` (the largest ``lambda`` of the grid) the model ranks
exactly as the proxy does, so the grid always contains "keep the proxy's ranking".

:func:`adapt_incremental` adds target samples until the validation SRCC reaches a threshold;
given the proxy's features over several architecture encodings it adapts each and keeps the
best on the same validation (:func:`fit_best`). The final prediction averages ``bags`` such
fits on random subsamples of the target samples (:func:`bag`; not in the paper): with 30-50
noisy samples one fit's lambda and encoding choice hang on a few of them, and the average is
steadier (docs/monotonicity.md). :func:`algorithm1` is the paper's Algorithm 1 on a finite
candidate set.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from models.errors import CodesignError

from .monotonicity import srcc, srcc_lower_bound, srcc_rows

# lambda grid, relative to lambda_max (the smallest lambda at which b = 0 is optimal)
LAMBDA_RATIOS = tuple(float(r) for r in np.logspace(0, -4, 17))
# final predictions average BAGS fits, each on a random BAG_FRACTION of the target samples
BAGS = 20
BAG_FRACTION = 0.8


class AdaptationError(CodesignError):
    """Bad input to a proxy fit or an adaptation (shapes, too few samples, non-finite values)."""


# --------------------------------------------------------------------------- linear proxy

def fit_linear_proxy(X, y, *, ridge: float = 0.0, nonneg: bool = True,
                     intercept: bool = True) -> tuple[np.ndarray, float]:
    """Per-feature proxy latencies ``w`` and intercept ``c`` with ``y ~ X @ w + c`` by
    (ridge-regularized) least squares over the encodings ``X`` of measured architectures.

    ``nonneg=True`` constrains ``w >= 0`` (an operator cannot take negative time, and
    ``phi = w o x`` then stays a split of the proxy latency); the intercept is free in sign.
    For one-hot encodings (one operator per slot) the constraint costs nothing: each slot's
    weights are only determined up to a shift that the intercept absorbs, and the fit puts
    the slot's cheapest operator at 0. With ``intercept=True`` columns that are constant over
    the rows (e.g. a constant bit of the encoding) are left out (their ``w`` is 0) since the
    intercept already carries them. ``ridge`` adds ``ridge * n * ||w||^2``.
    """
    X = _as_matrix(X, "X")
    y = _as_vector(y, "y", len(X))
    n, p = X.shape
    keep = np.ones(p, bool)
    if intercept:
        keep = X.std(axis=0) > 0
    A = X[:, keep]
    if intercept:
        A = np.hstack([A, np.ones((n, 1))])
    rhs = y
    if ridge > 0:
        k = A.shape[1] - (1 if intercept else 0)
        pen = np.zeros((k, A.shape[1]))
        pen[:, :k] = np.sqrt(ridge * n) * np.eye(k)
        A, rhs = np.vstack([A, pen]), np.concatenate([y, np.zeros(k)])
    if nonneg:
        from scipy.optimize import nnls

        if intercept:  # a free-sign intercept as the difference of two non-negative ones
            z = nnls(np.hstack([A, -A[:, -1:]]), rhs, maxiter=50 * A.shape[1])[0]
            coef = np.append(z[:-2], z[-2] - z[-1])
        else:
            coef = nnls(A, rhs, maxiter=50 * A.shape[1])[0]
    else:
        coef = np.linalg.lstsq(A, rhs, rcond=None)[0]
    w = np.zeros(p)
    if intercept:
        w[keep], c = coef[:-1], float(coef[-1])
    else:
        w[keep], c = coef, 0.0
    return w, c


def proxy_features(X, proxy, *, residual: bool = True, ridge: float = 0.0,
                   nonneg: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Proxy features ``phi`` of every architecture from its encoding ``X`` and its measured
    proxy latency: ``(phi, w, c)`` with ``w, c = fit_linear_proxy(X, proxy)`` and
    ``phi = w o x`` (columns that are zero for every row dropped).

    With ``residual=True`` one more column holds what the linear model misses,
    ``proxy - (X @ w + c)``, so that ``phi.sum(1) + c`` is exactly the measured proxy
    latency: with ``b = 0`` AdaProxy then ranks exactly as the proxy device does, and ``b``
    on the last column rescales the proxy's non-linear part. Without it the features only
    know the linear model (the paper's form), whose own SRCC against the proxy is below 1.
    """
    X = _as_matrix(X, "X")
    p = _as_vector(proxy, "proxy", len(X))
    w, c = fit_linear_proxy(X, p, ridge=ridge, nonneg=nonneg)
    phi = X * w
    phi = phi[:, phi.any(axis=0)]
    if residual:
        phi = np.hstack([phi, (p - phi.sum(axis=1) - c)[:, None]])
    return phi, w, c


# --------------------------------------------------------------------------- the Lasso kernel

def _cd_lasso_py(G, q, t, b, tol, max_sweeps):
    """Coordinate descent for ``0.5 b'Gb - q'b + t ||b||_1`` (``G`` PSD), warm-started at ``b``;
    stops when no coordinate moves the fit by more than ``tol`` (``|db_j| * sqrt(G_jj)``)."""
    p = len(q)
    b = b.copy()
    g = G @ b
    dmax = 0.0
    for j in range(p):
        dmax = max(dmax, G[j, j])
    floor = 1e-12 * dmax
    for _ in range(max_sweeps):
        moved = 0.0
        for j in range(p):
            gjj = G[j, j]
            if gjj <= floor:
                if b[j] != 0.0:
                    for k in range(p):
                        g[k] -= G[k, j] * b[j]
                    b[j] = 0.0
                continue
            rho = q[j] - g[j] + gjj * b[j]
            if rho > t:
                new = (rho - t) / gjj
            elif rho < -t:
                new = (rho + t) / gjj
            else:
                new = 0.0
            d = new - b[j]
            if d != 0.0:
                for k in range(p):
                    g[k] += G[k, j] * d
                b[j] = new
                moved = max(moved, abs(d) * np.sqrt(gjj))
        if moved <= tol:
            break
    return b


_KERNEL = []


def _cd_lasso(G, q, t, b, tol, max_sweeps):
    if not _KERNEL:  # compiled on first use, so importing this module stays cheap
        from numba import njit
        _KERNEL.append(njit(cache=True)(_cd_lasso_py))
    return _KERNEL[0](G, q, float(t), b, float(tol), int(max_sweeps))


def _center_project(Phi: np.ndarray, y: np.ndarray):
    """Center rows and remove the direction of ``s = Phi.sum(1)`` (the unpenalized ``alpha``):
    for a fixed ``b`` the optimal ``alpha`` and ``c`` leave exactly this residual."""
    s = Phi.sum(axis=1)
    mu_phi, mu_y, mu_s = Phi.mean(axis=0), y.mean(), s.mean()
    Pc, yc, sc = Phi - mu_phi, y - mu_y, s - mu_s
    ss = float(sc @ sc)
    if ss > 0:
        Pt = Pc - np.outer(sc, sc @ Pc) / ss
        yt = yc - sc * (sc @ yc) / ss
    else:
        Pt, yt = Pc, yc
    return Pt, yt, (mu_phi, mu_y, mu_s, sc, ss)


def _finish(Phi, y, b, stats):
    """``alpha`` and ``c`` given ``b`` (least squares, unpenalized)."""
    mu_phi, mu_y, mu_s, sc, ss = stats
    r = (y - mu_y) - (Phi - mu_phi) @ b
    alpha = float(sc @ r / ss) if ss > 0 else 0.0
    c = float(mu_y - alpha * mu_s - mu_phi @ b)
    return alpha, c


class _Path:
    """Lasso solutions of one data set along a decreasing lambda grid (warm starts)."""

    def __init__(self, Phi: np.ndarray, y: np.ndarray, tol: float, max_sweeps: int):
        self.Phi, self.y, self.n = Phi, y, len(y)
        Pt, yt, self.stats = _center_project(Phi, y)
        self.G = np.ascontiguousarray(Pt.T @ Pt)
        self.q = Pt.T @ yt
        self.scale = float(np.sqrt(max(yt @ yt, 1e-300)))
        self.tol, self.max_sweeps = tol, max_sweeps

    def lambda_max(self) -> float:
        return 2.0 / self.n * float(np.max(np.abs(self.q))) if self.q.size else 0.0

    def solve(self, lambdas, b0=None):
        """``[(alpha, b, c)]`` for each lambda (give them in decreasing order)."""
        b = np.zeros(len(self.q)) if b0 is None else b0.copy()
        out = []
        for lam in lambdas:
            b = _cd_lasso(self.G, self.q, lam * self.n / 2.0, b, self.tol * self.scale, self.max_sweeps)
            alpha, c = _finish(self.Phi, self.y, b, self.stats)
            out.append((alpha, b.copy(), c))
        return out


# --------------------------------------------------------------------------- AdaProxy

class AdaProxy:
    """Adapt a proxy's per-feature latencies to a target from a few target measurements.

    ``fit(W, y)``: rows of ``W`` are the proxy features ``phi = w o x`` of the measured
    architectures, ``y`` their target latencies. ``lambda`` is chosen on held-out samples:
    with ``folds=1`` one random split keeps ``val_fraction`` of the samples for validation
    (the paper's protocol); with ``folds=k >= 2`` every sample is held out once (k-fold) and
    the SRCC is taken over the pooled held-out predictions. The score is the SRCC (ranking is
    what a search needs); of the grid values within ``select_tol`` of the best score the
    largest ``lambda`` (sparsest ``b``) is taken: a smaller ``lambda`` has to buy more than
    ``select_tol`` of validation SRCC, not a tie or a chance gain from fitting noise. The
    model is then refit on all samples with that ``lambda``. With fewer than ``min_validation`` held-out samples no validation is
    possible and ``lambda`` is the grid's largest (``b = 0``: the proxy's ranking, rescaled).

    Attributes after ``fit``: ``alpha_``, ``b_``, ``c_``, ``lambda_`` (absolute),
    ``lambda_ratio_`` (``lambda_ / lambda_max``), ``val_srcc_`` (validation SRCC of the chosen
    ``lambda``; NaN without validation), ``n_val_`` (held-out samples it is computed on),
    ``scores_`` (``[(lambda, srcc)]`` over the grid), ``proportional_`` (True when the
    least-squares scale came out <= 0 with ``b = 0`` and the proportional model
    ``alpha = sum(y) / sum(phi)``, ``c = 0`` replaced it, so that noise never reverses the
    proxy's ranking).
    """

    def __init__(self, *, lambda_ratios=LAMBDA_RATIOS, folds: int = 5, val_fraction: float = 0.3,
                 min_validation: int = 15, select_tol: float = 0.002, seed: int = 0,
                 tol: float = 1e-7, max_sweeps: int = 5000):
        ratios = sorted({float(r) for r in lambda_ratios}, reverse=True)
        if not ratios or ratios[0] > 1 or ratios[-1] <= 0:
            raise AdaptationError("lambda_ratios must lie in (0, 1]")
        if 1.0 not in ratios:
            ratios.insert(0, 1.0)
        if folds < 1:
            raise AdaptationError(f"folds must be >= 1, got {folds}")
        if not 0 < val_fraction < 1:
            raise AdaptationError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.lambda_ratios = ratios
        self.folds, self.val_fraction, self.min_validation = int(folds), float(val_fraction), int(min_validation)
        self.select_tol, self.seed, self.tol, self.max_sweeps = float(select_tol), seed, float(tol), int(max_sweeps)

    # -- fitting
    def fit(self, W, y) -> "AdaProxy":
        W = _as_matrix(W, "W")
        y = _as_vector(y, "y", len(W))
        n = len(y)
        if n < 2:
            raise AdaptationError(f"AdaProxy needs at least 2 target samples, got {n}")
        full = _Path(W, y, self.tol, self.max_sweeps)
        lam_max = full.lambda_max()
        grid = [lam_max * r for r in self.lambda_ratios]
        splits = self._splits(n)
        self.scores_ = []
        self.n_val_ = 0
        if lam_max <= 0 or not splits:
            best = 0
            self.val_srcc_ = float("nan")
        else:
            preds = [np.empty(n) for _ in grid]
            val_idx = np.concatenate([va for _, va in splits])
            self.n_val_ = len(val_idx)
            for tr, va in splits:
                for k, (alpha, b, c) in enumerate(_Path(W[tr], y[tr], self.tol, self.max_sweeps).solve(grid)):
                    preds[k][va] = alpha * W[va].sum(axis=1) + W[va] @ b + c
            scores = srcc_rows(np.array([p[val_idx] for p in preds]), y[val_idx])
            self.scores_ = list(zip(grid, scores.tolist()))
            ok = np.where(np.isfinite(scores), scores, -np.inf)
            top = ok.max()
            best = 0 if not np.isfinite(top) else int(np.flatnonzero(ok >= top - self.select_tol)[0])
            self.val_srcc_ = float(scores[best])
        self.lambda_ = float(grid[best])
        self.lambda_ratio_ = float(self.lambda_ratios[best])
        # refit on every sample, warm-started along the grid down to the chosen lambda
        self.alpha_, self.b_, self.c_ = full.solve(grid[: best + 1])[-1]
        self.n_samples_ = n
        self.proportional_ = False
        if self.alpha_ <= 0 and not np.any(self.b_):
            # With b = 0 a scale <= 0 would reverse (or erase) the proxy's ranking because of a
            # few noisy samples; a latency model does not do that. Fall back to the proportional
            # model y = alpha * proxy, alpha = sum(y) / sum(proxy), which keeps the ranking.
            total = float(W.sum())
            if total > 0:
                self.alpha_, self.c_, self.proportional_ = float(y.sum()) / total, 0.0, True
        return self

    def _splits(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(n)
        if self.folds == 1:
            n_val = int(round(self.val_fraction * n))
            if n_val < self.min_validation or n - n_val < 2:
                return []
            return [(np.sort(perm[n_val:]), np.sort(perm[:n_val]))]
        k = min(self.folds, n)
        if n < self.min_validation or n - int(np.ceil(n / k)) < 2:
            return []
        parts = np.array_split(perm, k)
        return [(np.sort(np.concatenate(parts[:i] + parts[i + 1:])), np.sort(parts[i])) for i in range(k)]

    # -- use
    def predict(self, W) -> np.ndarray:
        """Predicted target latency of each row of ``W``."""
        if not hasattr(self, "b_"):
            raise AdaptationError("AdaProxy: call fit() before predict()")
        W = _as_matrix(W, "W")
        if W.shape[1] != len(self.b_):
            raise AdaptationError(f"AdaProxy: W has {W.shape[1]} features, the model {len(self.b_)}")
        return self.alpha_ * W.sum(axis=1) + W @ self.b_ + self.c_

    def weights(self, w) -> np.ndarray:
        """The adapted per-feature latencies ``(alpha * 1 + b) o w`` for proxy weights ``w``."""
        return (self.alpha_ + self.b_) * np.asarray(w, dtype=np.float64)

    def to_dict(self) -> dict:
        return {"alpha": self.alpha_, "b": self.b_.tolist(), "c": self.c_, "lambda": self.lambda_,
                "lambda_ratio": self.lambda_ratio_, "val_srcc": _none_if_nan(self.val_srcc_),
                "samples": self.n_samples_}


# --------------------------------------------------------------------------- incremental adaptation

@dataclass
class Bagged:
    """The average prediction of AdaProxy fits, ``members = [(feature set name, model)]``
    (one member: that fit's prediction)."""
    members: list

    def predict(self, W) -> np.ndarray:
        """Predicted target latency of each row; ``W`` is one feature matrix or the named sets
        (``{name: matrix}``) the members were fitted on."""
        sets = feature_sets(W)
        missing = sorted({str(n) for n, _ in self.members if n not in sets})
        if missing:
            raise AdaptationError(f"no feature set named {', '.join(missing)} to predict with")
        return np.mean([m.predict(sets[n]) for n, m in self.members], axis=0)

    def feature_counts(self) -> dict:
        """How many members use each feature set."""
        names = [n for n, _ in self.members]
        return {n: names.count(n) for n in dict.fromkeys(names)}


def bag(sets, idx, y, *, bags: int = BAGS, fraction: float = BAG_FRACTION, seed: int = 0, **ada_kw) -> Bagged:
    """``bags`` fits of :func:`fit_best` on rows ``idx`` (target latencies ``y``), each on a
    random ``fraction`` of them with its own validation folds, as one :class:`Bagged`
    predictor. Each member chooses its lambda and feature set on its own subsample."""
    sets = feature_sets(sets, "sets")
    idx = np.asarray(idx, dtype=int).reshape(-1)
    y = _as_vector(y, "y", len(idx))
    if bags < 1:
        raise AdaptationError(f"bags must be >= 1, got {bags}")
    if not 0 < fraction <= 1:
        raise AdaptationError(f"fraction must lie in (0, 1], got {fraction}")
    n = len(idx)
    k = min(n, max(2, int(round(fraction * n))))
    rng = np.random.default_rng([seed, 0xBA6])
    members = []
    for b in range(bags):
        j = np.sort(rng.permutation(n)[:k])
        members.append(fit_best(sets, idx[j], y[j], seed=seed + b, **ada_kw))
    return Bagged(members)


@dataclass
class AdaptResult:
    """Outcome of :func:`adapt_incremental`: ``model``, the fit on all used samples (its
    validation SRCC decided when to stop; its lambda is reported), ``predictor``, what the
    SRCC after is computed with (the average of ``bags`` subsample fits, or ``model`` alone
    when ``bags = 0``), the sample rows ``indices`` (in the order taken), the SRCC before
    (proxy) and after on every row not used for fitting, the validation SRCC after each step
    (``history``: ``[(samples, val_srcc)]``), and the name of the feature set ``model`` uses
    (``features``; ``None`` when one unnamed matrix was given)."""
    model: AdaProxy
    indices: np.ndarray
    srcc_before: float
    srcc_after: float
    rows_evaluated: int
    reached: bool
    history: list = field(default_factory=list)
    features: str | None = None
    predictor: Bagged | None = field(default=None, repr=False)
    bags: int = 0

    @property
    def samples_used(self) -> int:
        return len(self.indices)

    @property
    def lambda_(self) -> float:
        return self.model.lambda_

    def to_dict(self) -> dict:
        return {"srcc_before": _none_if_nan(self.srcc_before), "srcc_after": _none_if_nan(self.srcc_after),
                "samples_used": self.samples_used, "lambda": self.model.lambda_,
                "rows_evaluated": self.rows_evaluated, "reached_threshold": self.reached,
                "val_srcc": _none_if_nan(self.model.val_srcc_), "alpha": self.model.alpha_,
                "features": self.features, "bags": self.bags,
                "history": [[k, _none_if_nan(s)] for k, s in self.history]}


def feature_sets(W, what: str = "W") -> dict:
    """``W`` as named feature matrices with the same rows: a mapping ``{name: matrix}`` is
    checked and kept, one matrix becomes ``{None: matrix}``."""
    if not isinstance(W, dict):
        return {None: _as_matrix(W, what)}
    if not W:
        raise AdaptationError(f"{what}: no feature sets")
    sets = {k: _as_matrix(v, f"{what}[{k!r}]") for k, v in W.items()}
    rows = {len(v) for v in sets.values()}
    if len(rows) > 1:
        raise AdaptationError(f"{what}: the feature sets have different row counts {sorted(rows)}")
    return sets


def fit_best(sets: dict, idx, y, *, seed: int = 0, **ada_kw) -> tuple:
    """Fit :class:`AdaProxy` on rows ``idx`` of every feature set and return
    ``(name, model)`` of the one with the highest validation SRCC (the first set on ties or
    when no validation was possible). Every set is validated on the same folds."""
    best = None
    for name, W in sets.items():
        model = AdaProxy(seed=seed, **ada_kw).fit(W[idx], y)
        score = model.val_srcc_ if np.isfinite(model.val_srcc_) else -np.inf
        if best is None or score > best[0]:
            best = (score, name, model)
    return best[1], best[2]


def _adapt_loop(sets: dict, measure: Callable[[int], float], order: np.ndarray, *, threshold: float,
                start: int, step: int, max_samples: int, seed: int, confidence_z: float,
                known: dict | None = None, bags: int = BAGS, **ada_kw):
    """Fit AdaProxy on the first ``k`` rows of ``order`` (measuring them on the target),
    ``k = start, start + step, ...`` until the validation SRCC reaches ``threshold`` (its
    lower confidence bound, see :func:`~codesign.validation.monotonicity.srcc_lower_bound`) or
    ``k = max_samples``; with several feature sets each step keeps the best
    (:func:`fit_best`). Returns (feature set name, model, used rows, their target latencies,
    reached, history, predictor): the predictor averages ``bags`` subsample fits on the used
    rows (:func:`bag`), or is the model alone when ``bags = 0``."""
    if start < 2 or step < 1 or max_samples < 2:
        raise AdaptationError("need start >= 2, step >= 1 and max_samples >= 2")
    if bags < 0:
        raise AdaptationError(f"bags must be >= 0, got {bags}")
    known = {} if known is None else known
    k = min(start, max_samples, len(order))
    history = []
    while True:
        idx = order[:k]
        for i in map(int, idx):
            if i not in known:
                known[i] = float(measure(i))
        y = np.array([known[int(i)] for i in idx])
        name, model = fit_best(sets, idx, y, seed=seed, **ada_kw)
        history.append((k, model.val_srcc_))
        reached = srcc_lower_bound(model.val_srcc_, model.n_val_, confidence_z) >= threshold
        if reached or k >= min(max_samples, len(order)):
            predictor = bag(sets, idx, y, bags=bags, seed=seed, **ada_kw) if bags else Bagged([(name, model)])
            return name, model, idx, y, reached, history, predictor
        k = min(k + step, max_samples, len(order))


def adapt_incremental(W_all, y_target_all, *, proxy=None, threshold: float = 0.9, start: int = 30,
                      step: int = 10, max_samples: int = 50, seed: int = 0, confidence_z: float = 1.645,
                      bags: int = BAGS, **ada_kw) -> AdaptResult:
    """Adapt with as few target samples as the threshold allows, on data where the target
    latency of every row is known (a simulation of measuring them one by one).

    Rows are taken in a random order (``seed``): ``start`` first, then ``step`` more at a
    time, until the validation SRCC of :class:`AdaProxy` reaches ``threshold`` or
    ``max_samples`` rows are used. "Reaches" means that the one-sided lower confidence bound
    of the validation SRCC (``confidence_z`` standard errors, Fisher z; 1.645: 95 %) is at
    least ``threshold``: the validation SRCC of the best of a grid of lambdas on 20-40
    samples is optimistic, and stopping on its raw value stops too early (see
    docs/monotonicity.md); ``confidence_z=0`` gives the raw rule. For the same reason the
    default ``start`` is 30: with 20 samples even the bound passes on lucky draws.

    ``W_all`` is one feature matrix or several named ones (``{name: matrix}``, e.g. the
    proxy's features over different architecture encodings): then each step adapts every
    set and keeps the one with the best validation SRCC (:func:`fit_best`).

    Once stopped, the prediction is the average of ``bags`` fits on random subsamples of the
    used rows (:func:`bag`); ``bags=0`` predicts with the one fit on all of them (the paper).

    ``srcc_before`` compares ``proxy`` (default: the proxy's linear model, the first set's
    ``W.sum(1)``) with the target, ``srcc_after`` the adapted prediction, both on every row
    not used for fitting.
    """
    sets = feature_sets(W_all, "W_all")
    first = next(iter(sets.values()))
    n = len(first)
    y = _as_vector(y_target_all, "y_target_all", n)
    p = first.sum(axis=1) if proxy is None else _as_vector(proxy, "proxy", n)
    if max_samples >= n:
        raise AdaptationError(f"max_samples ({max_samples}) must leave rows to evaluate on (have {n})")
    order = np.random.default_rng(seed).permutation(n)
    name, model, idx, _, reached, history, predictor = _adapt_loop(
        sets, lambda i: y[i], order, threshold=threshold, start=start, step=step, max_samples=max_samples,
        seed=seed, confidence_z=confidence_z, bags=bags, **ada_kw)
    rest = np.setdiff1d(np.arange(n), idx)
    after = predictor.predict({k: v[rest] for k, v in sets.items()})
    return AdaptResult(model, idx, srcc(p[rest], y[rest]), srcc(after, y[rest]), len(rest), reached, history,
                       name, predictor, bags)


# --------------------------------------------------------------------------- Algorithm 1

def pareto_front(accuracy, latency, *, slack: float = 0.0) -> np.ndarray:
    """Indices (sorted) of the points no other point dominates: higher-or-equal accuracy and
    lower-or-equal latency, one of them strictly. With ``slack > 0`` a point is dropped only
    when another one is at least as accurate and faster by more than ``slack`` times that
    one's latency (a band around the front, for noisy or predicted latencies); the set with
    slack always contains the one without."""
    a = _as_vector(accuracy, "accuracy")
    t = _as_vector(latency, "latency", len(a))
    if slack < 0:
        raise AdaptationError(f"slack must be >= 0, got {slack}")
    # sweep by accuracy, descending; among equal accuracy, by latency ascending
    order = np.lexsort((t, -a))
    keep = []
    best = np.inf   # fastest latency among strictly more accurate points
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and a[order[j]] == a[order[i]]:
            j += 1
        group = order[i:j]
        gmin = t[group[0]]
        for g in group:
            # best + slack * |best|: a band that widens the same way for negative (predicted) latencies
            dominated = (best + slack * abs(best) < t[g]) if slack > 0 else (best <= t[g])
            same_acc = (gmin + slack * abs(gmin) < t[g]) if slack > 0 else (gmin < t[g])
            if not dominated and not same_acc:
                keep.append(g)
        best = min(best, gmin)
        i = j
    return np.sort(np.array(keep, dtype=int))


def hypervolume(accuracy, latency, ref_accuracy: float, ref_latency: float) -> float:
    """Area dominated by the points (higher accuracy, lower latency are better) within the box
    from the reference point (``ref_accuracy``, ``ref_latency``); points outside it count 0."""
    a = _as_vector(accuracy, "accuracy")
    t = _as_vector(latency, "latency", len(a))
    ok = (a > ref_accuracy) & (t < ref_latency)
    a, t = a[ok], t[ok]
    if not len(a):
        return 0.0
    f = pareto_front(a, t)
    order = f[np.argsort(t[f])]          # fastest first: accuracy increases along the front
    area, prev_acc = 0.0, ref_accuracy
    for i in order:
        if a[i] > prev_acc:
            area += (a[i] - prev_acc) * (ref_latency - t[i])
            prev_acc = a[i]
    return float(area)


@dataclass
class Algorithm1Result:
    """Outcome of :func:`algorithm1`: the final Pareto set (candidate indices), the number of
    target measurements, the SRCC of the proxy on the check sample, whether the proxy was
    adapted (and then the adaptation's validation SRCC, samples, lambda and feature set), and
    the size of the predicted Pareto set measured in step (c)."""
    pareto: np.ndarray
    target_measurements: int
    srcc_check: float
    adapted: bool
    candidates_measured: int
    samples_used: int
    val_srcc: float | None = None
    lambda_: float | None = None
    measured: dict = field(default_factory=dict, repr=False)
    features: str | None = None

    def to_dict(self) -> dict:
        return {"pareto": self.pareto.tolist(), "target_measurements": self.target_measurements,
                "srcc_check": _none_if_nan(self.srcc_check), "adapted": self.adapted,
                "candidates_measured": self.candidates_measured, "samples_used": self.samples_used,
                "val_srcc": _none_if_nan(self.val_srcc), "lambda": self.lambda_, "features": self.features}


def algorithm1(accuracy, W, measure_target: Callable[[int], float], *, proxy=None, threshold: float = 0.9,
               check_samples: int = 30, step: int = 10, max_samples: int = 50, slack: float = 0.0,
               seed: int = 0, confidence_z: float = 1.645, with_proxy_front: bool = False,
               bags: int = BAGS, **ada_kw) -> Algorithm1Result:
    """Algorithm 1 of the paper on a finite candidate set (exhaustive search stands in for NAS).

    (a) measure ``check_samples`` random candidates on the target and take the SRCC of
    ``proxy`` (default ``W.sum(1)``; ``W`` may be several named feature sets, as in
    :func:`adapt_incremental`) against them; (b) if it reaches ``threshold``, the
    candidates' Pareto set under (accuracy, proxy latency) is kept ("reaches": its lower
    confidence bound, as in :func:`adapt_incremental`), else the proxy is adapted
    (:func:`adapt_incremental`'s loop, starting from the check samples, up to
    ``max_samples``) and the Pareto set is taken under the adapted latency (the average of
    ``bags`` subsample fits, as there); (c) that set is
    measured on the target and its members dominated on the target are dropped.
    ``measure_target(i)`` returns the target latency of candidate ``i``; each candidate is
    measured at most once, and ``target_measurements`` counts the calls. With
    ``with_proxy_front=True`` an adapted run measures the proxy's own Pareto set in step (c)
    too (not in the paper: a global SRCC gain need not hold at the front, see
    docs/monotonicity.md). Every candidate measured on the target on the way, the check and
    adaptation samples included, takes part in the final dominance test.
    """
    acc = _as_vector(accuracy, "accuracy")
    sets = feature_sets(W, "W")
    first = next(iter(sets.values()))
    if len(first) != len(acc):
        raise AdaptationError(f"accuracy has {len(acc)} candidates, W {len(first)}")
    p = first.sum(axis=1) if proxy is None else _as_vector(proxy, "proxy", len(acc))
    if check_samples < 3:
        raise AdaptationError(f"check_samples must be >= 3, got {check_samples}")
    known: dict[int, float] = {}
    calls = [0]

    def measure(i: int) -> float:
        calls[0] += 1
        v = float(measure_target(int(i)))
        if not np.isfinite(v):
            raise AdaptationError(f"target measurement of candidate {i} is not finite")
        return v

    def get(i: int) -> float:
        if i not in known:
            known[i] = measure(i)
        return known[i]

    order = np.random.default_rng(seed).permutation(len(acc))
    k = min(check_samples, len(acc))
    chk = order[:k]
    s_check = srcc(p[chk], np.array([get(int(i)) for i in chk]))
    adapted = not srcc_lower_bound(s_check, k, confidence_z) >= threshold
    val, lam, used, name = None, None, k, None
    if adapted:
        name, model, idx, _, _, _, predictor = _adapt_loop(
            sets, get, order, threshold=threshold, start=k, step=step, max_samples=max(max_samples, k), seed=seed,
            confidence_z=confidence_z, known=known, bags=bags, **ada_kw)
        pred = predictor.predict(sets)
        val, lam, used = model.val_srcc_, model.lambda_, len(idx)
    else:
        pred = p
    cand = pareto_front(acc, pred, slack=slack)
    if adapted and with_proxy_front:
        cand = np.union1d(cand, pareto_front(acc, p, slack=slack))
    n_cand = len(cand)
    for i in cand:
        get(int(i))
    seen = np.array(sorted(known))
    lat = np.array([known[int(i)] for i in seen])
    final = seen[pareto_front(acc[seen], lat)]
    return Algorithm1Result(final, calls[0], s_check, adapted, n_cand, used, val, lam, dict(known), name)


# --------------------------------------------------------------------------- helpers

def _as_matrix(W, what: str) -> np.ndarray:
    try:
        A = np.asarray(W, dtype=np.float64)
    except (TypeError, ValueError):
        raise AdaptationError(f"{what} must be a numeric matrix") from None
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2 or A.shape[0] == 0 or A.shape[1] == 0:
        raise AdaptationError(f"{what} must be a non-empty 2-D matrix, got shape {A.shape}")
    if not np.isfinite(A).all():
        raise AdaptationError(f"{what} has non-finite values")
    return A


def _as_vector(v, what: str, n: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise AdaptationError(f"{what} must be a numeric vector") from None
    if n is not None and len(a) != n:
        raise AdaptationError(f"{what} has {len(a)} values, expected {n}")
    if not np.isfinite(a).all():
        raise AdaptationError(f"{what} has non-finite values")
    return a


def _none_if_nan(x):
    return None if x is None or not np.isfinite(x) else float(x)
