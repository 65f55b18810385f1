"""The Layer loop nest and Network: sizes, halo, shape keys, parsing, validation."""
import pytest

from models import AuxOp, Layer, Network, WorkloadError


def test_conv_sizes_by_hand():
    # 3x3 conv, 64 -> 128 channels, 56x56 outputs, stride 1, pad 1: inputs 58x58 with the halo
    l = Layer.conv("c", 64, 128, 56, 3)
    assert (l.G, l.N, l.K, l.C, l.P, l.Q, l.R, l.S) == (1, 1, 128, 64, 56, 56, 3, 3)
    assert l.macs == 128 * 64 * 56 * 56 * 9
    assert l.weight_elems == 128 * 64 * 9
    assert (l.H, l.W_in) == (58, 58)
    assert l.input_elems == 64 * 58 * 58
    assert l.output_elems == 128 * 56 * 56
    assert l.bytes("W", 16) == 2 * 128 * 64 * 9 and l.bytes("W", 4) == 128 * 64 * 9 // 2


def test_strided_dilated_halo():
    # 5 outputs, stride 2, 3-tap kernel with dilation 2: rows 0..(4*2 + 2*2) -> 13 input rows
    l = Layer(name="d", P=5, Q=5, R=3, S=3, stride=2, dilation=2)
    assert l.H == 13 and l.W_in == 13


def test_depthwise_grouped_fc_matmul():
    dw = Layer.conv("dw", 32, 32, 112, 3, groups=32)
    assert (dw.G, dw.K, dw.C, dw.op) == (32, 1, 1, "dwconv")
    assert dw.macs == 32 * 112 * 112 * 9 and dw.params == 32 * 9
    g = Layer.conv("g", 64, 64, 14, 3, groups=4)
    assert (g.G, g.K, g.C, g.op) == (4, 16, 16, "conv") and g.macs == 64 * 16 * 14 * 14 * 9
    fc = Layer.fc("fc", 2048, 1000)
    assert (fc.P, fc.Q, fc.R, fc.S) == (1, 1, 1, 1) and fc.params == 2048 * 1000 + 1000
    mm = Layer.matmul("qk", 128, 64, 128, batch=12)  # [12][128,64] x [12][64,128]
    assert mm.macs == 12 * 128 * 64 * 128 and mm.params == 0


def test_shape_key_ignores_names_only():
    a, b = Layer.conv("a", 16, 16, 8, 3), Layer.conv("b", 16, 16, 8, 3)
    assert a.shape_key == b.shape_key and hash(a.shape_key) == hash(b.shape_key)
    assert Layer.conv("c", 16, 16, 8, 3, stride=2).shape_key != a.shape_key


@pytest.mark.parametrize("kw, msg", [
    ({"K": 0}, "K=0 must be a positive integer"),
    ({"P": -3}, "P=-3"),
    ({"C": 2.5}, "C=2.5"),
    ({"stride": 0}, "stride"),
    ({"padding": -1}, "padding"),
    ({"op": "conv3d"}, "unknown op"),
])
def test_validation(kw, msg):
    with pytest.raises(WorkloadError, match=msg):
        Layer(name="bad", **kw)
    with pytest.raises(WorkloadError, match="divisible"):
        Layer.conv("x", 30, 64, 8, 3, groups=4)


def test_parse():
    l = Layer.parse("K=64,C=64,P=56,Q=56,R=3,S=3,stride=2")
    assert (l.K, l.C, l.P, l.R, l.stride, l.G, l.N) == (64, 64, 56, 3, 2, 1, 1)
    for bad, msg in (("K=64,X=3", "unknown key"), ("K=sixty", "not an integer"), ("K64", "KEY=VALUE"), ("K=-1", "positive")):
        with pytest.raises(WorkloadError, match=msg):
            Layer.parse(bad)


def test_network_totals_unique_shapes_and_json():
    layers = [Layer.conv("a", 8, 8, 4, 3), Layer.conv("b", 8, 8, 4, 3), Layer.fc("f", 8, 2)]
    n = Network("n", layers, aux=[AuxOp("add", "add", 128, 128)])
    assert n.macs == 2 * 8 * 8 * 16 * 9 + 16
    assert [(l.name, c) for l, c in n.unique_shapes()] == [("a", 2), ("f", 1)]
    assert Network.from_dict(n.to_dict()) == n
    with pytest.raises(WorkloadError, match="duplicate"):
        Network("d", [layers[0], layers[0]])
    with pytest.raises(WorkloadError, match="no MAC layers"):
        Network("e", [])
