"""The numba batch cost kernel: many candidate mappings of one layer in one call.

Same rules as the scalar path in ``cost.py`` (a test checks that both agree exactly), on
integer arrays: ``T[b, level, dim]`` temporal factors, ``S[b, arraydim, dim]`` spatial
factors (three rows; unused rows all ones), ``O[b, level, :]`` loop orders innermost first.
Results come back as a float64 matrix, one row per candidate, columns named in ``COLUMNS``.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache

import numba
import numpy as np
from numba import njit, prange

from models.layer import DATA_SPACES, DIMS, RELEVANT, Layer

from .cost import (BOUNDS, COMPONENTS, REASONS, access_energies, exact_widths, per_bit_energies, touched_tables,
                   transfer_weights)
from .spec import Accelerator

COLUMNS = ("reason", "cycles", "energy_pj", "edp", "utilization", "bound", "compute_cycles",
           "e_mac", "e_rf", "e_noc", "e_glb", "e_dram", "e_W", "e_I", "e_O",
           "dram_words", "glb_words", "pipeline_cycles", "startup_cycles", "tail_cycles")
COL = {c: i for i, c in enumerate(COLUMNS)}
NCOL = len(COLUMNS)

# bit x of _REL_BITS[d] is set when loop dimension d indexes data space x (W, I, O)
_REL_BITS = np.array([sum(1 << i for i, x in enumerate(DATA_SPACES) if d in RELEVANT[x]) for d in DIMS], dtype=np.int64)


def hw_arrays(acc: Accelerator) -> dict:
    """The accelerator as the flat arrays the kernel takes (computed once per accelerator)."""
    allowed = np.zeros((3, 8), dtype=np.int64)
    # asize[a] < 0 marks a fused dimension of size -asize[a] (ceil passes over its product)
    asize = np.ones(3, dtype=np.int64)
    for a, ad in enumerate(acc.array):
        asize[a] = -ad.size if ad.fused else ad.size
        for loop in ad.loops:
            allowed[a, DIMS.index(loop)] = 1
    # capacities: [level(rf, glb), 0..2 per space | 3 total]; -1 marks "not split"
    caps = np.full((2, 4), -1.0)
    # held[level(rf, glb), space]: 1 when the level holds the data space, 0 when it bypasses it
    held = np.ones((2, 3), dtype=np.int64)
    for i, lvl in enumerate(("rf", "glb")):
        m = acc.level(lvl)
        for j, x in enumerate(DATA_SPACES):
            held[i, j] = int(m.holds(x))
        if m.split_bytes:
            for j, x in enumerate(DATA_SPACES):
                caps[i, j] = m.split_bytes.get(x, 0)
        else:
            caps[i, 3] = m.capacity_bytes
    e = access_energies(acc)
    en = np.zeros((4, 2, 3))  # [rf, glb, dram, noc][read, write][space]
    for li, lvl in enumerate(("rf", "glb", "dram")):
        for j, x in enumerate(DATA_SPACES):
            en[li, 0, j], en[li, 1, j] = e[(lvl, x)]
    for j, x in enumerate(DATA_SPACES):
        en[3, 0, j] = en[3, 1, j] = e[("noc", x)]
    # transfer weights per level and space, and the bandwidth they divide by (0: no roof)
    wt = np.zeros((3, 3))
    bw = np.zeros(3)
    for li, lvl in enumerate(("rf", "glb", "dram")):
        w, den = transfer_weights(acc, lvl)
        if w is not None:
            wt[li] = [w[x] for x in DATA_SPACES]
            bw[li] = den
    bits = np.array([acc.word_bits[x] for x in DATA_SPACES], dtype=np.float64)
    # exact widths (cost._exact_energy): access bits and per-bit energies of [glb, dram][space]
    ab = np.zeros((2, 3))
    pb = np.zeros((2, 2, 3))
    pbe = per_bit_energies(acc)
    for li, lvl in enumerate(("glb", "dram")):
        for j, x in enumerate(DATA_SPACES):
            ab[li, j] = acc.level(lvl).access_bits_of(x) or 0.0
            pb[li, 0, j], pb[li, 1, j] = pbe[(lvl, x)]
    # scal: MAC energy, #PEs, #array dims, stationary data space of the array timing (-1: none),
    # cycles per fold, single-buffered RF, single-buffered GLB, double-buffered RF, GLB, exact
    # widths, finished outputs narrowed at the GLB
    st = acc.timing.stationary
    scal = np.array([acc.mac_energy_pj, float(acc.num_pes), float(len(acc.array)),
                     float(DATA_SPACES.index(st)) if st is not None else -1.0,
                     float(acc.timing.fold_overhead(acc.array)),
                     float(acc.rf.buffering == "single"), float(acc.glb.buffering == "single"),
                     float(acc.rf.buffering == "double"), float(acc.glb.buffering == "double"),
                     float(exact_widths(acc)), float(acc.narrow_outputs_at == "glb")])
    return {"allowed": allowed, "asize": asize, "caps": caps, "held": held, "en": en, "wt": wt, "bw": bw,
            "bits": bits, "scal": scal, "ab": ab, "pb": pb, "stores_padding": acc.stores_padding}


def layer_array(layer: Layer, stores_padding: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(lay, layf)``: bounds, stride, dilation, H, W, MACs, then the capacity input-row table
    ``[P+1, R+1]`` and input-column table ``[Q+1, S+1]`` flattened (integers); and the traffic
    row and column tables (floats: real rows averaged over the tiles; ``cost.touched_tables``)."""
    ch, cw = touched_tables(layer, stores_padding, capacity=True)
    th, tw = touched_tables(layer, stores_padding)
    head = np.array(list(layer.bounds) + [layer.stride, layer.dilation, layer.H, layer.W_in, layer.macs],
                    dtype=np.int64)
    return (np.concatenate([head, ch.ravel(), cw.ravel()]).astype(np.int64),
            np.concatenate([th.ravel(), tw.ravel()]).astype(np.float64))


# ``layer_array`` once per layer shape for ``evaluate_batch`` (a search calls it per batch;
# a few microseconds each, a tenth of a small batch's time). Never handed out, so never written.
_layer_arrays = lru_cache(maxsize=1024)(layer_array)


@njit(cache=True, inline="always", error_model="numpy")
def _tile_cap(space, g, n, k, c, p, q, r, s, lay):
    if space == 0:
        return g * k * c * r * s
    if space == 2:
        return g * n * k * p * q
    h = lay[13 + p * (lay[6] + 1) + r]
    w = lay[13 + (lay[4] + 1) * (lay[6] + 1) + q * (lay[7] + 1) + s]
    return g * n * c * h * w


@njit(cache=True, inline="always", error_model="numpy")
def _tile_io(space, g, n, k, c, p, q, r, s, lay, layf):
    if space == 0:
        return float(g * k * c * r * s)
    if space == 2:
        return float(g * n * k * p * q)
    h = layf[p * (lay[6] + 1) + r]
    w = layf[(lay[4] + 1) * (lay[6] + 1) + q * (lay[7] + 1) + s]
    return g * n * c * h * w


@njit(cache=True, inline="always", error_model="numpy")
def _io_tiles(e, lay, layf, out3):
    g = min(e[0], lay[0]); n = min(e[1], lay[1]); k = min(e[2], lay[2]); c = min(e[3], lay[3])
    p = min(e[4], lay[4]); q = min(e[5], lay[5]); r = min(e[6], lay[6]); s = min(e[7], lay[7])
    for x in range(3):
        out3[x] = _tile_io(x, g, n, k, c, p, q, r, s, lay, layf)


@njit(cache=True, inline="always", error_model="numpy")
def _slid(e, d, f, lay, layf):
    """Input words per refill when ``f`` steps of loop ``d`` slide the window (``cost._slid``)."""
    g = min(e[0], lay[0]); n = min(e[1], lay[1]); k = min(e[2], lay[2]); c = min(e[3], lay[3])
    p = min(e[4] * (f if d == 4 else 1), lay[4]); q = min(e[5] * (f if d == 5 else 1), lay[5])
    r = min(e[6] * (f if d == 6 else 1), lay[6]); s = min(e[7] * (f if d == 7 else 1), lay[7])
    return _tile_io(1, g, n, k, c, p, q, r, s, lay, layf) / f


@njit(cache=True, inline="always", error_model="numpy")
def _cap_tiles(e, lay, held, cap3):
    g = min(e[0], lay[0]); n = min(e[1], lay[1]); k = min(e[2], lay[2]); c = min(e[3], lay[3])
    p = min(e[4], lay[4]); q = min(e[5], lay[5]); r = min(e[6], lay[6]); s = min(e[7], lay[7])
    for x in range(3):
        cap3[x] = _tile_cap(x, g, n, k, c, p, q, r, s, lay) * held[x]


@njit(cache=True, inline="always", error_model="numpy")
def _capacity(li, c, fills, held, caps, bits, double):
    """Reason code 5 (RF) / 6 (GLB) when the tiles ``c`` overflow level ``li``, else 0; with
    ``double``, a refilled tile (``fills > 1``) takes two copies."""
    tot = 0.0
    for x in range(3):
        if held[li, x] == 0:
            continue
        copies = 2.0 if double and fills[x] > 1 else 1.0
        need = copies * c[x] * bits[x] / 8.0
        if caps[li, 3] < 0.0:
            if need > caps[li, x]:
                return 5 + li
        tot += need
    if caps[li, 3] >= 0.0 and tot > caps[li, 3]:
        return 5 + li
    return 0


@njit(cache=True, inline="always", error_model="numpy")
def _chunk_bits(n, size, b, a):
    """``cost.chunk_bits``: bits whose energy ``n`` transfers of ``size`` words cost."""
    if a > 0.0:
        return n * (math.ceil(size * b / a) * a)
    return n * (size * b)


@njit(cache=True, inline="always", error_model="numpy")
def _exact_energy(fill0, dist0, fill1, dist1, ft, t1, held, bits, ab, pb, narrow, ee):
    """``cost._exact_energy`` (layer on its own: nothing on chip): ``ee[0, x]`` GLB, ``ee[1, x]``
    DRAM energy of data space x."""
    for x in range(2):
        f0 = fill0[x]; f1 = fill1[x]
        g_r = 0.0; g_w = 0.0
        if held[1, x]:
            g_r = _chunk_bits(f0, ft[x], bits[x], ab[0, x])
            g_w = _chunk_bits(f1, t1[x], bits[x], ab[0, x])
        d_r = _chunk_bits(f1, t1[x], bits[x], ab[1, x])
        ee[0, x] = g_r * pb[0, 0, x] + g_w * pb[0, 1, x]
        ee[1, x] = d_r * pb[1, 0, x]
    f0 = fill0[2]; d0 = dist0[2]; f1 = fill1[2]; d1 = dist1[2]
    b = bits[2]
    bf = bits[1] if narrow else b
    a = ab[0, 2]
    g_w = 0.0; g_r = 0.0
    if held[1, 2]:
        g_w = _chunk_bits(f0 - d0, ft[2], b, a) + _chunk_bits(d0, ft[2], bf, a)
        g_r = _chunk_bits(f0 - d0, ft[2], b, a)
        g_w += _chunk_bits(f1 - d1, t1[2], b, a)
        g_r += _chunk_bits(f1 - d1, t1[2], b, a) + _chunk_bits(d1, t1[2], bf, a)
    d_r = _chunk_bits(f1 - d1, t1[2], b, ab[1, 2])
    d_w = d_r
    d_f = _chunk_bits(d1, t1[2], bits[1], ab[1, 2])
    ee[0, 2] = g_r * pb[0, 0, 2] + g_w * pb[0, 1, 2]
    ee[1, 2] = d_r * pb[1, 0, 2] + d_w * pb[1, 1, 2] + d_f * pb[1, 1, 1]


@njit(cache=True, inline="always", error_model="numpy")
def _eval_one(b, T, S, O, lay, layf, allowed, asize, caps, held, en, wt, bw, bits, scal, ab, pb, rel, out,
              work):
    # work arrays: extents (RF, array footprint, GLB, spatial only), traffic tiles of the
    # same, capacity tiles (RF, GLB), fills and distinct tiles (RF, GLB), accesses
    e0, es, e1, ev, t0, ft, t1, tv, first, c0, c1, fill0, dist0, fill1, dist1, acc, ee = work
    # ---- structure and coverage ----
    for l in range(3):
        seen = 0
        for i in range(8):
            d = O[b, l, i]
            if d < 0 or d > 7 or (seen >> d) & 1:
                out[b, 0] = 4
                return
            seen |= 1 << d
    for l in range(3):
        for d in range(8):
            if T[b, l, d] < 1 or S[b, l, d] < 1:
                out[b, 0] = 7
                return
    nA = int(scal[2])
    passes = 1
    passrel = 0  # bit x: a pass changes data space x
    for a in range(3):
        prod = 1
        arel = 0
        for d in range(8):
            f = S[b, a, d]
            if f > 1 and (a >= nA or allowed[a, d] == 0):
                out[b, 0] = 1 if a < nA else 2
                return
            prod *= f
            if f > 1:
                arel |= rel[d]
        if asize[a] < 0:
            n = (prod - asize[a] - 1) // (-asize[a])
            if n > 1:
                passes *= n
                passrel |= arel
        elif prod > asize[a]:
            out[b, 0] = 2
            return
    pes = 1
    compute = 1
    for d in range(8):
        sp = S[b, 0, d] * S[b, 1, d] * S[b, 2, d]
        tt = T[b, 0, d] * T[b, 1, d] * T[b, 2, d]
        if tt * sp < lay[d]:
            out[b, 0] = 3
            return
        pes *= sp
        compute *= tt
        e0[d] = T[b, 0, d]
        es[d] = T[b, 0, d] * sp
        e1[d] = es[d] * T[b, 1, d]
        ev[d] = sp
    compute *= passes
    # ---- capacity, one copy per tile (cheap rejection before the fills) ----
    _cap_tiles(e0, lay, held[0], c0)
    _cap_tiles(e1, lay, held[1], c1)
    for li in range(2):
        r = _capacity(li, c0 if li == 0 else c1, fill0, held, caps, bits, False)
        if r:
            out[b, 0] = r
            return
    # ---- fills: walk the DRAM loops (fills of the GLB), then the GLB loops below them (fills
    # of the RF), then the RF loops (operands of a space the RF bypasses), all three data
    # spaces at once and without data-dependent branches ----
    macs = lay[12]
    s0 = 0; s1 = 0; s2 = 0          # "a relevant loop has been seen" per space
    run1_d = -1; run1_f = 1; run2_d = -1; run2_f = 1
    f1_0 = 1; f1_1 = 1; f1_2 = 1    # fills of the GLB
    d1_0 = 1; d1_1 = 1; d1_2 = 1    # distinct GLB tiles
    all2 = 1
    for i in range(8):
        d = O[b, 2, i]
        f = T[b, 2, d]
        m = rel[d] * (f != 1)
        r0 = m & 1; r1 = (m >> 1) & 1; r2 = (m >> 2) & 1
        if r1 and not s1:  # the loop a GLB refill of inputs steps through
            run2_d = d; run2_f = f
        s0 |= r0; s1 |= r1; s2 |= r2
        fm = f - 1
        d1_0 *= 1 + fm * r0; d1_1 *= 1 + fm * r1; d1_2 *= 1 + fm * r2
        f1_0 *= 1 + fm * s0; f1_1 *= 1 + fm * s1; f1_2 *= 1 + fm * s2
        all2 *= f
    g0 = 0; g1 = 0; g2 = 0
    p0 = 1; p1 = 1; p2 = 1          # GLB-loop part of the RF fills
    dg0 = 1; dg1 = 1; dg2 = 1
    all1 = 1
    for i in range(8):
        d = O[b, 1, i]
        f = T[b, 1, d]
        m = rel[d] * (f != 1)
        r0 = m & 1; r1 = (m >> 1) & 1; r2 = (m >> 2) & 1
        if r1 and not g1:  # the loop an RF refill of inputs steps through
            run1_d = d; run1_f = f
        g0 |= r0; g1 |= r1; g2 |= r2
        fm = f - 1
        dg0 *= 1 + fm * r0; dg1 *= 1 + fm * r1; dg2 *= 1 + fm * r2
        p0 *= 1 + fm * g0; p1 *= 1 + fm * g1; p2 *= 1 + fm * g2
        all1 *= f
    fill0[0] = p0 * all2 if g0 else f1_0
    fill0[1] = p1 * all2 if g1 else f1_1
    fill0[2] = p2 * all2 if g2 else f1_2
    for x in range(3):
        if (passrel >> x) & 1:  # the pass loop, innermost above the RF, changes these tiles
            fill0[x] = all1 * all2
    dist0[0] = dg0 * d1_0; dist0[1] = dg1 * d1_1; dist0[2] = dg2 * d1_2
    fill1[0] = f1_0; fill1[1] = f1_1; fill1[2] = f1_2
    dist1[0] = d1_0; dist1[1] = d1_1; dist1[2] = d1_2
    # ---- tiles (traffic: float; capacity: integer, zero where the level bypasses) ----
    _io_tiles(e0, lay, layf, t0)
    _io_tiles(es, lay, layf, ft)
    _io_tiles(e1, lay, layf, t1)
    for x in range(3):
        first[x] = t1[x] if held[1, x] else ft[x]
    # sliding windows: a refill stepping a window loop (P Q R S: dims 4-7) moves new rows only
    if not g1:
        run1_d = run2_d; run1_f = run2_f
    if held[0, 1] and not (passrel >> 1) & 1 and run1_d >= 4 and ev[run1_d] == 1:
        t0[1] = _slid(e0, run1_d, run1_f, lay, layf)
        ft[1] = _slid(es, run1_d, run1_f, lay, layf)
    if held[1, 1] and run2_d >= 4:
        t1[1] = _slid(e1, run2_d, run2_f, lay, layf)
    if held[0, 0] == 0 or held[0, 1] == 0 or held[0, 2] == 0:
        _io_tiles(ev, lay, layf, tv)
        for x in range(3):
            if held[0, x] == 0:  # one-element operand in the PE; fills walk the RF loops too
                q = 1
                started = 0
                dr = 1
                for i in range(8):
                    d = O[b, 0, i]
                    f = T[b, 0, d]
                    rx = (rel[d] >> x) & 1
                    if f != 1 and rx:
                        started = 1
                        dr *= f
                    if started:
                        q *= f
                if started or (passrel >> x) & 1:
                    fill0[x] = q * all1 * all2
                dist0[x] = dr * dist0[x]
                t0[x] = 1.0
                ft[x] = tv[x]
                if held[1, x] == 0:
                    first[x] = tv[x]
    for x in range(3):
        if held[1, x] == 0:  # the array's footprint moves to and from DRAM directly
            t1[x] = ft[x]
            fill1[x] = fill0[x]
            dist1[x] = dist0[x]
    # ---- double buffering: a refilled tile takes two copies ----
    for li in range(2):
        if scal[7 + li] > 0.0:
            r = _capacity(li, c0 if li == 0 else c1, fill0 if li == 0 else fill1, held, caps, bits, True)
            if r:
                out[b, 0] = r
                return
    # ---- accesses: acc[x, 0..6] = rf_r rf_w gb_r gb_w dr_r dr_w noc ----
    for x in range(2):
        f0 = fill0[x]
        f1 = fill1[x]
        acc[x, 0] = macs * held[0, x]
        acc[x, 1] = f0 * t0[x] * pes * held[0, x]
        acc[x, 2] = f0 * ft[x] * held[1, x]
        acc[x, 3] = f1 * t1[x] * held[1, x]
        acc[x, 4] = f1 * t1[x]
        acc[x, 5] = 0
        acc[x, 6] = f0 * t0[x] * pes
    f0 = fill0[2]; d0 = dist0[2]; f1 = fill1[2]; d1 = dist1[2]
    acc[2, 0] = (macs + f0 * t0[2] * pes) * held[0, 2]
    acc[2, 1] = (macs + (f0 - d0) * t0[2] * pes) * held[0, 2]
    acc[2, 2] = ((f0 - d0) * ft[2] + f1 * t1[2]) * held[1, 2]
    acc[2, 3] = (f0 * ft[2] + (f1 - d1) * t1[2]) * held[1, 2]
    acc[2, 4] = (f1 - d1) * t1[2]
    acc[2, 5] = f1 * t1[2]
    acc[2, 6] = (2 * f0 - d0) * t0[2] * pes
    # final outputs (the last visit of each DRAM-side tile) leave at the activation width
    final = d1 * t1[2]
    # ---- energy (same summation order as the scalar path) ----
    c_mac = macs * scal[0]
    c_rf = 0.0; c_noc = 0.0; c_glb = 0.0; c_dram = 0.0
    exact = scal[9] > 0.0
    if exact:
        _exact_energy(fill0, dist0, fill1, dist1, ft, t1, held, bits, ab, pb, scal[10] > 0.0, ee)
    for x in range(3):
        ex = 0.0
        v = acc[x, 0] * en[0, 0, x] + acc[x, 1] * en[0, 1, x]
        c_rf += v
        ex += v
        if exact:
            v = ee[0, x]
        else:
            v = acc[x, 2] * en[1, 0, x] + acc[x, 3] * en[1, 1, x]
        c_glb += v
        ex += v
        if exact:
            v = ee[1, x]
        elif x == 2:
            v = acc[x, 4] * en[2, 0, x] + (acc[x, 5] - final) * en[2, 1, x] + final * en[2, 1, 1]
        else:
            v = acc[x, 4] * en[2, 0, x] + acc[x, 5] * en[2, 1, x]
        c_dram += v
        ex += v
        v = acc[x, 6] * en[3, 0, x]
        c_noc += v
        ex += v
        out[b, 12 + x] = ex
    energy = c_mac + c_rf + c_noc + c_glb + c_dram
    # ---- roofline: start-up + max(steady terms) + tail ----
    if scal[3] >= 0.0:
        pipeline = fill0[int(scal[3])] * passes * int(scal[4])
    else:
        pipeline = 0
    mv_rf = 0.0; mv_gb = 0.0
    gw = 0.0; dw = 0.0
    for x in range(3):
        mv_rf += (acc[x, 0] + acc[x, 1]) * wt[0, x]
        mv_gb += (acc[x, 2] + acc[x, 3]) * wt[1, x]
        gw += acc[x, 2] + acc[x, 3]
        dw += acc[x, 4] + acc[x, 5]
    if scal[10] > 0.0:  # finished outputs at the activation width from the GLB on
        mv_gb -= (dist0[2] * ft[2] + final) * (wt[1, 2] - wt[1, 1])
    mv_dr = ((acc[0, 4] + acc[0, 5]) * wt[2, 0] + (acc[1, 4] + acc[1, 5]) * wt[2, 1]
             + (acc[2, 4] + acc[2, 5] - final) * wt[2, 2] + final * wt[2, 1])
    t_rf = 0
    if bw[0] > 0.0:
        t_rf = math.ceil(mv_rf / pes * passes / bw[0])
    t_gb = 0
    if bw[1] > 0.0:  # a GLB without a bandwidth is never the roof (as the RF)
        t_gb = math.ceil(mv_gb / bw[1])
    first_in = first[0] * wt[2, 0] + first[1] * wt[2, 1]
    last_out = first[2] * wt[2, 1]
    startup = math.ceil(first_in / bw[2])
    tail = math.ceil(last_out / bw[2])
    t_dr = math.ceil((mv_dr - first_in - last_out) / bw[2])
    serial = compute + pipeline
    if scal[5] > 0.0:
        serial += t_gb
    if scal[6] > 0.0:
        serial += t_dr
    steady = serial
    busiest = serial
    bound = 0
    if bw[0] > 0.0:
        steady = max(steady, t_rf)
        if t_rf > busiest:
            busiest = t_rf
            bound = 1
    steady = max(steady, t_gb)
    if t_gb > busiest:
        busiest = t_gb
        bound = 2
    steady = max(steady, t_dr)
    if startup + t_dr + tail > busiest:
        bound = 3
    cycles = startup + steady + tail
    out[b, 0] = 0
    out[b, 1] = cycles
    out[b, 2] = energy
    out[b, 3] = energy * cycles
    out[b, 4] = macs / (cycles * scal[1])
    out[b, 5] = bound
    out[b, 6] = compute
    out[b, 7] = c_mac
    out[b, 8] = c_rf
    out[b, 9] = c_noc
    out[b, 10] = c_glb
    out[b, 11] = c_dram
    out[b, 15] = dw
    out[b, 16] = gw
    out[b, 17] = pipeline
    out[b, 18] = startup
    out[b, 19] = tail


_CHUNK = 4096


@njit(cache=True)
def _scratch():
    """Per-chunk work arrays of ``_eval_one`` (see its first line)."""
    return (np.zeros(8, np.int64), np.zeros(8, np.int64), np.zeros(8, np.int64), np.zeros(8, np.int64),
            np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3),
            np.zeros(3, np.int64), np.zeros(3, np.int64),
            np.zeros(3, np.int64), np.zeros(3, np.int64), np.zeros(3, np.int64), np.zeros(3, np.int64),
            np.zeros((3, 7)), np.zeros((2, 3)))


# Compiled without numba's reference counting (``_nrt=False``): inlining ``_eval_one`` and its
# helpers binds every array argument and work array to a new variable per candidate, and the
# atomic incref/decref pairs that come with them (about 64 per candidate, not pruned across
# the early returns) took two thirds of a valid mapping's time. Nothing here allocates; the
# caller owns every array (the work arrays come from ``_scratch``, one set per chunk).
def _without_refcounts() -> dict:
    """``_nrt=False`` where this numba knows the (private) option; otherwise nothing (slower)."""
    try:
        from numba.core.cpu import CPUTargetOptions
        return {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}
    except ImportError:
        return {}


@njit(cache=True, error_model="numpy", **_without_refcounts())
def _eval_range(lo, hi, T, S, O, lay, layf, allowed, asize, caps, held, en, wt, bw, bits, scal, ab, pb, rel,
                out, work):
    ncol = out.shape[1]
    for b in range(lo, hi):
        for j in range(ncol):  # invalid rows keep zeros past the reason; valid rows write every column
            out[b, j] = 0.0
        _eval_one(b, T, S, O, lay, layf, allowed, asize, caps, held, en, wt, bw, bits, scal, ab, pb, rel, out,
                  work)


# Parallel lowering blocks LLVM's optimizations of the loop body, so the parallel loop only
# hands out chunks and each chunk runs the serially compiled ``_eval_range``.
@njit(cache=True, parallel=True, error_model="numpy")
def _eval_batch(T, S, O, lay, layf, allowed, asize, caps, held, en, wt, bw, bits, scal, ab, pb, rel, out):
    B = T.shape[0]
    nchunks = (B + _CHUNK - 1) // _CHUNK
    for c in prange(nchunks):
        _eval_range(c * _CHUNK, min(B, (c + 1) * _CHUNK), T, S, O, lay, layf, allowed, asize, caps, held,
                    en, wt, bw, bits, scal, ab, pb, rel, out, _scratch())


@njit(cache=True, error_model="numpy")
def _eval_batch_serial(T, S, O, lay, layf, allowed, asize, caps, held, en, wt, bw, bits, scal, ab, pb, rel, out):
    _eval_range(0, T.shape[0], T, S, O, lay, layf, allowed, asize, caps, held, en, wt, bw, bits, scal, ab, pb,
                rel, out, _scratch())


# numba's thread pool (its GNU OpenMP layer) is not fork-safe: a process forked after its parent
# started the pool is killed (or hangs) at its first parallel loop. The pid that started it is
# kept, and a forked child (the board agent's worker, a forked process pool) runs the serial kernel.
_POOL_PID = None


def _pool_usable() -> bool:
    global _POOL_PID
    if _POOL_PID is None:
        _POOL_PID = os.getpid()
    return _POOL_PID == os.getpid()


def evaluate_batch(layer: Layer, acc: Accelerator | dict, T, S, O, out=None) -> np.ndarray:
    """Evaluate ``B`` mappings; returns a ``(B, NCOL)`` float64 matrix (see ``COLUMNS``).

    ``acc`` may be the dict from ``hw_arrays(acc)`` to skip its conversion in hot loops.
    Invalid rows have a non-zero ``reason`` code (``cost.REASONS``) and zeros elsewhere.
    """
    hw = acc if isinstance(acc, dict) else hw_arrays(acc)
    T = np.ascontiguousarray(T, dtype=np.int64)
    S = np.ascontiguousarray(S, dtype=np.int64)
    O = np.ascontiguousarray(O, dtype=np.int64)
    if S.shape[1] < 3:
        S = np.concatenate([S, np.ones((S.shape[0], 3 - S.shape[1], 8), np.int64)], axis=1)
    if out is None:
        out = np.empty((T.shape[0], NCOL))  # the kernel writes every row of the batch
    else:
        out[T.shape[0]:] = 0.0
    lay, layf = _layer_arrays(layer, hw["stores_padding"])
    kernel = _eval_batch if _pool_usable() else _eval_batch_serial
    kernel(T, S, O, lay, layf, hw["allowed"], hw["asize"], hw["caps"], hw["held"], hw["en"], hw["wt"],
                hw["bw"], hw["bits"], hw["scal"], hw["ab"], hw["pb"], _REL_BITS, out)
    return out


def row_reason(row) -> str:
    return REASONS[int(row[COL["reason"]])]


def bound_name(code) -> str:
    return BOUNDS[int(code)]


def set_threads(n: int) -> None:
    """Threads of the batch kernel (a forked child after the pool started runs serially anyway)."""
    if _pool_usable():
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


__all__ = ["COLUMNS", "COL", "NCOL", "COMPONENTS", "evaluate_batch", "hw_arrays", "layer_array",
           "row_reason", "bound_name", "set_threads"]
