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
import zlib
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
    operators in ``models.spaces.nasbench201`` order, then a constant 1) and arch strings.
    ``lines``: the file line of each row (for messages); ``rejected``: why a column of the file
    is not numeric (name -> the first bad cell); ``damaged``: those of them that hold numbers
    too (a numeric column with bad cells rather than a text column)."""
    path: str
    columns: dict = field(default_factory=dict)
    X: np.ndarray | None = None
    arch_strs: list | None = None
    lines: np.ndarray | None = None
    rejected: dict = field(default_factory=dict)
    damaged: list = field(default_factory=list)
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
                            None if self.arch_strs is None else [self.arch_strs[i] for i in rows],
                            None if self.lines is None else self.lines[rows], dict(self.rejected),
                            list(self.damaged))

    def where(self, i: int) -> str:
        """Where row ``i`` is in the file, for messages."""
        return f"line {int(self.lines[i])}" if self.lines is not None else f"row {i + 1}"

    def column(self, name: str, *, latency: bool = False) -> np.ndarray:
        """The values of column ``name``; with ``latency`` a value outside
        ``[0, MAX_LATENCY]`` is an error too."""
        if name in self.rejected:
            raise MonotonicityError(f"{self.path}: {self.rejected[name]}")
        if name not in self.columns:
            raise MonotonicityError(f"{self.path}: no numeric column {name!r} "
                                    f"(have: {', '.join(self.columns) or 'none'})")
        v = self.columns[name]
        if latency and (v < 0).any():
            i = int(np.flatnonzero(v < 0)[0])
            raise MonotonicityError(f"{self.path}: {self.where(i)}, column {name!r}: latency {v[i]:g} is negative")
        if latency and (v > MAX_LATENCY).any():
            i = int(np.flatnonzero(v > MAX_LATENCY)[0])
            raise MonotonicityError(f"{self.path}: {self.where(i)}, column {name!r}: latency {v[i]:g} is out of "
                                    f"range: accepted 0 to {MAX_LATENCY:g}")
        return v


MAX_TABLE_BYTES = 256 * 2 ** 20   # text of a latency table (after decompression)
MAX_TABLE_ROWS = 1_000_000        # NAS-Bench-201 has 15,625 cells
MAX_TABLE_COLUMNS = 1_000
MAX_LATENCY = 1e12                # a latency in any unit (1e12 ms is 30 years): fits stay far from overflow


def _table_text(path) -> str:
    """The table's text: size-bounded, gzip checked by its magic bytes, strict UTF-8."""
    from models.inputs import decode_text, read_text

    p = Path(path)
    name = str(path)
    if not p.name.endswith(".gz"):
        try:
            with open(p, "rb") as f:
                magic = f.read(2)
        except OSError:
            magic = b""
        if magic == b"\x1f\x8b":
            raise MonotonicityError(f"{name}: gzip-compressed data; name the file *.gz")
        return read_text(p, name, max_bytes=MAX_TABLE_BYTES, error=MonotonicityError)
    try:
        if not p.exists():
            raise MonotonicityError(f"{name}: file not found")
        if not p.is_file():
            raise MonotonicityError(f"{name}: not a file")
        if p.stat().st_size > MAX_TABLE_BYTES:
            raise MonotonicityError(f"{name}: {p.stat().st_size:,} bytes, more than the {MAX_TABLE_BYTES:,} accepted")
        with open(p, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                raise MonotonicityError(f"{name}: not gzip data, although the name ends in .gz")
        with gzip.open(p, "rb") as f:
            data = f.read(MAX_TABLE_BYTES + 1)
    except MonotonicityError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        raise MonotonicityError(f"{name}: corrupt or truncated gzip data ({e})") from None
    if len(data) > MAX_TABLE_BYTES:
        raise MonotonicityError(f"{name}: decompresses to more than {MAX_TABLE_BYTES:,} bytes")
    return decode_text(data, name, error=MonotonicityError)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_cells(col: str, cells: list[str], lines: list[int]):
    """A column's cells as floats: ``(values, None, False)``; or ``(None, why, damaged)``
    naming the first bad cell, ``damaged`` when some cells are numbers (a numeric column with
    bad cells, not a text column)."""
    try:
        v = np.array([float(c) for c in cells])
    except ValueError:
        ok = [_is_number(c) for c in cells]
        i = ok.index(False)
        what = "is empty" if not cells[i].strip() else f"{cells[i][:40]!r} is not a number"
        return None, f"row {i + 1} (line {lines[i]}), column {col!r}: {what}", any(ok)
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return (None, f"row {i + 1} (line {lines[i]}), column {col!r}: {cells[i].strip()!r} is not a finite number",
                True)
    return v, None, False


def load_latency_csv(path, columns=None) -> LatencyTable:
    """Read a latency table (CSV, gzipped when the name ends in ``.gz``).

    Numeric columns (every value a finite number; index-like columns such as ``arch`` and
    ``arch_idx`` excepted) go to ``columns``, or only those named in ``columns``; why any other
    column is not numeric is kept in ``rejected`` (and in ``damaged`` when it holds some numbers). An ``encoding`` column (31-bit one-hot
    string, as in the "One Proxy Device" data) or an ``arch_str`` column (NAS-Bench-201
    notation, as in HW-NAS-Bench) gives ``X``. The header must name every column once; at most
    ``MAX_TABLE_ROWS`` rows and ``MAX_TABLE_COLUMNS`` columns. Every error names the file and
    the row (line) and column at fault.
    """
    from models.spaces.nasbench201 import ONEHOT_BITS, OPS, arch_from_string, nasbench201_from_onehot

    name = str(path)
    reader = csv.reader(io.StringIO(_table_text(path)), strict=True)
    try:
        head = [h.strip() for h in next(reader, [])]
        if not head:
            raise MonotonicityError(f"{name}: empty file (no header line)")
        if len(head) > MAX_TABLE_COLUMNS:
            raise MonotonicityError(f"{name}: {len(head):,} columns, more than the {MAX_TABLE_COLUMNS:,} accepted")
        for j, h in enumerate(head):
            if not h:
                raise MonotonicityError(f"{name}: column {j + 1} of the header has no name")
            if h in head[:j]:
                raise MonotonicityError(f"{name}: column {h!r} appears twice in the header "
                                        f"(columns {head.index(h) + 1} and {j + 1})")
        rows, lines = [], []
        for r in reader:
            if not r:
                continue
            if len(r) != len(head):
                raise MonotonicityError(f"{name}: line {reader.line_num} has {len(r)} fields, the header "
                                        f"{len(head)}")
            if len(rows) == MAX_TABLE_ROWS:
                raise MonotonicityError(f"{name}: more than {MAX_TABLE_ROWS:,} rows")
            rows.append(r)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise MonotonicityError(f"{name}: malformed CSV at line {reader.line_num} ({e})") from None
    if not rows:
        raise MonotonicityError(f"{name}: no data rows")
    want = None if columns is None else [str(c) for c in columns]
    if want is not None:
        missing = [c for c in want if c not in head]
        if missing:
            raise MonotonicityError(f"{name}: no column(s) {missing} (have: {', '.join(head)})")
    table = LatencyTable(name, lines=np.asarray(lines, dtype=np.int64))
    for j, col in enumerate(head):
        if col in ENCODING_COLUMNS or (want is not None and col not in want):
            continue
        if want is None and col in _INDEX_COLUMNS:
            continue
        v, why, damaged = _parse_cells(col, [r[j] for r in rows], lines)
        if v is None:
            if want is not None:
                raise MonotonicityError(f"{name}: {why}")
            table.rejected[col] = why
            if damaged:
                table.damaged.append(col)
            continue
        table.columns[col] = v

    def cell_error(i: int, col: str, e: Exception):
        return MonotonicityError(f"{name}: row {i + 1} (line {lines[i]}), column {col!r}: {e}")

    if "encoding" in head:
        j = head.index("encoding")
        codes = [r[j].strip() for r in rows]
        strs = []
        for i, c in enumerate(codes):
            if len(c) != len(codes[0]):
                raise cell_error(i, "encoding", f"{len(c)} bits, row 1 has {len(codes[0])}")
            try:
                strs.append(nasbench201_from_onehot(c))
            except CodesignError as e:
                raise cell_error(i, "encoding", e) from None
        table.arch_strs = strs
        table.X = np.array([[int(ch) for ch in c] for c in codes], dtype=np.float64)
        if table.X.shape[1] == ONEHOT_BITS - 1:
            table.X = np.hstack([table.X, np.ones((len(rows), 1))])
    elif "arch_str" in head:
        j = head.index("arch_str")
        table.arch_strs = [r[j].strip() for r in rows]
        X = np.zeros((len(rows), ONEHOT_BITS))
        X[:, -1] = 1
        for i, s in enumerate(table.arch_strs):
            try:
                ops = arch_from_string(s)["ops"]
            except CodesignError as e:
                raise cell_error(i, "arch_str", e) from None
            for e, op in enumerate(ops):
                X[i, e * len(OPS) + OPS.index(op)] = 1
        table.X = X
    if not table.columns and not table.rejected and want is None and table.X is None:
        raise MonotonicityError(f"{name}: no numeric column")
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
    clash = [s for s in specs if s in table.columns or s in table.rejected]
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
