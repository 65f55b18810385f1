"""The NAAS encoding: decode(encode(m)) == m, and any vector decodes to a structurally valid
mapping of any layer shape."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from accelerators import load_accelerator, preset_names
from accelerators.cost import check_mapping
from mappings.encoding import ENCODING_LENGTH, decode, decode_batch, encode, ratio_index
from mappings.mapping import Mapping
from mappings.space import MappingSpace
from models.layer import DIMS, Layer

layers = st.builds(
    lambda G, K, C, P, R, stride: Layer(G=G, K=K, C=C, P=P, Q=max(1, P - 1), R=R, S=R, stride=stride),
    G=st.sampled_from([1, 1, 1, 16]), K=st.integers(1, 300), C=st.integers(1, 300), P=st.integers(1, 60),
    R=st.sampled_from([1, 3, 5, 7]), stride=st.sampled_from([1, 2]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=layers, preset=st.sampled_from(preset_names()), seed=st.integers(0, 2**31))
def test_decode_of_encode_is_identity(layer, preset, seed):
    acc = load_accelerator(preset)
    space = MappingSpace(layer, acc)
    idx, oc = space.sample_indices(5, np.random.default_rng(seed))
    T, S, O = space.arrays(idx, oc)
    # also arbitrary (non-canonical) loop orders
    O = np.argsort(np.random.default_rng(seed + 1).random((5, 3, 8)), axis=2)
    for i in range(5):
        m = Mapping.from_arrays(T[i], S[i], O[i])
        v = encode(m, layer, acc)
        assert v.shape == (ENCODING_LENGTH,) and (v >= 0).all() and (v <= 1).all()
        assert decode(v, layer, acc) == m


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=layers, preset=st.sampled_from(preset_names()), seed=st.integers(0, 2**31))
def test_any_vector_decodes_to_a_covering_mapping_within_the_array(layer, preset, seed):
    """Capacity may overflow (the optimizer rejects those), nothing else may be wrong."""
    acc = load_accelerator(preset)
    V = np.random.default_rng(seed).random((16, ENCODING_LENGTH)) * 1.2 - 0.1  # out-of-range values clip
    T, S, O = decode_batch(V, layer, acc)
    for i in range(16):
        assert check_mapping(layer, acc, T[i], S[i], O[i]) in (0, 5, 6)
        cover = T[i].prod(axis=0) * S[i].prod(axis=0)
        assert (cover >= np.array(layer.bounds)).all()


def test_ratios_adapt_to_the_layer_shape():
    """One vector: 'half of the remaining extent in log terms' for K in the register file."""
    acc = load_accelerator("shidiannao")  # P x Q array: K is only temporal
    v = np.zeros(ENCODING_LENGTH)
    v[ratio_index(DIMS.index("K"), 3)] = 0.5
    for K, expect in ((16, 4), (64, 8), (256, 16)):
        m = decode(v, Layer(K=K), acc)
        assert m.temporal[0][DIMS.index("K")] == expect
        assert m.temporal[2][DIMS.index("K")] == K // expect
    # the highest importance is innermost
    v[8 + DIMS.index("Q")] = 1.0
    assert decode(v, Layer(K=4, Q=4), acc).order[1][0] == DIMS.index("Q")
