"""The mapping space of one layer on one accelerator.

A mapping is described here by one *split* per loop dimension (its spatial factor on every
array dimension that may take it, then its register-file and global-buffer factors; the DRAM
factor is what remains, rounded up) and one *canonical loop order* per memory level.

Factor candidates: the divisors of what remains of a bound, plus imperfect factors where they
help: on an array dimension the balanced ceil-split ``ceil(n / ceil(n / cap))`` for every
capacity ``size // m`` the dimension can have left when other loops share it (e.g. 1000 output
channels on 14 PEs: 14 x 72 instead of 10 x 100), and in time ``ceil(n / 2)`` for odd bounds
(7 = 4 x 2 when 7 does not fit). Padding iterations cost cycles, which the cost model counts.

Loop orders: in the cost model a level's loop order matters through which data space's
*irrelevant* loops sit innermost (they keep that tile stationary) and which loop indexing the
inputs comes first among the rest (a window loop, P Q R or S, lets input refills slide). The
three irrelevant sets (weights: N P Q, inputs: K, outputs: C R S) are disjoint and each is
relevant to both other spaces, so at most one space profits per level and it profits most from
all of its irrelevant loops innermost; sliding never costs more. Every order is therefore
matched or beaten by one of eight *canonical* orders at each level: weight-stationary with P or
Q first, input-stationary with P, Q, R or S after K, output-stationary with R or S first. The
register-file order has no effect on cost (unless the RF bypasses a data space). The space
holds ``8 x 8`` order combinations.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from accelerators.cost import touched_tables
from accelerators.spec import Accelerator
from models.errors import MappingError
from models.layer import DATA_SPACES, DIMS, RELEVANT, Layer

from .mapping import Mapping

NDIM = len(DIMS)
STATIONARY = ("W", "I", "O")
# innermost first; the irrelevant loops of the stationary space lead, and among the loops that
# index the inputs a window loop (P, Q, R or S) comes first, each in turn, so that the input
# refills can slide (the first input loop a refill steps through is the only other thing an
# order decides)
_ORDER_TEXT = (("W", "PQNCRSKG"), ("W", "QPNCRSKG"),
               ("I", "KPQNCRSG"), ("I", "KQPNCRSG"), ("I", "KRSCNPQG"), ("I", "KSRCNPQG"),
               ("O", "RSCNPQKG"), ("O", "SRCNPQKG"))
CANONICAL_ORDERS = np.array([[DIMS.index(c) for c in text] for _, text in _ORDER_TEXT], dtype=np.int64)
ORDER_STATIONARY = tuple(x for x, _ in _ORDER_TEXT)  # the stationary data space of each order
N_ORDERS = len(CANONICAL_ORDERS)
N_ORDER_COMBOS = N_ORDERS ** 2  # (global buffer order, DRAM order)
# combo c: global-buffer order c // N_ORDERS (also used for the register file, where order has
# no effect unless the RF bypasses a data space), DRAM order c % N_ORDERS
_ORDER_COMBOS = np.array([[CANONICAL_ORDERS[c // N_ORDERS], CANONICAL_ORDERS[c // N_ORDERS],
                           CANONICAL_ORDERS[c % N_ORDERS]] for c in range(N_ORDER_COMBOS)], dtype=np.int64)
SPLIT_COLS = 6  # t_rf, t_glb, t_dram, s_0, s_1, s_2
LEVEL_NAMES = ("register file", "global buffer")
# bit x of _REL[d]: loop dimension d indexes data space x (W, I, O)
_REL = np.array([sum(1 << i for i, x in enumerate(DATA_SPACES) if d in RELEVANT[x]) for d in DIMS], dtype=np.int64)
# Refill flags of a (partial) mapping, OR-combined over its splits: bits 0-2, a data space's
# register-file tile is refilled (a loop indexing it has a factor > 1 above the RF); bits
# 3-5, its global-buffer tile is (factor > 1 at DRAM); bit 6, some loop has a factor > 1
# above the RF; bits 8 + 3a .. 10 + 3a: the spaces indexed by loops unrolled on array dim a.
# Whether a tile is refilled does not depend on the loop order (one relevant loop above is
# enough), so double-buffered capacity is checked exactly per split combination.
_ANY_ABOVE_RF = 1 << 6


@lru_cache(maxsize=4096)
def divisors(n: int) -> tuple[int, ...]:
    small, large = [], []
    for i in range(1, int(math.isqrt(n)) + 1):
        if n % i == 0:
            small.append(i)
            if i != n // i:
                large.append(n // i)
    return tuple(small + large[::-1])


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@lru_cache(maxsize=65536)
def spatial_candidates(rem: int, size: int) -> tuple[int, ...]:
    """Spatial factors for ``rem`` remaining iterations on an array dimension of ``size``."""
    out = {v for v in divisors(rem) if v <= size}
    for cap in {size // m for m in range(1, size + 1)}:
        if 1 < cap < rem:
            out.add(_cdiv(rem, _cdiv(rem, cap)))
    return tuple(sorted(out))


@lru_cache(maxsize=65536)
def temporal_candidates(rem: int) -> tuple[int, ...]:
    """Temporal factors for ``rem`` remaining iterations at the register file or buffer."""
    out = set(divisors(rem))
    if rem >= 5 and rem % 2:
        out.add(_cdiv(rem, 2))
    return tuple(sorted(out))


def array_slot_candidates(rem: int, size: int, fused: bool) -> tuple[int, ...]:
    """Spatial factors of one loop on one array dimension: on a fused dimension the divisors of
    what remains (the dimension folds the flattened product itself, so no imperfect factor is
    needed and no size caps it), else ``spatial_candidates``."""
    return divisors(rem) if fused else spatial_candidates(rem, size)


def dim_splits(bound: int, array_sizes: list[int | None], fused: list[bool] | None = None) -> np.ndarray:
    """All splits ``[t_rf, t_glb, t_dram, s_0, s_1, s_2]`` of one loop bound.

    ``array_sizes[a]`` is the size of array dimension ``a`` if it may take this loop, else None;
    ``fused[a]`` says that dimension folds the product of its loops (``ArrayDim.fused``).
    Each factor is drawn from the candidates of what remains (rounded up), so the product of a
    split always covers ``bound`` with no more padding than its factors imply.
    """
    fused = fused or [False] * len(array_sizes)
    rows = []

    def rec(rem, slot, cur):
        if slot < 3:  # spatial slots first (outermost in the split, innermost in the nest)
            size = array_sizes[slot] if slot < len(array_sizes) else None
            if size is None:
                rec(rem, slot + 1, cur + [1])
                return
            for v in array_slot_candidates(rem, size, fused[slot]):
                rec(_cdiv(rem, v), slot + 1, cur + [v])
            return
        if slot < 5:
            for v in temporal_candidates(rem):
                rec(_cdiv(rem, v), slot + 1, cur + [v])
            return
        s0, s1, s2, t0, t1 = cur
        rows.append((t0, t1, rem, s0, s1, s2))

    rec(bound, 0, [])
    return np.array(sorted(set(rows)), dtype=np.int64).reshape(-1, SPLIT_COLS)


class MappingSpace:
    """Factor candidates, capacity-aware sampling and exhaustive enumeration for one layer.

    Mappings are handled in bulk as index arrays: ``idx[B, 8]`` picks one split per loop
    dimension (rows of ``splits[d]``) and ``oc[B]`` one of the ``N_ORDER_COMBOS`` order combinations;
    ``arrays(idx, oc)`` turns them into the cost kernel's ``T, S, O`` arrays.
    """

    def __init__(self, layer: Layer, acc: Accelerator):
        self.layer, self.acc = layer, acc
        self.bounds = np.array(layer.bounds, dtype=np.int64)
        self.array_sizes = np.ones(3, dtype=np.int64)
        self.fused = np.zeros(3, dtype=bool)
        for a, ad in enumerate(acc.array):
            self.array_sizes[a] = ad.size
            self.fused[a] = ad.fused
        # the largest spatial product each array dimension takes: its size, or for a fused
        # dimension the product of its loops' bounds (folded in ceil(product / size) passes)
        self.array_caps = self.array_sizes.copy()
        for a, ad in enumerate(acc.array):
            if ad.fused:
                self.array_caps[a] = max(ad.size, math.prod(layer.dims[x] for x in ad.loops))
        self.bits = np.array([acc.word_bits[x] for x in DATA_SPACES], dtype=np.float64)
        self.double = np.array([acc.level(lvl).buffering == "double" for lvl in ("rf", "glb")])
        self._caps = []
        self._held = []  # 1 for the data spaces a level holds, 0 for those it bypasses
        for lvl in ("rf", "glb"):
            m = acc.level(lvl)
            self._held.append(np.array([1.0 if m.holds(x) else 0.0 for x in DATA_SPACES]))
            if m.split_bytes:
                self._caps.append((np.array([m.split_bytes.get(x, 0) if m.holds(x) else np.inf
                                             for x in DATA_SPACES], dtype=np.float64), None))
            else:
                self._caps.append((None, float(m.capacity_bytes)))
        # Splits that do not fit even with every other loop at 1 can never be part of a valid
        # mapping (tiles only grow as loops are added), so the space keeps only the others.
        self.splits: list[np.ndarray] = []
        for d, dim in enumerate(DIMS):
            sizes = [ad.size if dim in ad.loops else None for ad in acc.array]
            rows = dim_splits(int(self.bounds[d]), sizes, [ad.fused for ad in acc.array])
            ext0 = np.ones((len(rows), NDIM), dtype=np.int64)
            ext1 = np.ones((len(rows), NDIM), dtype=np.int64)
            ext0[:, d] = rows[:, 0]
            ext1[:, d] = rows[:, 0] * rows[:, 1] * rows[:, 3] * rows[:, 4] * rows[:, 5]
            sp = np.ones((len(rows), 3), dtype=np.int64)
            sp[:, :] = rows[:, 3:6]
            flags = self._split_flags(d, rows)
            ok = (np.all(rows[:, 3:6] <= self.array_caps, axis=1) & self.fits(0, ext0, sp, flags)
                  & self.fits(1, ext1, sp, flags))
            self.splits.append(rows[ok] if ok.any() else rows[:1])
        # per dimension: register-file extent, global-buffer extent (incl. the array), spatial rows
        self._ext0 = [s[:, 0] for s in self.splits]
        self._ext1 = [s[:, 0] * s[:, 1] * s[:, 3] * s[:, 4] * s[:, 5] for s in self.splits]
        self._sp = [s[:, 3:6] for s in self.splits]
        self._flags = [self._split_flags(d, s) for d, s in enumerate(self.splits)]
        self._table = np.concatenate(self.splits)
        self._offsets = np.cumsum([0] + [len(x) for x in self.splits[:-1]]).astype(np.int64)
        self._row_index = [{tuple(int(v) for v in r): i for i, r in enumerate(s)} for s in self.splits]

    # ---- sizes ----------------------------------------------------------------------------
    @property
    def split_counts(self) -> list[int]:
        return [len(s) for s in self.splits]

    def size(self) -> int:
        """Number of mappings in the space before the capacity check (splits x order combos)."""
        return math.prod(self.split_counts) * N_ORDER_COMBOS

    def passes(self, products: np.ndarray) -> np.ndarray:
        """Array passes of spatial products ``products[..., 3]`` per array dimension (fused
        dimensions fold their product in ``ceil(product / size)`` passes; the others take 1)."""
        folds = -(-products // self.array_sizes)
        return np.prod(np.where(self.fused, folds, 1), axis=-1)

    # ---- index arrays -> kernel arrays ----------------------------------------------------
    def arrays(self, idx, oc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kernel arrays ``T[B,3,8], S[B,3,8], O[B,3,8]`` for split indices and order combos."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1, NDIM)
        oc = np.asarray(oc, dtype=np.int64).reshape(-1)
        T, S = self._factor_arrays(idx)
        return T, S, _ORDER_COMBOS[oc]

    def arrays_all_orders(self, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kernel arrays of every split combination in ``idx`` under each of the ``N_ORDER_COMBOS`` order
        combinations (row ``i * N_ORDER_COMBOS + c`` is combination ``i`` with order combo ``c``)."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1, NDIM)
        T, S = self._factor_arrays(idx)
        T = np.repeat(T, N_ORDER_COMBOS, axis=0)
        S = np.repeat(S, N_ORDER_COMBOS, axis=0)
        O = np.broadcast_to(_ORDER_COMBOS[None], (len(idx),) + _ORDER_COMBOS.shape).reshape(-1, 3, NDIM)
        return T, S, np.ascontiguousarray(O)

    def _factor_arrays(self, idx):
        G = self._table[idx + self._offsets]  # [B, 8, 6]
        T = np.ascontiguousarray(G[:, :, 0:3].transpose(0, 2, 1))
        S = np.ascontiguousarray(G[:, :, 3:6].transpose(0, 2, 1))
        return T, S

    def mapping(self, idx, oc) -> Mapping:
        """The ``Mapping`` of one split-index row and order combination."""
        T, S, O = self.arrays(idx, oc)
        return Mapping.from_arrays(T[0], S[0], O[0])

    # ---- capacity -------------------------------------------------------------------------
    @staticmethod
    def _split_flags(d: int, rows: np.ndarray) -> np.ndarray:
        """Refill flags (see ``_ANY_ABOVE_RF``) contributed by split rows of dimension ``d``."""
        above_rf = rows[:, 1] * rows[:, 2] > 1
        f = np.where(above_rf, _REL[d] | _ANY_ABOVE_RF, 0) | np.where(rows[:, 2] > 1, _REL[d] << 3, 0)
        for a in range(3):
            f |= np.where(rows[:, 3 + a] > 1, _REL[d] << (8 + 3 * a), 0)
        return f.astype(np.int64)

    def _refilled(self, level: int, sp: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """``[M, 3]`` booleans: which data spaces' tiles are refilled at ``level``. A fused
        array dimension that folds changes the tiles of the spaces its loops index on every
        pass, so those are refilled whenever any loop sits above the register file."""
        if level == 1:
            bits = (flags >> 3) & 7
        else:
            bits = flags & 7
            folds = self.fused & (sp > self.array_sizes)  # [M, 3]
            changed = np.zeros(len(flags), dtype=np.int64)
            for a in range(3):
                changed |= np.where(folds[:, a], (flags >> (8 + 3 * a)) & 7, 0)
            bits = bits | np.where(flags & _ANY_ABOVE_RF, changed, 0)
        return ((bits[:, None] >> np.arange(3)[None, :]) & 1).astype(bool)

    def _tile_words(self, ext: np.ndarray) -> np.ndarray:
        """Words of W, I, O touched by loop extents ``ext[M, 8]`` (capped at the layer)."""
        e = np.minimum(ext, self.bounds)
        g, n, k, c, p, q, r, s = (e[:, i] for i in range(NDIM))
        th, tw = touched_tables(self.layer, self.acc.stores_padding, capacity=True)
        return np.stack([g * k * c * r * s, g * n * c * th[p, r] * tw[q, s], g * n * k * p * q], axis=1)

    def fits(self, level: int, ext: np.ndarray, sp=None, flags=None, assume_refilled: bool = False) -> np.ndarray:
        """Which rows of loop extents ``ext[M, 8]`` fit level 0 (RF, per PE) or 1 (GLB).

        A double-buffered level holds two copies of a refilled tile: ``sp[M, 3]`` (spatial
        products) and ``flags[M]`` (refill flags) say which are, as the cost model counts them.
        Without them one copy is counted (a bound for pruning), or two of every tile with
        ``assume_refilled`` (a safe choice before the loops above are known)."""
        need = self._tile_words(ext) * self.bits / 8.0 * self._held[level]
        if self.double[level]:
            if flags is not None:
                need = need * (1 + self._refilled(level, sp, flags))
            elif assume_refilled:
                need = need * 2
        split, total = self._caps[level]
        if split is not None:
            return np.all(need <= split, axis=1)
        return need.sum(axis=1) <= total

    def overflow_level(self) -> str | None:
        """The level that cannot hold even a single element of every data space, if any."""
        found = self._overflow()
        return found[0] if found else None

    def _overflow(self) -> tuple[str, str] | None:
        ones = np.ones((1, NDIM), dtype=np.int64)
        for lvl in range(2):
            if self.fits(lvl, ones)[0]:
                continue
            need = self.bits / 8.0 * self._held[lvl]  # one element of each data space it holds
            split, total = self._caps[lvl]
            if split is not None:
                bad = [f"{x} needs {need[i]:g} B of its {split[i]:g} B" for i, x in enumerate(DATA_SPACES)
                       if need[i] > split[i]]
                return LEVEL_NAMES[lvl], "; ".join(bad)
            return LEVEL_NAMES[lvl], f"one element each of W, I and O needs {need.sum():g} B of its {total:g} B"
        return None

    def _extend(self, d: int, ext0, ext1, sp, flags):
        """Feasibility of every split of dimension ``d`` added to partial mappings.

        Returns ``(mask[M, n_d], ext0', ext1', sp', flags')`` with the extended arrays shaped
        ``[M, n_d, ...]``. A partial mapping's refill flags only grow as loops are added, so a
        split that overflows now overflows in every completion.
        """
        M = ext0.shape[0]
        n = len(self.splits[d])
        e0 = np.repeat(ext0[:, None, :], n, axis=1)
        e1 = np.repeat(ext1[:, None, :], n, axis=1)
        e0[:, :, d] = self._ext0[d][None, :]
        e1[:, :, d] = self._ext1[d][None, :]
        s = sp[:, None, :] * self._sp[d][None, :, :]
        f = flags[:, None] | self._flags[d][None, :]
        ok = np.all(s <= self.array_caps, axis=2)
        flat0, flat1 = e0.reshape(M * n, NDIM), e1.reshape(M * n, NDIM)
        fs, ff = s.reshape(M * n, 3), f.reshape(M * n)
        ok &= (self.fits(0, flat0, fs, ff) & self.fits(1, flat1, fs, ff)).reshape(M, n)
        return ok, e0, e1, s, f

    def _active_dims(self) -> list[int]:
        return [d for d in range(NDIM) if len(self.splits[d]) > 1]

    def _start(self, M: int):
        """Empty partial mappings: ``(idx, RF extents, GLB extents, spatial products, refill
        flags)``; loops with a bound of 1 have the single split 0, which adds nothing."""
        ones = np.ones((M, NDIM), dtype=np.int64)
        return (np.zeros((M, NDIM), dtype=np.int64), ones, ones.copy(), np.ones((M, 3), dtype=np.int64),
                np.zeros(M, dtype=np.int64))

    # ---- sampling -------------------------------------------------------------------------
    def random_indices(self, n: int, rng: np.random.Generator):
        """``n`` mappings drawn uniformly per dimension from the splits (not checked jointly)."""
        idx = np.zeros((n, NDIM), dtype=np.int64)
        for d in self._active_dims():
            idx[:, d] = rng.integers(0, len(self.splits[d]), n)
        return idx, rng.integers(0, N_ORDER_COMBOS, n)

    def valid_mask(self, idx) -> np.ndarray:
        """Which rows of ``idx[B, 8]`` fit the array sizes, register file and global buffer."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1, NDIM)
        ext0 = np.empty_like(idx)
        ext1 = np.empty_like(idx)
        sp = np.ones((idx.shape[0], 3), dtype=np.int64)
        flags = np.zeros(idx.shape[0], dtype=np.int64)
        for d in range(NDIM):
            ext0[:, d] = self._ext0[d][idx[:, d]]
            ext1[:, d] = self._ext1[d][idx[:, d]]
            sp *= self._sp[d][idx[:, d]]
            flags |= self._flags[d][idx[:, d]]
        return (np.all(sp <= self.array_caps, axis=1) & self.fits(0, ext0, sp, flags)
                & self.fits(1, ext1, sp, flags))

    def sample_indices(self, n: int, rng: np.random.Generator, rounds: int = 8):
        """``n`` valid mappings as ``(idx[n, 8], oc[n])``.

        Capacity-aware: every split already fits on its own (the space keeps no other), and
        joint overflows are rejected; if rejection keeps failing (very tight buffers), the rest
        is built loop by loop choosing only among the splits that still fit.
        """
        self.require_fit()
        got_idx, got_oc, have = [], [], 0
        for _ in range(rounds):
            if have >= n:
                break
            idx, oc = self.random_indices(max(4 * (n - have), 1024), rng)
            ok = self.valid_mask(idx)
            got_idx.append(idx[ok])
            got_oc.append(oc[ok])
            have += int(ok.sum())
        if have < n:
            idx, oc = self._build_indices(n - have, rng)
            got_idx.append(idx)
            got_oc.append(oc)
        return np.concatenate(got_idx)[:n], np.concatenate(got_oc)[:n]

    def _build_indices(self, n: int, rng: np.random.Generator, chunk: int = 2048):
        """Valid mappings built loop by loop (random loop order per chunk), each split chosen
        uniformly among those that still fit with the splits chosen so far."""
        dims = self._active_dims()
        out_idx, out_oc, done, tries = [], [], 0, 0
        while done < n:
            tries += 1
            if tries > 64:
                raise MappingError(f"layer '{self.layer.name}': no valid mapping found on '{self.acc.name}' "
                                   f"(the buffers are too small for double-buffered tiles)")
            M = min(chunk, n - done)
            idx, ext0, ext1, sp, flags = self._start(M)
            alive = np.ones(M, dtype=bool)
            for d in rng.permutation(dims) if dims else []:
                ok, e0, e1, s, f = self._extend(int(d), ext0, ext1, sp, flags)
                alive &= ok.any(axis=1)  # a dead end: a tile chosen earlier no longer fits twice
                key = rng.random(ok.shape)
                key[~ok] = -1.0
                pick = np.argmax(key, axis=1)
                rows = np.arange(M)
                idx[:, d] = pick
                ext0, ext1, sp, flags = e0[rows, pick], e1[rows, pick], s[rows, pick], f[rows, pick]
            out_idx.append(idx[alive])
            out_oc.append(rng.integers(0, N_ORDER_COMBOS, M)[alive])
            done += int(alive.sum())
        return np.concatenate(out_idx)[:n], np.concatenate(out_oc)[:n]

    def sample(self, n: int, rng: np.random.Generator):
        """``n`` valid mappings as kernel arrays ``(T, S, O)``."""
        return self.arrays(*self.sample_indices(n, rng))

    # ---- enumeration ----------------------------------------------------------------------
    def enumerate_splits(self, chunk: int = 1 << 16):
        """Yield index arrays ``idx[M, 8]`` covering every capacity-valid combination of splits
        exactly once (depth first in chunks, so memory stays bounded)."""
        self.require_fit()
        dims = sorted(self._active_dims(), key=lambda d: -len(self.splits[d]))

        def rec(k, idx, ext0, ext1, sp, flags):
            if k == len(dims):
                yield idx
                return
            d = dims[k]
            step = max(1, chunk // max(1, len(self.splits[d])))
            for lo in range(0, idx.shape[0], step):
                sl = slice(lo, lo + step)
                ok, e0, e1, s, f = self._extend(d, ext0[sl], ext1[sl], sp[sl], flags[sl])
                rows, cols = np.nonzero(ok)
                if rows.size == 0:
                    continue
                nidx = idx[sl][rows]
                nidx[:, d] = cols
                yield from rec(k + 1, nidx, e0[rows, cols], e1[rows, cols], s[rows, cols], f[rows, cols])

        yield from rec(0, *self._start(1))

    def count_valid(self) -> int:
        """Capacity-valid mappings in the space (enumerates: small spaces only)."""
        return sum(len(i) for i in self.enumerate_splits()) * N_ORDER_COMBOS

    def require_fit(self) -> None:
        """Raise ``MappingError`` naming the layer and the level when nothing can fit."""
        found = self._overflow()
        if found is not None:
            lvl, detail = found
            raise MappingError(f"layer '{self.layer.name}' fits no mapping on '{self.acc.name}': the {lvl} "
                               f"overflows ({detail})")

    # ---- structure ------------------------------------------------------------------------
    def split_index(self, d: int, temporal_col, spatial_col) -> int:
        """Row of ``splits[d]`` with these factors (``temporal_col[3]``, ``spatial_col[3]``), or -1."""
        key = tuple(int(v) for v in temporal_col) + tuple(int(v) for v in spatial_col)
        return self._row_index[d].get(key, -1)

    def indices_of(self, T, S, O) -> tuple[np.ndarray, int] | None:
        """``(idx[8], order combo)`` of one mapping given as arrays, or None if it is not in the
        space (a factor outside the candidates, or an order that is not canonical)."""
        T, S, O = np.asarray(T), np.asarray(S), np.asarray(O)
        idx = np.array([self.split_index(d, T[:, d], S[:, d]) for d in range(NDIM)], dtype=np.int64)
        if (idx < 0).any():
            return None
        pos = [np.nonzero(np.all(CANONICAL_ORDERS == O[l], axis=1))[0] for l in (1, 2)]
        if any(p.size == 0 for p in pos):
            return None
        return idx, int(pos[0][0]) * N_ORDERS + int(pos[1][0])
