"""Analytical cost of one mapped layer: the readable scalar path.

A mapping is given as three integer arrays (the layout the numba batch kernel in
``kernel.py`` also uses; ``mappings.Mapping`` builds them):

- ``temporal[l, d]``: temporal tiling factor of loop dimension ``d`` (``DIMS`` order) at memory
  level ``l`` (0 = register file, 1 = global buffer, 2 = DRAM). Loops at level ``l`` iterate
  over tiles held at level ``l-1``.
- ``spatial[a, d]``: spatial unrolling factor of ``d`` on array dimension ``a`` (between the
  global buffer and the register files).
- ``order[l, :]``: a permutation of the 8 dimension indices, innermost loop first.

The rules (Timeloop-style reuse analysis on a roofline) are in the project's design notes; the
ones that need a word:

- Tiles are projections of the loop extents below a level, capped at the layer bounds
  (padding iterations waste cycles but hold no data); input tiles include the halo and count
  only the rows and columns a strided, dilated window reads (``touched_tables``).
- Fills of a level: walk every temporal loop above it from innermost outward; non-unit loops
  irrelevant to the data space that sit innermost keep the tile (reuse); from the first relevant
  loop outward every loop multiplies the fill count.
- Outputs: every visit of an output tile writes it back to the parent; all visits but the
  first read the partial sums back (read-modify-write).
- Fused array dimensions unroll the product of their loops' spatial factors in
  ``ceil(product / size)`` passes: the passes multiply compute cycles and folds, while the
  footprint and the tiles above the array are those of the whole (virtual) product. The pass
  loop sits innermost above the register file, so no loop above keeps the tile of a data
  space a pass changes: its fills are the product of every temporal factor above the RF.
- Spatial: the parent reads the array's footprint once per fill (multicast of data irrelevant
  to an array dimension; the halo shared by neighbouring PEs); partial sums reduced across an
  array dimension are summed in the network, so the parent sees one write per output.
- Each real MAC reads a weight and an input and reads and writes a partial sum in the PE's
  register file. Padding iterations cost cycles, not energy.
- Latency ``startup + max(compute + pipeline cycles, ceil(traffic_l / bandwidth_l)) + tail``
  (double buffering assumed in between): the start-up loads the first global-buffer tiles of
  weights and inputs from DRAM, the tail writes the last output tile back, neither overlapped
  with compute; the DRAM roof covers the rest of the DRAM traffic. Pipeline cycles are the
  array's per-fold costs (``spec.ArrayTiming``): folds = register-file fills of the stationary
  operand. The reported bound is the busiest resource over the whole layer (DRAM time includes
  start-up and tail).
- Per-access energies are per 16-bit word and scale with each data space's word width.
- Capacity: tiles must fit each level; an overflowing mapping is invalid, never clamped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from models.layer import DATA_SPACES, DIMS, RELEVANT, Layer

from .spec import Accelerator

COMPONENTS = ("mac", "rf", "noc", "glb", "dram")
BOUNDS = ("compute", "rf", "glb", "dram")
REF_WORD_BITS = 16

# Reason codes shared with the batch kernel (0 = valid).
REASONS = {
    0: "",
    1: "a spatial factor is on a loop dimension the array dimension cannot parallelize",
    2: "spatial factors exceed an array dimension's size",
    3: "the factors do not cover a loop bound",
    4: "a loop order is not a permutation of the 8 dimensions",
    5: "tiles overflow the register file",
    6: "tiles overflow the global buffer",
    7: "a factor is not a positive integer",
}


@dataclass
class Cost:
    """Cost of one layer under one mapping. ``valid=False`` carries the reason and no cost."""

    valid: bool
    reason: str = ""
    macs: int = 0
    cycles: int = 0
    compute_cycles: int = 0   # temporal iterations (padding included) times fused-array passes
    pipeline_cycles: int = 0  # per-fold array costs (fill, drain, preload, setup)
    startup_cycles: int = 0   # first weight and input tiles from DRAM, before compute
    tail_cycles: int = 0      # last output tile to DRAM, after compute
    energy_pj: float = 0.0
    energy_by_component: dict = field(default_factory=dict)
    energy_by_space: dict = field(default_factory=dict)
    accesses: dict = field(default_factory=dict)  # level -> space -> {"reads", "writes"}
    utilization: float = 0.0
    bound: str = ""
    clock_mhz: float = 0.0

    @property
    def edp(self) -> float:
        """Energy-delay product in pJ x cycles."""
        return self.energy_pj * self.cycles

    @property
    def latency_ms(self) -> float:
        return self.cycles / (self.clock_mhz * 1e3) if self.clock_mhz else 0.0

    @property
    def edp_js(self) -> float:
        return self.energy_pj * 1e-12 * self.latency_ms * 1e-3

    def to_dict(self) -> dict:
        d = {"valid": self.valid}
        if not self.valid:
            d["reason"] = self.reason
            return d
        d.update(macs=self.macs, cycles=self.cycles, compute_cycles=self.compute_cycles,
                 pipeline_cycles=self.pipeline_cycles, startup_cycles=self.startup_cycles,
                 tail_cycles=self.tail_cycles,
                 latency_ms=self.latency_ms, energy_pj=self.energy_pj, edp=self.edp,
                 edp_js=self.edp_js, utilization=self.utilization, bound=self.bound,
                 energy_by_component=self.energy_by_component,
                 energy_by_space=self.energy_by_space, accesses=self.accesses)
        return d


# ---- helpers shared with the lower bound ---------------------------------------------------
@lru_cache(maxsize=1024)
def _touched_table(out_len: int, k: int, stride: int, dil: int) -> np.ndarray:
    """``table[p, r]``: input rows read by ``p`` consecutive output rows of a ``r``-row window
    (``|{i*stride + j*dil : i < p, j < r}|``), for ``p <= out_len``, ``r <= k``. A strided
    window that skips rows (1x1 stride 2) or a dilated one reads fewer rows than its bounding
    box ``(p-1)*stride + (r-1)*dil + 1``."""
    table = np.zeros((out_len + 1, k + 1), dtype=np.int64)
    i = np.arange(out_len)[:, None]
    for r in range(1, k + 1):
        pos = (i * stride + np.arange(r)[None, :] * dil).ravel()  # row-major: output row i first
        first = np.full(pos.max() + 1, out_len, dtype=np.int64)
        np.minimum.at(first, pos, np.repeat(np.arange(out_len), r))
        new_per_row = np.bincount(first[first < out_len], minlength=out_len)
        table[1:, r] = np.cumsum(new_per_row)
    table.flags.writeable = False
    return table


@lru_cache(maxsize=1024)
def _real_tables(out_len: int, k: int, stride: int, dil: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, most)[p, r]``: input rows that are real data (not zero padding) in a tile of
    ``p`` output rows and ``r`` window rows, averaged over (``mean``) and maximal among
    (``most``) the tiles of the layer's grid.

    The grid follows the model's tile convention (every tile is a full ``p x r`` tile: the last
    one along each axis is shifted back inside the layer), so without padding both tables equal
    ``_touched_table``. Real rows are ``[pad, H - pad)`` of the ``H``-row padded input."""
    touched = _touched_table(out_len, k, stride, dil)
    if pad == 0:
        return touched.astype(np.float64), touched
    span = (out_len - 1) * stride + (k - 1) * dil + 1
    lo, hi = pad, max(pad + 1, span - pad)
    mean = np.zeros((out_len + 1, k + 1))
    most = np.zeros((out_len + 1, k + 1), dtype=np.int64)
    for p in range(1, out_len + 1):
        for r in range(1, k + 1):
            base = np.unique((np.arange(p)[:, None] * stride + np.arange(r)[None, :] * dil).ravel())
            i0 = np.minimum(np.arange(-(-out_len // p)) * p, out_len - p)
            j0 = np.minimum(np.arange(-(-k // r)) * r, k - r)
            off = (i0[:, None] * stride + j0[None, :] * dil).ravel()
            n = np.searchsorted(base, hi - off) - np.searchsorted(base, lo - off)
            mean[p, r] = n.mean()
            most[p, r] = n.max()
    mean.flags.writeable = False
    most.flags.writeable = False
    return mean, most


def touched_tables(layer: Layer, stores_padding: bool = False, capacity: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Input rows and columns in tiles of ``p x r`` and ``q x s`` window extents of ``layer``.

    Rows of zero padding count only when the accelerator ``stores_padding``; otherwise a tile
    counts its real rows, averaged over the layer's tiles (the traffic tables, float) or the
    most any tile holds (``capacity``, integers)."""
    if stores_padding:
        return (_touched_table(layer.P, layer.R, layer.stride, layer.dilation),
                _touched_table(layer.Q, layer.S, layer.stride, layer.dilation))
    rows = _real_tables(layer.P, layer.R, layer.stride, layer.dilation, layer.padding)
    cols = _real_tables(layer.Q, layer.S, layer.stride, layer.dilation, layer.padding)
    i = 1 if capacity else 0
    return rows[i], cols[i]


def tile_elems(space: str, ext, layer: Layer, stores_padding: bool = False, capacity: bool = False):
    """Elements of ``space`` touched by loop extents ``ext`` (DIMS order), capped at the layer;
    input tiles count the rows and columns a strided, dilated window actually reads, without
    zero padding unless the accelerator stores it (``touched_tables``)."""
    g, n, k, c, p, q, r, s = (min(int(e), b) for e, b in zip(ext, layer.bounds))
    if space == "W":
        return g * k * c * r * s
    if space == "O":
        return g * n * k * p * q
    th, tw = touched_tables(layer, stores_padding, capacity)
    if th.dtype == np.int64:
        return g * n * c * int(th[p, r]) * int(tw[q, s])
    return g * n * c * float(th[p, r]) * float(tw[q, s])


def access_energies(acc: Accelerator) -> dict:
    """Per-access energy (pJ) of each level and data space: ``{(level, space): (read, write)}``."""
    out = {}
    for lvl in ("rf", "glb", "dram"):
        m = acc.level(lvl)
        for x in DATA_SPACES:
            f = acc.word_bits[x] / REF_WORD_BITS
            rd, wr = m.energies(x)
            out[(lvl, x)] = (rd * f, wr * f)
    for x in DATA_SPACES:
        out[("noc", x)] = acc.noc_energy_pj * acc.word_bits[x] / REF_WORD_BITS
    return out


def chunk_bits(n, size, bits, access_bits):
    """Bits whose energy ``n`` transfers of ``size`` words of ``bits`` cost at a level with
    ``access_bits``-wide accesses (each transfer pays whole accesses); 0/None: the bits moved."""
    if access_bits:
        return n * (math.ceil(size * bits / access_bits) * access_bits)
    return n * (size * bits)


def exact_widths(acc: Accelerator) -> bool:
    """Whether energy needs per-transfer widths: accesses of a fixed width at the GLB or DRAM,
    or finished outputs narrowed from the GLB on (else every word costs its own width)."""
    return (acc.narrow_outputs_at == "glb" or acc.glb.access_bits is not None
            or acc.dram.access_bits is not None)


def per_bit_energies(acc: Accelerator) -> dict:
    """``{(level, space): (read, write)}`` pJ per bit at the GLB and DRAM."""
    e = access_energies(acc)
    return {(lvl, x): (e[(lvl, x)][0] / acc.word_bits[x], e[(lvl, x)][1] / acc.word_bits[x])
            for lvl in ("glb", "dram") for x in DATA_SPACES}


def transfer_weights(acc: Accelerator, level: str) -> tuple[dict, float]:
    """``(weight per data space, denominator)``: a level moves ``sum(words[x] * weight[x])``
    in ``ceil(that / denominator)`` cycles. Bandwidth in words: every word weighs 1; in bits:
    a word weighs its width. ``(None, 0)`` when the level is never a roof."""
    m = acc.level(level)
    if m.bw_bits_per_cycle is not None:
        return {x: acc.word_bits[x] for x in DATA_SPACES}, m.bw_bits_per_cycle
    if m.bw_words_per_cycle is None:
        return None, 0.0
    return {x: 1 for x in DATA_SPACES}, m.bw_words_per_cycle


def _fills(space: str, levels, temporal, order) -> tuple[int, int]:
    """(fill count, distinct tiles) of ``space`` at a level whose parent loops are ``levels``
    (innermost level first)."""
    rel = RELEVANT[space]
    fills, distinct, started = 1, 1, False
    for lvl in levels:
        for d in order[lvl]:
            f = int(temporal[lvl][d])
            if f == 1:
                continue
            relevant = DIMS[d] in rel
            if relevant:
                distinct *= f
            if not started and not relevant:
                continue  # stationary: the tile stays through this loop
            started = True
            fills *= f
    return fills, distinct


def _run_loop(space: str, levels, temporal, order):
    """``(dim, factor)`` of the first non-unit loop relevant to ``space`` walking ``levels``
    from innermost outward: the loop whose consecutive iterations a refill steps through."""
    rel = RELEVANT[space]
    for lvl in levels:
        for d in order[lvl]:
            f = int(temporal[lvl][d])
            if f != 1 and DIMS[d] in rel:
                return d, f
    return None


WINDOW_DIMS = frozenset(DIMS.index(x) for x in "PQRS")


def _slid(ext, run, layer: Layer, pad: bool) -> float:
    """Input words per refill when a run of ``run = (dim, factor)`` steps slides the window
    along ``dim``: the run moves the union of its tiles, ``tile(ext with dim x factor)``,
    and each step the new rows only (the overlap stays)."""
    d, f = run
    e = list(ext)
    e[d] *= f
    return tile_elems("I", e, layer, pad) / f


def array_passes(acc: Accelerator, spatial) -> tuple[int, frozenset]:
    """``(passes, spaces)``: the passes fused array dimensions need for their flattened spatial
    products (1 when none folds), and the data spaces a pass changes (those indexed by a loop
    unrolled on a folding dimension)."""
    out, dims = 1, set()
    for a, ad in enumerate(acc.array):
        if ad.fused:
            n = -(-math.prod(int(f) for f in spatial[a]) // ad.size)
            if n > 1:
                out *= n
                dims.update(DIMS[d] for d in range(8) if int(spatial[a][d]) > 1)
    return out, frozenset(x for x in DATA_SPACES if dims & RELEVANT[x])


@dataclass
class _Tiles:
    """Per data space: tiles, fills and distinct tiles at the levels that hold it. A space the
    register file bypasses has a one-element operand "tile" in the PE (no storage, no RF
    access; its fills walk the RF loops too); one the global buffer bypasses moves between the
    array and DRAM, so its GLB tile and fills are those of the array's footprint."""

    t0: dict
    foot: dict
    t1: dict
    first: dict  # the first DRAM-side tile (start-up / tail), before any sliding reuse
    cap0: dict
    cap1: dict
    f0: dict
    d0: dict
    f1: dict
    d1: dict


def _tiles(layer: Layer, acc: Accelerator, temporal, spatial, order) -> _Tiles:
    sp = [math.prod(int(spatial[a][d]) for a in range(len(spatial))) for d in range(8)]
    ext0 = [int(temporal[0][d]) for d in range(8)]
    ext_s = [ext0[d] * sp[d] for d in range(8)]
    ext1 = [ext_s[d] * int(temporal[1][d]) for d in range(8)]
    passes, pass_spaces = array_passes(acc, spatial)
    above_rf = math.prod(int(temporal[l][d]) for l in (1, 2) for d in range(8))
    pad = acc.stores_padding
    T = _Tiles(*({} for _ in range(10)))
    for x in DATA_SPACES:
        if acc.rf.holds(x):
            T.t0[x] = tile_elems(x, ext0, layer, pad)
            T.cap0[x] = tile_elems(x, ext0, layer, pad, capacity=True)
            T.foot[x] = tile_elems(x, ext_s, layer, pad)
            f0, d0 = _fills(x, (1, 2), temporal, order)
            if x in pass_spaces:  # the pass loop, innermost above the RF, changes this tile
                f0 = above_rf
        else:
            T.t0[x], T.cap0[x] = 1, 0
            T.foot[x] = tile_elems(x, sp, layer, pad)
            f0, d0 = _fills(x, (0, 1, 2), temporal, order)
            if x in pass_spaces:
                f0 = _fills(x, (0,), temporal, order)[0] * above_rf
        T.f0[x], T.d0[x] = f0, d0
        if acc.glb.holds(x):
            T.t1[x] = T.first[x] = tile_elems(x, ext1, layer, pad)
            T.cap1[x] = tile_elems(x, ext1, layer, pad, capacity=True)
            T.f1[x], T.d1[x] = _fills(x, (2,), temporal, order)
    # Sliding windows: when the loop a refill of inputs steps through moves the window (P, Q,
    # R or S), consecutive tiles overlap and only the new rows move. At the RF this needs each
    # PE to keep its own overlap (the loop is not unrolled on the array) and no fused-array pass
    # in between; the GLB keeps its overlap.
    if acc.rf.holds("I") and "I" not in pass_spaces:
        run = _run_loop("I", (1, 2), temporal, order)
        if run is not None and run[0] in WINDOW_DIMS and sp[run[0]] == 1:
            T.t0["I"] = _slid(ext0, run, layer, pad)
            T.foot["I"] = _slid(ext_s, run, layer, pad)
    if acc.glb.holds("I"):
        run = _run_loop("I", (2,), temporal, order)
        if run is not None and run[0] in WINDOW_DIMS:
            T.t1["I"] = _slid(ext1, run, layer, pad)
    for x in DATA_SPACES:
        if not acc.glb.holds(x):
            T.t1[x], T.cap1[x], T.f1[x], T.d1[x] = T.foot[x], 0, T.f0[x], T.d0[x]
            T.first[x] = tile_elems(x, ext_s if acc.rf.holds(x) else sp, layer, pad)
    return T


def check_mapping(layer: Layer, acc: Accelerator, temporal, spatial, order) -> int:
    """Reason code (0 = valid) for structure, coverage and capacity."""
    return (_structure_reason(layer, acc, temporal, spatial, order)
            or _capacity_reason(acc, _tiles(layer, acc, temporal, spatial, order)))


def _structure_reason(layer: Layer, acc: Accelerator, temporal, spatial, order) -> int:
    """Reason code (0 = valid) for loop orders, factors, array sizes and coverage."""
    A = len(acc.array)
    for l in range(3):
        if sorted(int(x) for x in order[l]) != list(range(8)):
            return 4
    for row in list(temporal) + list(spatial):
        if any(int(f) < 1 for f in row):
            return 7
    for a in range(A):
        prod = 1
        for d in range(8):
            f = int(spatial[a][d])
            if f > 1 and DIMS[d] not in acc.array[a].loops:
                return 1
            prod *= f
        if prod > acc.array[a].size and not acc.array[a].fused:
            return 2
    for a in range(A, len(spatial)):
        if any(int(f) != 1 for f in spatial[a]):
            return 2
    for d, bound in enumerate(layer.bounds):
        cover = math.prod(int(temporal[l][d]) for l in range(3)) * math.prod(int(spatial[a][d]) for a in range(len(spatial)))
        if cover < bound:
            return 3
    return 0


def buffer_need_bytes(acc: Accelerator, level: str, tiles: dict, fills: dict) -> dict:
    """Bytes each data space takes at ``level`` (``rf`` per PE, or ``glb``): its tile, twice
    over when the level is double-buffered and the tile is refilled during the layer."""
    m = acc.level(level)
    out = {}
    for x in DATA_SPACES:
        if not m.holds(x):
            out[x] = 0.0
            continue
        copies = 2 if m.buffering == "double" and fills[x] > 1 else 1
        out[x] = copies * tiles[x] * acc.word_bits[x] / 8
    return out


def glb_tiles(layer: Layer, acc: Accelerator, temporal, spatial, order) -> tuple[dict, dict]:
    """``(tiles, fills)`` per data space at the global buffer under a mapping: the capacity a
    mapping takes there is ``buffer_need_bytes(acc, "glb", tiles, fills)``."""
    T = _tiles(layer, acc, temporal, spatial, order)
    return T.cap1, T.f1


def _capacity_reason(acc: Accelerator, T: _Tiles) -> int:
    for lvl, tiles, fills, code in (("rf", T.cap0, T.f0, 5), ("glb", T.cap1, T.f1, 6)):
        m = acc.level(lvl)
        need = buffer_need_bytes(acc, lvl, tiles, fills)
        if m.split_bytes:
            if any(need[x] > m.split_bytes.get(x, 0) for x in DATA_SPACES if m.holds(x)):
                return code
        elif sum(need.values()) > m.capacity_bytes:
            return code
    return 0


def evaluate_mapping(layer: Layer, acc: Accelerator, temporal, spatial, order, onchip=(),
                     dram_scale=None) -> Cost:
    """Cost of ``layer`` on ``acc`` under the mapping arrays (see module docstring).

    ``onchip``: data spaces that live in the global buffer for this layer instead of DRAM (a
    fused stack's intermediate activations, or weights kept on chip): they have no DRAM
    traffic, no start-up or tail, and no global-buffer fills or drains on the DRAM side; the
    caller accounts for the space they take (``accelerators.schedule``).
    ``dram_scale``: ``{space: f}`` for W or I, the fraction of their DRAM reads (and the
    global-buffer fills they make) that actually come from DRAM, the rest being on chip
    already (a cached stack's halo rows)."""
    bad = [x for x in onchip if x not in DATA_SPACES or not acc.glb.holds(x)]
    if bad:
        raise ValueError(f"on-chip data spaces {bad}: each must be one of W, I, O that the global buffer holds")
    reason = _structure_reason(layer, acc, temporal, spatial, order)
    T = None if reason else _tiles(layer, acc, temporal, spatial, order)
    reason = reason or _capacity_reason(acc, T)
    if reason:
        return Cost(valid=False, reason=REASONS[reason])
    macs = layer.macs
    nsp = len(spatial)
    sp = [math.prod(int(spatial[a][d]) for a in range(nsp)) for d in range(8)]
    pes = math.prod(sp)  # active PEs
    passes, _ = array_passes(acc, spatial)

    acc_count = {lvl: {x: {"reads": 0, "writes": 0} for x in DATA_SPACES} for lvl in ("rf", "glb", "dram")}
    noc_words = {x: 0 for x in DATA_SPACES}
    for x in DATA_SPACES:
        t0, foot, t1 = T.t0[x], T.foot[x], T.t1[x]
        f0, d0, f1, d1 = T.f0[x], T.d0[x], T.f1[x], T.d1[x]
        rf, glb, dram = acc_count["rf"][x], acc_count["glb"][x], acc_count["dram"][x]
        in_rf, in_glb = acc.rf.holds(x), acc.glb.holds(x)
        if x in ("W", "I"):
            if in_rf:
                rf["reads"] += macs
                rf["writes"] += f0 * t0 * pes
            noc_words[x] += f0 * t0 * pes
            if in_glb:
                glb["reads"] += f0 * foot
            if x in onchip:
                continue
            if in_glb:
                glb["writes"] += f1 * t1
            dram["reads"] += f1 * t1
        else:
            if in_rf:
                rf["reads"] += macs + f0 * t0 * pes            # MAC read-modify-write + drains
                rf["writes"] += macs + (f0 - d0) * t0 * pes    # MAC updates + partial-sum refills
            noc_words[x] += (2 * f0 - d0) * t0 * pes
            if in_glb:
                glb["writes"] += f0 * foot
                glb["reads"] += (f0 - d0) * foot
            if x in onchip:
                continue
            if in_glb:
                glb["writes"] += (f1 - d1) * t1
                glb["reads"] += f1 * t1
            dram["writes"] += f1 * t1
            dram["reads"] += (f1 - d1) * t1
    for x, f in (dram_scale or {}).items():
        if x not in ("W", "I") or not 0 <= f <= 1:
            raise ValueError(f"dram_scale {x}={f}: a fraction in [0, 1] of W or I reads")
        dram_in = acc_count["dram"][x]["reads"]
        acc_count["dram"][x]["reads"] = dram_in * f
        if acc.glb.holds(x) and x not in onchip:
            acc_count["glb"][x]["writes"] -= dram_in * (1 - f)
        # of the output words written to DRAM, the last visit of each tile writes final outputs:
    # they leave at the activation width (word_bits I); spilled partial sums at word_bits O
    final_out = 0 if "O" in onchip else T.d1["O"] * T.t1["O"]

    e = access_energies(acc)
    exact = _exact_energy(acc, T, onchip, dram_scale) if exact_widths(acc) else None
    by_space = {}
    comp = {"mac": macs * acc.mac_energy_pj, "rf": 0.0, "noc": 0.0, "glb": 0.0, "dram": 0.0}
    for x in DATA_SPACES:
        ex = 0.0
        for lvl in ("rf", "glb", "dram"):
            rd, wr = e[(lvl, x)]
            if exact is not None and lvl != "rf":
                v = exact[(lvl, x)]
            elif lvl == "dram" and x == "O":
                v = (acc_count[lvl][x]["reads"] * rd + (acc_count[lvl][x]["writes"] - final_out) * wr
                     + final_out * e[("dram", "I")][1])
            else:
                v = acc_count[lvl][x]["reads"] * rd + acc_count[lvl][x]["writes"] * wr
            comp[lvl] += v
            ex += v
        v = noc_words[x] * e[("noc", x)]
        comp["noc"] += v
        ex += v
        by_space[x] = ex
    energy = comp["mac"] + comp["rf"] + comp["noc"] + comp["glb"] + comp["dram"]

    compute = passes * math.prod(int(temporal[l][d]) for l in range(3) for d in range(8))
    st = acc.timing.stationary
    pipeline = T.f0[st] * passes * acc.timing.fold_overhead(acc.array) if st is not None else 0

    def moved(lvl):  # weighted words a level moves (see transfer_weights)
        w, _ = transfer_weights(acc, lvl)
        if lvl == "dram":
            c = acc_count[lvl]
            return ((c["W"]["reads"] + c["W"]["writes"]) * w["W"] + (c["I"]["reads"] + c["I"]["writes"]) * w["I"]
                    + (c["O"]["reads"] + c["O"]["writes"] - final_out) * w["O"] + final_out * w["I"])
        v = sum((acc_count[lvl][x]["reads"] + acc_count[lvl][x]["writes"]) * w[x] for x in DATA_SPACES)
        if lvl == "glb" and acc.narrow_outputs_at == "glb":  # finished outputs at the activation width
            v -= _glb_final_words(T, onchip) * (w["O"] - w["I"])
        return v

    # start-up (the first DRAM-side tiles of weights and inputs) and tail (the last tile of
    # final outputs) are not overlapped with compute; the rest of the DRAM traffic is
    wd, dram_bw = transfer_weights(acc, "dram")
    first_in = sum(T.first[x] * wd[x] * (dram_scale or {}).get(x, 1) for x in ("W", "I") if x not in onchip)
    last_out = 0 if "O" in onchip else T.first["O"] * wd["I"]
    startup, tail = math.ceil(first_in / dram_bw), math.ceil(last_out / dram_bw)
    terms = {}
    wr_, rf_bw = transfer_weights(acc, "rf")
    if rf_bw:
        terms["rf"] = math.ceil(moved("rf") / pes * passes / rf_bw)
    glb_bw = transfer_weights(acc, "glb")[1]
    if glb_bw:  # as the RF: a GLB without a bandwidth is never the roof
        terms["glb"] = math.ceil(moved("glb") / glb_bw)
    terms["dram"] = math.ceil((moved("dram") - first_in - last_out) / dram_bw)
    # a single-buffered level cannot load while the array works: its transfers add to compute
    serial = compute + pipeline
    if acc.rf.buffering == "single":
        serial += terms.get("glb", 0)
    if acc.glb.buffering == "single":
        serial += terms["dram"]
    terms["compute"] = serial
    cycles = startup + max(terms.values()) + tail
    # the bound is the busiest resource over the whole layer (DRAM: start-up and tail included)
    busy = {**terms, "dram": startup + terms["dram"] + tail}
    bound = max(BOUNDS, key=lambda b: (busy.get(b, -1), -BOUNDS.index(b)))
    return Cost(valid=True, macs=macs, cycles=cycles, compute_cycles=compute, pipeline_cycles=pipeline,
                startup_cycles=startup, tail_cycles=tail, energy_pj=energy,
                energy_by_component=comp, energy_by_space=by_space, accesses=acc_count,
                utilization=macs / (cycles * acc.num_pes), bound=bound, clock_mhz=acc.clock_mhz)


def _glb_final_words(T: _Tiles, onchip) -> float:
    """Finished output words the GLB takes in (the last drain of each array tile) and hands on
    to DRAM (the last visit of each GLB tile)."""
    return T.d0["O"] * T.foot["O"] + (0 if "O" in onchip else T.d1["O"] * T.t1["O"])


def _exact_energy(acc: Accelerator, T: _Tiles, onchip, dram_scale) -> dict:
    """GLB and DRAM energy per data space when widths matter per transfer (``exact_widths``):
    every refill or drain of a tile is one transfer, paying whole accesses of ``access_bits``;
    finished outputs move at the activation width from the level ``narrow_outputs_at`` on.
    Same terms, in the same order, as the batch kernel."""
    pb = per_bit_energies(acc)
    bits = acc.word_bits
    out = {}
    for x in DATA_SPACES:
        ag, ad = acc.glb.access_bits_of(x), acc.dram.access_bits_of(x)
        foot, t1 = T.foot[x], T.t1[x]
        f0, d0, f1, d1 = T.f0[x], T.d0[x], T.f1[x], T.d1[x]
        held = acc.glb.holds(x)
        b = bits[x]
        if x in ("W", "I"):
            scale = (dram_scale or {}).get(x, 1)
            off = x in onchip
            g_r = chunk_bits(f0, foot, b, ag) if held else 0.0
            g_w = chunk_bits(f1, t1, b, ag) * scale if held and not off else 0.0
            d_r = 0.0 if off else chunk_bits(f1, t1, b, ad) * scale
            out[("glb", x)] = g_r * pb[("glb", x)][0] + g_w * pb[("glb", x)][1]
            out[("dram", x)] = d_r * pb[("dram", x)][0]
            continue
        bf = bits["I"] if acc.narrow_outputs_at == "glb" else b
        off = "O" in onchip
        g_w = g_r = 0.0
        if held:
            g_w = chunk_bits(f0 - d0, foot, b, ag) + chunk_bits(d0, foot, bf, ag)
            g_r = chunk_bits(f0 - d0, foot, b, ag)
            if not off:
                g_w += chunk_bits(f1 - d1, t1, b, ag)
                g_r += chunk_bits(f1 - d1, t1, b, ag) + chunk_bits(d1, t1, bf, ag)
        d_r = d_w = d_f = 0.0
        if not off:
            d_r = d_w = chunk_bits(f1 - d1, t1, b, ad)
            d_f = chunk_bits(d1, t1, bits["I"], ad)
        out[("glb", x)] = g_r * pb[("glb", x)][0] + g_w * pb[("glb", x)][1]
        out[("dram", x)] = d_r * pb[("dram", x)][0] + d_w * pb[("dram", x)][1] + d_f * pb[("dram", "I")][1]
    return out


# ---- lower bound ---------------------------------------------------------------------------
@dataclass
class LowerBound:
    cycles: int
    energy_pj: float
    dram_words: int

    @property
    def edp(self) -> float:
        return self.energy_pj * self.cycles

    def to_dict(self) -> dict:
        return {"cycles": self.cycles, "energy_pj": self.energy_pj, "dram_words": self.dram_words, "edp": self.edp}


def compulsory_words(layer: Layer, stores_padding: bool = False) -> dict:
    """Words every mapping must move from DRAM: each weight, each touched input (its zero
    padding only when the accelerator stores it), each output."""
    # a whole-layer tile is one tile: its real-row count is an exact integer
    return {x: int(round(tile_elems(x, layer.bounds, layer, stores_padding))) for x in DATA_SPACES}


def lower_bound(layer: Layer, acc: Accelerator) -> LowerBound:
    """A bound no mapping can beat: ``ceil(MACs/#PEs)`` cycles, compulsory DRAM traffic, and the
    energy of the MACs, their register-file accesses and one pass of every compulsory word
    through DRAM and the global buffer (the levels that hold it)."""
    comp = compulsory_words(layer, acc.stores_padding)
    e = access_energies(acc)
    energy = layer.macs * acc.mac_energy_pj
    rf_reads = [e[("rf", x)][0] for x in DATA_SPACES if acc.rf.holds(x)]
    energy += layer.macs * (sum(rf_reads) + (e[("rf", "O")][1] if acc.rf.holds("O") else 0.0))
    for x in DATA_SPACES:
        dram = e[("dram", "I")][1] if x == "O" else e[("dram", x)][0]  # final outputs: activation width
        glb = sum(e[("glb", x)]) if acc.glb.holds(x) else 0.0
        if x == "O" and acc.narrow_outputs_at == "glb":
            glb *= acc.word_bits["I"] / acc.word_bits["O"]
        energy += comp[x] * (dram + glb)
    words = sum(comp.values())
    w, bw = transfer_weights(acc, "dram")
    cycles = max(-(-layer.macs // acc.num_pes), math.ceil((comp["W"] * w["W"] + comp["I"] * w["I"]
                                                           + comp["O"] * w["I"]) / bw))
    return LowerBound(cycles=cycles, energy_pj=energy, dram_words=words)


def as_arrays(temporal, spatial, order):
    """Normalize mapping arrays to int64 numpy arrays with three spatial rows."""
    t = np.asarray(temporal, dtype=np.int64).reshape(3, 8)
    s = np.ones((3, 8), dtype=np.int64)
    s_in = np.asarray(spatial, dtype=np.int64).reshape(-1, 8)
    s[: s_in.shape[0]] = s_in
    o = np.asarray(order, dtype=np.int64).reshape(3, 8)
    return t, s, o
