"""The NAAS mapping encoding: a fixed-length real vector that any layer shape decodes from.

Layout (``ENCODING_LENGTH = 64`` entries, all in [0, 1]):

- ``[0:24]`` loop *importances*, eight per memory level (RF, GLB, DRAM): the loop order of a
  level is the dimensions sorted by decreasing importance, innermost first.
- ``[24:64]`` tiling *ratios*, five per loop dimension (``DIMS`` order): the spatial factor on
  array dimensions 0, 1, 2, then the register-file and global-buffer factors. Each ratio is an
  exponent: the factor is the candidate closest (in log space) to ``limit ** ratio`` where
  ``limit`` is what remains of the bound (for a spatial slot of an unfused array dimension also
  capped by the PEs it has left), so the same vector means "a quarter of the remaining extent, in log
  terms" on any layer. The DRAM factor takes what remains. Ratios of slots a loop cannot use
  (an array dimension that does not parallelize it) are ignored and encoded as 0.

Candidates are the ones of ``MappingSpace`` (divisors plus the balanced ceil-splits), so
``decode(encode(m)) == m`` for every mapping of the space.
"""
from __future__ import annotations

import math

import numpy as np

from accelerators.spec import Accelerator
from models.layer import DIMS, Layer

from .mapping import Mapping
from .space import divisors, spatial_candidates, temporal_candidates

NDIM = len(DIMS)
N_IMPORTANCE = 3 * NDIM
SLOTS = 5  # spatial a0, a1, a2, register file, global buffer
ENCODING_LENGTH = N_IMPORTANCE + SLOTS * NDIM


def ratio_index(d: int, slot: int) -> int:
    """Position of the ratio of loop dimension ``d``, slot ``slot`` in the vector."""
    return N_IMPORTANCE + d * SLOTS + slot


def _cdiv(a, b):
    return -(-a // b)


def _allowed(acc: Accelerator) -> list[list[int]]:
    """Per loop dimension, the array dimensions that may parallelize it."""
    return [[a for a, ad in enumerate(acc.array) if dim in ad.loops] for dim in DIMS]


def encode(mapping: Mapping, layer: Layer, acc: Accelerator) -> np.ndarray:
    """The vector of ``mapping`` (see the module docstring)."""
    vec = np.zeros(ENCODING_LENGTH)
    for l in range(3):
        for pos, d in enumerate(mapping.order[l]):
            vec[l * NDIM + d] = (NDIM - pos) / NDIM
    allowed = _allowed(acc)
    left = [ad.size for ad in acc.array]
    for d in range(NDIM):
        rem = layer.bounds[d]
        for a in allowed[d]:
            f = mapping.spatial[a][d]
            limit = rem if acc.array[a].fused else min(rem, left[a])
            vec[ratio_index(d, a)] = math.log(f) / math.log(limit) if limit > 1 else 0.0
            left[a] //= f
            rem = _cdiv(rem, f)
        for slot, l in ((3, 0), (4, 1)):
            f = mapping.temporal[l][d]
            vec[ratio_index(d, slot)] = math.log(f) / math.log(rem) if rem > 1 else 0.0
            rem = _cdiv(rem, f)
    return np.clip(vec, 0.0, 1.0)


def decode(vec, layer: Layer, acc: Accelerator) -> Mapping:
    """The mapping of one vector (values outside [0, 1] are clipped)."""
    T, S, O = decode_batch(np.asarray(vec, dtype=np.float64).reshape(1, -1), layer, acc)
    return Mapping.from_arrays(T[0], S[0], O[0])


def _nearest(cands: np.ndarray, log_target: np.ndarray) -> np.ndarray:
    """The candidate closest to each target in log space (``cands`` sorted ascending)."""
    if len(cands) == 1:
        return np.full(len(log_target), cands[0], dtype=np.int64)
    logc = np.log(cands)
    pos = np.clip(np.searchsorted(logc, log_target), 1, len(cands) - 1)
    take_hi = (logc[pos] - log_target) < (log_target - logc[pos - 1])
    return np.where(take_hi, cands[pos], cands[pos - 1])


def decode_batch(V, layer: Layer, acc: Accelerator):
    """Kernel arrays ``(T, S, O)`` of a batch of vectors ``V[B, 64]`` (vectorized decode)."""
    V = np.clip(np.asarray(V, dtype=np.float64).reshape(-1, ENCODING_LENGTH), 0.0, 1.0)
    B = V.shape[0]
    T = np.ones((B, 3, NDIM), dtype=np.int64)
    S = np.ones((B, 3, NDIM), dtype=np.int64)
    imp = V[:, :N_IMPORTANCE].reshape(B, 3, NDIM)
    O = np.argsort(-imp, axis=2, kind="stable").astype(np.int64)
    allowed = _allowed(acc)
    left = np.array([[ad.size for ad in acc.array]] * B, dtype=np.int64).reshape(B, len(acc.array))
    for d in range(NDIM):
        rem = np.full(B, layer.bounds[d], dtype=np.int64)
        slots = [(a, "s") for a in allowed[d]] + [(3, 0), (4, 1)]
        for slot, kind in slots:
            ratio = V[:, ratio_index(d, slot)]
            f = np.ones(B, dtype=np.int64)
            if kind == "s" and acc.array[slot].fused:  # no PE budget: the product is folded
                for r in np.unique(rem):
                    rows = np.nonzero(rem == r)[0]
                    c = np.array(divisors(int(r)), dtype=np.int64)
                    f[rows] = _nearest(c, ratio[rows] * np.log(int(r)))
                S[:, slot, d] = f
            elif kind == "s":
                size = acc.array[slot].size
                keys = rem * (size + 1) + left[:, slot]
                for key in np.unique(keys):
                    rows = np.nonzero(keys == key)[0]
                    r, cap = int(rem[rows[0]]), int(left[rows[0], slot])
                    c = np.array([v for v in spatial_candidates(r, size) if v <= cap], dtype=np.int64)
                    f[rows] = _nearest(c, ratio[rows] * np.log(max(1, min(r, cap))))
                left[:, slot] //= f
                S[:, slot, d] = f
            else:
                for r in np.unique(rem):
                    rows = np.nonzero(rem == r)[0]
                    c = np.array(temporal_candidates(int(r)), dtype=np.int64)
                    f[rows] = _nearest(c, ratio[rows] * np.log(int(r)))
                T[:, kind, d] = f
            rem = -(-rem // f)
        T[:, 2, d] = rem
    return T, S, O
