"""Invariants of the cost model over random layers, accelerators and mappings (hypothesis)."""
import math
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accelerators import accelerator_from_dict
from accelerators.cost import compulsory_words, evaluate_mapping, lower_bound
from accelerators.kernel import COL, evaluate_batch
from models import DIMS, Layer

SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def layers(draw):
    dims = {d: draw(st.integers(1, hi)) for d, hi in zip(DIMS, (2, 2, 12, 12, 9, 9, 3, 3))}
    return Layer(name="h", stride=draw(st.integers(1, 2)), dilation=draw(st.integers(1, 2)),
                 padding=draw(st.integers(0, 2)), **dims)


@st.composite
def accelerators_(draw):
    nd = draw(st.integers(1, 3))
    array = [{"size": draw(st.integers(1, 8)),
              "loops": draw(st.lists(st.sampled_from(DIMS), min_size=1, max_size=3, unique=True)),
              "fused": draw(st.booleans())}
             for _ in range(nd)]
    kind = draw(st.sampled_from(["ideal", "systolic", "multicast"]))
    timing = {"kind": kind}
    if kind != "ideal":
        timing.update(stationary=draw(st.sampled_from("WIO")), setup_cycles=draw(st.integers(0, 5)))
    split = draw(st.booleans())
    rf_bypass = draw(st.lists(st.sampled_from("WIO"), max_size=2, unique=True))
    glb_bypass = draw(st.lists(st.sampled_from("WIO"), max_size=2, unique=True))
    rf_cap = ({x: draw(st.integers(64, 4096)) for x in "WIO" if x not in rf_bypass} if split
              else draw(st.integers(64, 8192)))

    def bandwidth(words):  # in words, or in bits per cycle (each word then weighs its width)
        if words is not None and draw(st.booleans()):
            return {"bw_bits_per_cycle": words * draw(st.sampled_from([4, 8, 16, 24]))}
        return {"bw_words_per_cycle": words}

    def access(choices):  # one physical access width, per data space, or none
        if draw(st.booleans()):
            return {}
        if draw(st.booleans()):
            return {"access_bits": draw(st.sampled_from(choices))}
        return {"access_bits": {x: draw(st.sampled_from(choices)) for x in "WIO" if x not in glb_bypass}}

    narrow = "dram" if "O" in glb_bypass else draw(st.sampled_from(["dram", "glb"]))
    return accelerator_from_dict({
        "name": "rand", "clock_mhz": 200, "narrow_outputs_at": narrow,
        "word_bits": draw(st.sampled_from([8, 16, {"W": 8, "I": 8, "O": 32}, {"W": 4, "I": 8, "O": 24}])),
        "array": array, "array_timing": timing, "stores_padding": draw(st.booleans()),
        "rf": {"capacity_bytes": rf_cap, **bandwidth(draw(st.sampled_from([None, 2, 8]))),
               "bypass": rf_bypass, "buffering": draw(st.sampled_from(["double", "single"]))},
        "glb": {"capacity_bytes": draw(st.integers(4096, 1 << 20)), **bandwidth(draw(st.sampled_from([1, 4, 32]))),
                "bypass": glb_bypass, "buffering": draw(st.sampled_from(["double", "single"])),
                **access([8, 24, 64, 256])},
        "dram": {**bandwidth(draw(st.sampled_from([0.5, 2, 16]))), **access([64, 512])},
    })


def _scaled_bandwidth(level, factor):
    if level.bw_bits_per_cycle is not None:
        return replace(level, bw_bits_per_cycle=level.bw_bits_per_cycle * factor)
    return replace(level, bw_words_per_cycle=level.bw_words_per_cycle * factor)


def _split(draw, n, parts):
    """Split bound n into `parts` factors whose product covers n (sometimes imperfectly)."""
    out = []
    rem = n
    for _ in range(parts - 1):
        divs = [d for d in range(1, rem + 1) if rem % d == 0]
        f = draw(st.sampled_from(divs)) if draw(st.booleans()) or rem == 1 else draw(st.integers(1, rem))
        out.append(f)
        rem = -(-rem // f)
    out.append(rem)
    return out


@st.composite
def mapped(draw):
    layer, acc = draw(layers()), draw(accelerators_())
    T = np.ones((3, 8), np.int64)
    S = np.ones((3, 8), np.int64)
    room = [a.size for a in acc.array]
    for d, b in enumerate(layer.bounds):
        rem = b
        for a, ad in enumerate(acc.array):
            if DIMS[d] in ad.loops and (room[a] > 1 or ad.fused) and draw(st.booleans()):
                f = draw(st.integers(1, rem if ad.fused else min(room[a], rem)))  # fused: any product
                S[a, d] = f
                room[a] = max(1, room[a] // f)
                rem = -(-rem // f)
        T[:, d] = _split(draw, rem, 3)
    O = np.array([draw(st.permutations(range(8))) for _ in range(3)])
    return layer, acc, T, S, O


@SETTINGS
@given(mapped())
def test_invariants(case):
    layer, acc, T, S, O = case
    c = evaluate_mapping(layer, acc, T, S, O)
    row = evaluate_batch(layer, acc, T[None], S[None], O[None])[0]
    # scalar path == batch path, exactly
    event("valid" if c.valid else "invalid: " + c.reason)
    if not c.valid:
        assert row[COL["reason"]] != 0
        return
    assert row[COL["reason"]] == 0
    assert row[COL["cycles"]] == c.cycles
    assert row[COL["energy_pj"]] == c.energy_pj
    assert row[COL["edp"]] == c.edp
    assert row[COL["utilization"]] == c.utilization
    for i, comp in enumerate(("mac", "rf", "noc", "glb", "dram")):
        assert row[COL["e_" + comp]] == c.energy_by_component[comp]
    for k in ("compute_cycles", "pipeline_cycles", "startup_cycles", "tail_cycles"):
        assert row[COL[k]] == getattr(c, k)
    assert c.cycles >= c.startup_cycles + c.compute_cycles + c.pipeline_cycles + c.tail_cycles
    # an array that pays per fold is never faster than the ideal one on the same mapping
    ideal = evaluate_mapping(layer, replace(acc, timing=replace(acc.timing, kind="ideal")), T, S, O)
    assert ideal.cycles <= c.cycles and ideal.pipeline_cycles == 0
    per_fold = acc.timing.fold_overhead(acc.array)
    assert c.pipeline_cycles % max(per_fold, 1) == 0 and (per_fold > 0 or c.pipeline_cycles == 0)
    # no NaN, nothing negative
    vals = [c.cycles, c.energy_pj, c.edp, c.utilization] + list(c.energy_by_component.values())
    vals += [v for lvl in c.accesses.values() for x in lvl.values() for v in x.values()]
    assert all(math.isfinite(v) and v >= 0 for v in vals)
    assert 0 < c.utilization <= 1
    # never below the lower bound
    lb = lower_bound(layer, acc)
    assert c.cycles >= math.ceil(layer.macs / acc.num_pes)
    assert c.cycles >= lb.cycles
    dram = {x: c.accesses["dram"][x]["reads"] + c.accesses["dram"][x]["writes"] for x in "WIO"}
    comp = compulsory_words(layer, acc.stores_padding)
    assert all(dram[x] >= comp[x] * (1 - 1e-12) for x in "WIO")
    assert c.energy_pj >= lb.energy_pj * (1 - 1e-12)
    assert c.edp >= lb.edp * (1 - 1e-12)
    # more bandwidth never increases latency for the same mapping
    faster = replace(acc, glb=_scaled_bandwidth(acc.glb, 2), dram=_scaled_bandwidth(acc.dram, 3))
    c2 = evaluate_mapping(layer, faster, T, S, O)
    assert c2.cycles <= c.cycles
    assert c2.energy_pj == c.energy_pj
    # a level that does not hold a data space sees none of its accesses
    for lvl in ("rf", "glb"):
        for x in acc.level(lvl).bypass:
            assert c.accesses[lvl][x] == {"reads": 0, "writes": 0}
    # single buffering: the same mapping still fits (one copy per tile) and is never faster
    single = replace(acc, rf=replace(acc.rf, buffering="single"), glb=replace(acc.glb, buffering="single"))
    c3 = evaluate_mapping(layer, single, T, S, O)
    assert c3.valid and c3.cycles >= c.cycles and c3.energy_pj == c.energy_pj
    # whole accesses never cost less energy than the bits moved, and change no latency
    per_word = replace(acc, glb=replace(acc.glb, access_bits=None), dram=replace(acc.dram, access_bits=None))
    c4 = evaluate_mapping(layer, per_word, T, S, O)
    assert c4.energy_pj <= c.energy_pj * (1 + 1e-12) and c4.cycles == c.cycles
    # finished outputs narrowed from the GLB on never cost more energy or time than off chip only
    if acc.narrow_outputs_at == "glb":
        late = evaluate_mapping(layer, replace(acc, narrow_outputs_at="dram"), T, S, O)
        assert c.energy_pj <= late.energy_pj * (1 + 1e-12) and c.cycles <= late.cycles
    # storing the zero padding never moves fewer words
    if not acc.stores_padding:
        stored = evaluate_mapping(layer, replace(acc, stores_padding=True), T, S, O)
        if stored.valid:
            for lvl in ("glb", "dram"):
                assert (stored.accesses[lvl]["I"]["reads"] >= c.accesses[lvl]["I"]["reads"] * (1 - 1e-12))
            if layer.padding == 0:
                assert stored.energy_pj == c.energy_pj and stored.cycles == c.cycles


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(mapped())
def test_bigger_buffers_never_invalidate_a_valid_mapping(case):
    layer, acc, T, S, O = case
    c = evaluate_mapping(layer, acc, T, S, O)
    if not c.valid:
        return
    bigger = replace(acc, glb=replace(acc.glb, capacity_bytes=acc.glb.capacity_bytes * 4))
    assert evaluate_mapping(layer, bigger, T, S, O).valid
