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
    return Layer(name="h", stride=draw(st.integers(1, 2)), dilation=draw(st.integers(1, 2)), **dims)


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
    rf_cap = ({x: draw(st.integers(64, 4096)) for x in "WIO"} if split else draw(st.integers(64, 8192)))
    return accelerator_from_dict({
        "name": "rand", "clock_mhz": 200, "word_bits": draw(st.sampled_from([8, 16])),
        "array": array, "array_timing": timing,
        "rf": {"capacity_bytes": rf_cap, "bw_words_per_cycle": draw(st.sampled_from([None, 2, 8]))},
        "glb": {"capacity_bytes": draw(st.integers(4096, 1 << 20)), "bw_words_per_cycle": draw(st.sampled_from([1, 4, 32]))},
        "dram": {"bw_words_per_cycle": draw(st.sampled_from([0.5, 2, 16]))},
    })


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
    comp = compulsory_words(layer)
    assert all(dram[x] >= comp[x] for x in "WIO")
    assert c.energy_pj >= lb.energy_pj * (1 - 1e-12)
    assert c.edp >= lb.edp * (1 - 1e-12)
    # more bandwidth never increases latency for the same mapping
    faster = replace(acc, glb=replace(acc.glb, bw_words_per_cycle=acc.glb.bw_words_per_cycle * 2),
                     dram=replace(acc.dram, bw_words_per_cycle=acc.dram.bw_words_per_cycle * 3))
    c2 = evaluate_mapping(layer, faster, T, S, O)
    assert c2.cycles <= c.cycles
    assert c2.energy_pj == c.energy_pj


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(mapped())
def test_bigger_buffers_never_invalidate_a_valid_mapping(case):
    layer, acc, T, S, O = case
    c = evaluate_mapping(layer, acc, T, S, O)
    if not c.valid:
        return
    bigger = replace(acc, glb=replace(acc.glb, capacity_bytes=acc.glb.capacity_bytes * 4))
    assert evaluate_mapping(layer, bigger, T, S, O).valid
