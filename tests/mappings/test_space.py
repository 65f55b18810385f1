"""MappingSpace: factor candidates, capacity-aware sampling, exhaustive enumeration, and the
reduction of loop orders to three canonical ones per level."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from accelerators import load_accelerator, preset_names
from accelerators.cost import check_mapping
from accelerators.kernel import evaluate_batch
from accelerators.spec import accelerator_from_dict
from mappings.space import (CANONICAL_ORDERS, N_ORDER_COMBOS, MappingSpace, dim_splits, divisors, spatial_candidates,
                            temporal_candidates)
from models.errors import MappingError
from models.layer import DIMS, Layer

TINY = {"name": "tiny", "word_bits": 16,
        "array": [{"size": 2, "loops": ["K"]}, {"size": 2, "loops": ["C"]}],
        "rf": {"capacity_bytes": {"W": 4, "I": 4, "O": 4}},
        "glb": {"capacity_bytes": 40, "bw_words_per_cycle": 2},
        "dram": {"bw_words_per_cycle": 1}}


def test_divisors_and_candidates():
    for n in (1, 2, 7, 12, 36, 97, 1000):
        assert list(divisors(n)) == [d for d in range(1, n + 1) if n % d == 0]
    # prime bounds get a ceil-split in time (7 = 4 x 2 with one padded iteration)
    assert temporal_candidates(7) == (1, 4, 7)
    assert temporal_candidates(8) == (1, 2, 4, 8)
    # 1000 output channels on 14 PEs: the divisors stop at 10; the balanced split uses 14 (x72)
    # (and for the PEs left when another loop takes some: 14 // 2 = 7 -> 7 x 143, 14 // 4 = 3)
    assert spatial_candidates(1000, 14) == (1, 2, 3, 4, 5, 7, 8, 10, 14)
    # 56 on 14 PEs: its divisors, plus 3 x 19 for the 3 PEs left when another loop takes 4
    assert spatial_candidates(56, 14) == (1, 2, 3, 4, 7, 8, 14)


def test_dim_splits_cover_the_bound_with_minimal_padding():
    rows = dim_splits(12, [4, None, None])
    for t0, t1, t2, s0, s1, s2 in rows:
        assert s1 == s2 == 1 and s0 <= 4
        assert t0 * t1 * t2 * s0 >= 12
    # perfect factorizations of 12 over (s0 <= 4, t0, t1, t2) are all present
    perfect = {(t0, t1, 12 // (t0 * t1 * s0), s0, 1, 1) for s0 in (1, 2, 3, 4) for t0 in divisors(12 // s0)
               for t1 in divisors(12 // (s0 * t0))}
    assert perfect <= {tuple(r) for r in rows}
    assert len({tuple(r) for r in rows}) == len(rows)


def test_size_and_exhaustive_enumeration_match_brute_force():
    """Count valid split combinations independently: every factor tuple per loop, checked
    with the cost model's own ``check_mapping``."""
    acc = accelerator_from_dict(TINY)
    layer = Layer(K=4, C=2, P=2, Q=2)
    space = MappingSpace(layer, acc)
    assert space.size() == math.prod(space.split_counts) * N_ORDER_COMBOS
    enumerated = {tuple(r) for idx in space.enumerate_splits() for r in idx}
    # brute force over all perfect factorizations (the only ones for powers of two)
    per_dim = []
    for d, b in enumerate(layer.bounds):
        opts = []
        for t0, t1, s0, s1 in itertools.product(divisors(b), repeat=4):
            if b % (t0 * t1 * s0 * s1):
                continue
            t2 = b // (t0 * t1 * s0 * s1)
            if (s0 > 1 and DIMS[d] != "K") or (s1 > 1 and DIMS[d] != "C"):
                continue
            opts.append((t0, t1, t2, s0, s1))
        per_dim.append(opts)
    valid = 0
    for combo in itertools.product(*per_dim):
        T = [[c[l] for c in combo] for l in range(3)]
        S = [[c[3] for c in combo], [c[4] for c in combo], [1] * 8]
        if check_mapping(layer, acc, T, S, [list(range(8))] * 3) == 0:
            valid += 1
            key = tuple(space.split_index(d, combo[d][:3], (combo[d][3], combo[d][4], 1)) for d in range(8))
            assert key in enumerated
    assert valid == len(enumerated) > 0
    assert space.count_valid() == N_ORDER_COMBOS * valid


@pytest.mark.parametrize("preset", preset_names())
def test_sampled_mappings_are_valid(preset):
    acc = load_accelerator(preset)
    layer = Layer(K=64, C=32, P=14, Q=14, R=3, S=3)
    space = MappingSpace(layer, acc)
    idx, oc = space.sample_indices(300, np.random.default_rng(0))
    assert len(idx) == 300
    T, S, O = space.arrays(idx, oc)
    assert all(check_mapping(layer, acc, T[i], S[i], O[i]) == 0 for i in range(0, 300, 10))
    assert (evaluate_batch(layer, acc, T, S, O)[:, 0] == 0).all()
    assert space.valid_mask(idx).all()


def test_loop_by_loop_sampler_is_valid_under_tight_buffers():
    acc = accelerator_from_dict(TINY)
    layer = Layer(K=8, C=8, P=4, Q=4, R=3, S=3)
    space = MappingSpace(layer, acc)
    idx, oc = space._build_indices(200, np.random.default_rng(1))
    T, S, O = space.arrays(idx, oc)
    assert all(check_mapping(layer, acc, T[i], S[i], O[i]) == 0 for i in range(200))


def test_nothing_fits_names_layer_and_level():
    d = dict(TINY, rf={"capacity_bytes": {"W": 1, "I": 4, "O": 4}})
    space = MappingSpace(Layer(name="conv3", K=4), accelerator_from_dict(d))
    with pytest.raises(MappingError, match="conv3.*register file"):
        space.sample_indices(10, np.random.default_rng(0))


def _perm_orders(rng, n):
    return np.argsort(rng.random((n, 3, 8)), axis=2).astype(np.int64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(preset=st.sampled_from(preset_names()), K=st.integers(1, 48), C=st.integers(1, 48),
       P=st.integers(1, 14), R=st.sampled_from([1, 3, 5]), G=st.sampled_from([1, 1, 8]),
       stride=st.sampled_from([1, 2]), seed=st.integers(0, 10_000))
def test_canonical_orders_are_never_beaten_by_any_order(preset, K, C, P, R, G, stride, seed):
    """For the same factors, the best of the 8 x 8 canonical order combinations is at least as
    good as any permutation at every level (energy, cycles and EDP)."""
    acc = load_accelerator(preset)
    layer = Layer(G=G, K=K, C=C, P=P, Q=P, R=R, S=R, stride=stride)
    space = MappingSpace(layer, acc)
    rng = np.random.default_rng(seed)
    idx, _ = space.sample_indices(20, rng)
    canon = evaluate_batch(layer, acc, *space.arrays_all_orders(idx)).reshape(20, N_ORDER_COMBOS, -1)
    n_perm = 30
    T, S, _ = space.arrays(idx, np.zeros(20, int))
    Tr, Sr = np.repeat(T, n_perm, axis=0), np.repeat(S, n_perm, axis=0)
    rand = evaluate_batch(layer, acc, Tr, Sr, _perm_orders(rng, 20 * n_perm)).reshape(20, n_perm, -1)
    assert (canon[:, :, 0] == 0).all() and (rand[:, :, 0] == 0).all()
    for col in (1, 2, 3):  # cycles, energy, EDP
        assert (canon[:, :, col].min(axis=1) <= rand[:, :, col].min(axis=1) * (1 + 1e-12)).all()


def test_canonical_orders_lead_with_the_irrelevant_loops():
    text = ["".join(DIMS[d] for d in o) for o in CANONICAL_ORDERS]
    lead = {"W": "NPQ", "I": "K", "O": "CRS"}
    stationary = [x for x in "WIO" for t in text if set(t[:len(lead[x])]) == set(lead[x])]
    assert sorted(stationary) == sorted("WW" + "IIII" + "OO")
    # the first input loop after the stationary space's irrelevant ones is a window loop
    for t in text:
        rest = t[1:] if t[0] == "K" else t
        assert rest[0] in "PQRS"


def test_indices_of_round_trip():
    acc = load_accelerator("eyeriss")
    layer = Layer(K=32, C=16, P=7, Q=7, R=3, S=3)
    space = MappingSpace(layer, acc)
    idx, oc = space.sample_indices(50, np.random.default_rng(3))
    T, S, O = space.arrays(idx, oc)
    for i in range(50):
        j, c = space.indices_of(T[i], S[i], O[i])
        assert (j == idx[i]).all() and c == oc[i]
