"""Latency monotonicity: do two latency sources rank architectures the same way?

The measure is Spearman's rank correlation (SRCC, ties get their average rank) between the
latencies two sources give the same architectures. This module computes it for pairs and
for every pair of a set of columns, draws the matrix as a heatmap, reads the NAS-Bench-201
latency tables, and measures sampled architectures of a search space on latency backends.
"""
from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.errors import CodesignError


class MonotonicityError(CodesignError):
    """Bad input to a rank correlation, a latency table or a backend comparison."""


# --------------------------------------------------------------------------- SRCC

def srcc(a, b) -> float:
    """Spearman rank correlation of ``a`` and ``b`` (ties: average ranks).

    Raises :class:`MonotonicityError` for different lengths, fewer than 2 values or
    non-finite values. Returns NaN when either input is constant (the correlation is not
    defined), without a warning.
    """
    x = _vector(a, "a")
    y = _vector(b, "b")
    if len(x) != len(y):
        raise MonotonicityError(f"srcc: inputs differ in length ({len(x)} vs {len(y)})")
    if len(x) < 2:
        raise MonotonicityError(f"srcc: need at least 2 values, got {len(x)}")
    return float(srcc_rows(x[None, :], y)[0])


def srcc_rows(P, b) -> np.ndarray:
    """SRCC of every row of ``P`` against ``b`` in one pass (one ranking of ``b``, the rows
    ranked together: the Pearson correlation of average ranks); NaN for a constant or
    non-finite row, and for every row when ``b`` is constant. :func:`srcc` is its one-row
    case with the inputs checked."""
    from scipy.stats import rankdata

    y = _vector(b, "b")
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != len(y):
        raise MonotonicityError(f"srcc_rows: need a matrix with {len(y)} columns, got shape {P.shape}")
    if len(y) < 2:
        raise MonotonicityError(f"srcc_rows: need at least 2 values, got {len(y)}")
    out = np.full(len(P), np.nan)
    ok = np.isfinite(P).all(axis=1)
    ok[ok] = np.ptp(P[ok], axis=1) > 0
    if np.ptp(y) == 0 or not ok.any():
        return out
    rp = rankdata(P[ok], axis=1)
    ry = rankdata(y)
    rp -= rp.mean(axis=1, keepdims=True)
    ry -= ry.mean()
    r = (rp @ ry) / np.sqrt((rp * rp).sum(axis=1) * (ry @ ry))
    out[ok] = np.clip(r, -1.0, 1.0)
    return out


def srcc_lower_bound(r: float, n: int, z: float = 1.645) -> float:
    """One-sided lower confidence bound of a Spearman correlation ``r`` measured on ``n``
    pairs: ``tanh(atanh(r) - z * 1.03 / sqrt(n - 3))`` (Fisher z with the standard error of
    Fieller, Hartley and Pearson, 1957, for Spearman's rho). ``z = 0`` returns ``r``;
    NaN or ``n <= 3`` give -1 (nothing can be concluded)."""
    if r is None or not np.isfinite(r) or (z > 0 and n <= 3):
        return -1.0
    if z <= 0:
        return float(r)
    r = float(np.clip(r, -1 + 1e-12, 1 - 1e-12))
    return float(np.tanh(np.arctanh(r) - z * 1.03 / np.sqrt(n - 3)))


def srcc_matrix(columns: dict) -> tuple[list[str], np.ndarray]:
    """SRCC between every pair of ``columns`` (name -> values, all the same length):
    ``(names, M)`` with ``M[i, j] = srcc(columns[names[i]], columns[names[j]])``."""
    if not columns:
        raise MonotonicityError("srcc_matrix: no columns")
    names = [str(k) for k in columns]
    vals = [_vector(v, k) for k, v in zip(names, columns.values())]
    n = len(vals[0])
    bad = [k for k, v in zip(names, vals) if len(v) != n]
    if bad:
        raise MonotonicityError(f"srcc_matrix: column(s) {bad} differ in length from {names[0]!r} ({n})")
    M = np.eye(len(names))
    for i in range(len(names)):
        if np.ptp(vals[i]) == 0:
            M[i, i] = np.nan
        for j in range(i + 1, len(names)):
            M[i, j] = M[j, i] = srcc(vals[i], vals[j])
    return names, M


def heatmap_png(names, matrix, path, title: str = "SRCC") -> Path:
    """Write the matrix as an annotated heatmap PNG (rows and columns labelled ``names``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    M = np.asarray(matrix, dtype=np.float64)
    k = len(names)
    if M.shape != (k, k):
        raise MonotonicityError(f"heatmap: matrix shape {M.shape} does not match {k} names")
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise MonotonicityError(f"heatmap: folder {str(path.parent)!r} does not exist")
    finite = M[np.isfinite(M)]
    vmin = min(0.0, float(finite.min())) if finite.size else 0.0
    size = 1.2 + 0.62 * k
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(M, vmin=vmin, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, rotation=50, ha="right", fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    mid = (vmin + 1.0) / 2
    for i in range(k):
        for j in range(k):
            v = M[i, j]
            ax.text(j, i, "-" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="w" if (np.isfinite(v) and v < mid) else "k")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="SRCC")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- latency tables

ENCODING_COLUMNS = ("encoding", "arch_str")
ENCODINGS = ("onehot", "live", "counts", "live-counts", "counts+live")
# what AdaProxy adapts by default, keeping the one with the best validation SRCC: one hypothesis
# each about how the target runs a cell (every operator costs / only live ones / where they sit)
DEFAULT_ENCODINGS = ("counts", "live-counts", "counts+live")
_INDEX_COLUMNS = ("arch", "arch_idx", "index", "idx", "id")


@dataclass
class LatencyTable:
    """A latency table: numeric ``columns`` (name -> values), and where the file names the
    architectures, their NAS-Bench-201 one-hot encodings ``X`` (31 columns: 6 edges x 5
    operators in ``models.spaces.nasbench201`` order, then a constant 1) and arch strings."""
    path: str
    columns: dict = field(default_factory=dict)
    X: np.ndarray | None = None
    arch_strs: list | None = None
    _live: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def encoding(self, kind: str = "onehot") -> np.ndarray:
        """The architectures' encodings (one of :data:`ENCODINGS`):

        - ``"onehot"``: ``X``;
        - ``"live"``: the same layout with the operators of dead edges (whose result cannot
          reach the cell output, or whose input is always zero) counted as ``none``, as
          runtimes that prune them execute the cell;
        - ``"counts"``: how many edges carry each operator (5 columns). Every edge of a cell
          works on the same tensor shape, so an operator costs about the same on any edge:
          4 free weights instead of 24 are far easier to adapt from a few target samples;
        - ``"live-counts"``: the same over the live edges only;
        - ``"counts+live"``: ``counts``, ``live-counts`` and ``live`` side by side (for
          devices where liveness and the position of an operator matter).
        """
        if self.X is None:
            raise MonotonicityError(f"{self.path}: no architecture column (encoding or arch_str): "
                                    "per-operator features need one")
        if kind not in ENCODINGS:
            raise MonotonicityError(f"unknown encoding {kind!r} (use {', '.join(ENCODINGS)})")
        if kind == "onehot":
            return self.X
        from models.spaces.nasbench201 import OPS, arch_from_string, live_edges

        if self._live is None:
            X = np.zeros_like(self.X)
            X[:, -1] = 1
            for i, s in enumerate(self.arch_strs):
                ops = arch_from_string(s)["ops"]
                for e, (op, live) in enumerate(zip(ops, live_edges(ops))):
                    X[i, e * len(OPS) + OPS.index(op if live else "none")] = 1
            self._live = X
        if kind == "live":
            return self._live

        def counts(X):  # per-operator edge counts: (n, edges * ops) -> (n, ops)
            return X[:, :-1].reshape(len(X), -1, len(OPS)).sum(axis=1)

        if kind == "counts":
            return counts(self.X)
        if kind == "live-counts":
            return counts(self._live)
        return np.hstack([counts(self.X), counts(self._live), self._live])

    def subset(self, rows) -> "LatencyTable":
        """The table restricted to ``rows`` (indices, in that order)."""
        rows = np.asarray(rows, dtype=int)
        return LatencyTable(self.path, {k: v[rows] for k, v in self.columns.items()},
                            None if self.X is None else self.X[rows],
                            None if self.arch_strs is None else [self.arch_strs[i] for i in rows])

    def column(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise MonotonicityError(f"{self.path}: no numeric column {name!r} "
                                    f"(have: {', '.join(self.columns) or 'none'})")
        return self.columns[name]


def load_latency_csv(path, columns=None) -> LatencyTable:
    """Read a latency table (CSV, gzipped when the name ends in ``.gz``).

    Numeric columns (every value a finite number; index-like columns such as ``arch`` and
    ``arch_idx`` excepted) go to ``columns``, or only those named in ``columns``. An
    ``encoding`` column (31-bit one-hot string, as in the "One Proxy Device" data) or an
    ``arch_str`` column (NAS-Bench-201 notation, as in HW-NAS-Bench) gives ``X``.
    """
    from models.spaces.nasbench201 import ONEHOT_BITS, OPS, arch_from_string, nasbench201_from_onehot

    p = Path(path)
    if not p.is_file():
        raise MonotonicityError(f"latency table {str(path)!r} not found")
    try:
        raw = p.read_bytes()
        text = gzip.decompress(raw).decode("utf-8") if p.name.endswith(".gz") else raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as e:
        raise MonotonicityError(f"{path}: cannot read ({e})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        head = [h.strip() for h in next(reader)]
    except StopIteration:
        raise MonotonicityError(f"{path}: empty file") from None
    rows = [r for r in reader if r]
    if not rows:
        raise MonotonicityError(f"{path}: no data rows")
    short = [i + 2 for i, r in enumerate(rows) if len(r) != len(head)]
    if short:
        raise MonotonicityError(f"{path}: line {short[0]} has a different number of fields than the header")
    want = None if columns is None else [str(c) for c in columns]
    if want is not None:
        missing = [c for c in want if c not in head]
        if missing:
            raise MonotonicityError(f"{path}: no column(s) {missing} (have: {', '.join(head)})")
    table = LatencyTable(str(path))
    for j, name in enumerate(head):
        if name in ENCODING_COLUMNS or (want is not None and name not in want):
            continue
        if want is None and name in _INDEX_COLUMNS:
            continue
        try:
            v = np.array([float(r[j]) for r in rows])
        except ValueError:
            if want is not None:
                raise MonotonicityError(f"{path}: column {name!r} is not numeric") from None
            continue
        if not np.isfinite(v).all():
            if want is not None:
                raise MonotonicityError(f"{path}: column {name!r} has missing or non-finite values")
            continue
        table.columns[name] = v
    if "encoding" in head:
        j = head.index("encoding")
        codes = [r[j].strip() for r in rows]
        table.arch_strs = [nasbench201_from_onehot(c) for c in codes]  # validates every row
        table.X = np.array([[int(ch) for ch in c] for c in codes], dtype=np.float64)
        if table.X.shape[1] == ONEHOT_BITS - 1:
            table.X = np.hstack([table.X, np.ones((len(rows), 1))])
    elif "arch_str" in head:
        j = head.index("arch_str")
        table.arch_strs = [r[j].strip() for r in rows]
        X = np.zeros((len(rows), ONEHOT_BITS))
        X[:, -1] = 1
        for i, s in enumerate(table.arch_strs):
            for e, op in enumerate(arch_from_string(s)["ops"]):
                X[i, e * len(OPS) + OPS.index(op)] = 1
        table.X = X
    return table


# --------------------------------------------------------------------------- backends

def measure_backends(space: str, specs, n_samples: int, seed: int = 0, *, progress: bool = True,
                     return_archs: bool = False):
    """Sample ``n_samples`` distinct architectures of search space ``space`` (``seed``) and
    measure each on every backend spec (``codesign.validation.latency.get_backend``). Returns
    ``{spec: latencies in ms}`` (and the archs too with ``return_archs=True``)."""
    import json

    from models.spaces import get_space

    from .latency import get_backend

    specs = [str(s).strip() for s in specs if str(s).strip()]
    if not specs:
        raise MonotonicityError("measure_backends: no backend specs")
    if len(set(specs)) != len(specs):
        raise MonotonicityError(f"measure_backends: backend specs repeat: {specs}")
    if int(n_samples) < 2:
        raise MonotonicityError(f"measure_backends: need at least 2 samples, got {n_samples}")
    sp = get_space(space)
    backends = [get_backend(s) for s in specs]
    rng = np.random.default_rng(seed)
    archs, seen = [], set()
    tries = 0
    while len(archs) < n_samples:
        a = sp.sample(rng)
        key = json.dumps(a, sort_keys=True, default=str)
        tries += 1
        if key in seen:
            if tries > 50 * n_samples:
                raise MonotonicityError(f"measure_backends: {space} has fewer than {n_samples} distinct archs")
            continue
        seen.add(key)
        archs.append(a)
    out = {}
    from tqdm import tqdm
    with tqdm(total=len(archs) * len(specs), desc="measuring", unit="meas", disable=not progress,
              leave=False, dynamic_ncols=True) as bar:
        for s, b in zip(specs, backends):
            out[s] = np.array([r.ms for r in b.measure_many(archs, space=sp.name, progress=bar.update)])
    return (out, archs) if return_archs else out


def add_backend_columns(table: LatencyTable, specs, *, rows: int | None = None, seed: int = 0,
                        progress: bool = True) -> LatencyTable:
    """The table (``rows`` random rows of it, all when None) with one more column per backend
    spec: each row's NAS-Bench-201 cell (``nasbench201`` space, CIFAR-100 skeleton) measured
    on that backend, in ms. The column is named by the spec."""
    from tqdm import tqdm

    from models.spaces.nasbench201 import arch_from_string

    from .latency import get_backend

    if table.arch_strs is None:
        raise MonotonicityError(f"{table.path}: no architecture column (encoding or arch_str) to measure")
    specs = [str(s).strip() for s in specs if str(s).strip()]
    clash = [s for s in specs if s in table.columns]
    if clash:
        raise MonotonicityError(f"backend spec(s) {clash} clash with column names of {table.path}")
    n = len(table)
    if rows is not None:
        if not 2 <= int(rows) <= n:
            raise MonotonicityError(f"--rows must lie between 2 and {n}, got {rows}")
        table = table.subset(np.sort(np.random.default_rng(seed).permutation(n)[: int(rows)]))
    backends = [get_backend(s) for s in specs]
    out = {s: np.empty(len(table)) for s in specs}
    with tqdm(total=len(table) * len(specs), desc="measuring", unit="meas", disable=not progress,
              leave=False, dynamic_ncols=True) as bar:
        for i, a in enumerate(table.arch_strs):
            for s, b in zip(specs, backends):
                out[s][i] = float(b.measure(arch_from_string(a), space="nasbench201").ms)
                bar.update(1)
    table.columns.update(out)
    return table


def _vector(v, what: str) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise MonotonicityError(f"{what}: values must be numbers") from None
    if not np.isfinite(a).all():
        raise MonotonicityError(f"{what}: values must be finite (found NaN or infinity)")
    return a
