"""Network -> nn.Module: the built module runs every MAC layer once, as counted independently."""
import io
import warnings
from functools import lru_cache

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models import Layer, Network
from models.importers import from_onnx, from_torch
from models.torch_builder import build_module, count_macs
from models.zoo import get_network, names

# small inputs keep the suite fast; U-Net's smallest valid input is 188 (16*m + 124)
SMALL = {"unet": dict(resolution=188), "bert_base_layer": dict(seq_len=32)}


@lru_cache(maxsize=None)
def built(name):
    net = get_network(name, **SMALL.get(name, dict(resolution=64)))
    module, inputs = build_module(net)
    return net, module, inputs


@pytest.mark.parametrize("name", names())
def test_flop_counter_equals_analytic_macs(name):
    """torch.utils.flop_counter counts the executed conv / addmm / bmm FLOPs; half of them are MACs."""
    net, module, inputs = built(name)
    assert count_macs(module, inputs) == net.macs


@pytest.mark.parametrize("name", names())
def test_trace_back_gives_the_same_layers(name):
    """zoo -> build_module -> from_torch: same MACs, same shape keys, same names, in order."""
    net, module, inputs = built(name)
    back = from_torch(module, tuple(inputs[0].shape), name=name)
    assert back.macs == net.macs
    assert [l.shape_key for l in back] == [l.shape_key for l in net]
    assert [l.name for l in back] == [l.name for l in net]


def test_onnx_export_runs_under_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    net, module, inputs = built("mobilenet_v3_large")
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, f, dynamo=False, input_names=["x"])
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": inputs[0].numpy()})
    with torch.no_grad():
        want = module(*inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-3, atol=1e-4)
    # nothing was constant-folded away: the exported graph still holds every layer
    back = from_onnx(onnx.load_from_string(f.getvalue()))
    assert [l.shape_key for l in back] == [l.shape_key for l in net]


def test_same_seed_same_module():
    net = get_network("resnet18", resolution=32)
    (m1, x1), (m2, x2) = build_module(net, seed=3), build_module(net, seed=3)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(m1(*x1), m2(*x2)))
    assert not torch.equal(build_module(net, seed=4)[1][0], x1[0])


def test_names_that_cannot_nest_still_build():
    """'a' is both a layer and the parent of 'a.b'; 'forward' would shadow the method: flat names are used."""
    net = Network("odd", (Layer("a", K=4, C=3, P=5, Q=5, R=3, S=3, padding=1),
                          Layer("a.b", K=4, C=4, P=5, Q=5),
                          Layer("forward", N=1, K=2, C=100, op="fc")))
    module, inputs = build_module(net)
    assert count_macs(module, inputs) == net.macs


# ---- property: random layer lists ------------------------------------------------------------------
@st.composite
def conv_layers(draw, i):
    g = draw(st.sampled_from([1, 1, 2, 4]))
    r = draw(st.integers(1, 5))
    s = draw(st.sampled_from([r, 1]))
    dil = draw(st.integers(1, 2))
    return Layer(f"conv{i}", G=g, N=draw(st.integers(1, 2)), K=draw(st.integers(1, 6)), C=draw(st.integers(1, 6)),
                 P=draw(st.integers(1, 9)), Q=draw(st.integers(1, 9)), R=r, S=s, stride=draw(st.integers(1, 3)),
                 dilation=dil, padding=draw(st.integers(0, 3)), bias=draw(st.booleans()))


@st.composite
def networks(draw):
    layers = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "conv", "fc", "matmul"]))
        if kind == "conv":
            layers.append(draw(conv_layers(i)))
        elif kind == "fc":
            layers.append(Layer.fc(f"fc{i}", draw(st.integers(1, 40)), draw(st.integers(1, 40)),
                                   batch=draw(st.integers(1, 8)), bias=draw(st.booleans())))
        else:
            layers.append(Layer.matmul(f"mm{i}", draw(st.integers(1, 9)), draw(st.integers(1, 9)),
                                       draw(st.integers(1, 9)), batch=draw(st.integers(1, 3))))
    return Network("random", tuple(layers))


@settings(max_examples=30, deadline=None)
@given(net=networks())
def test_random_networks_build_with_exact_macs(net):
    """Any layer list (odd strides, paddings larger than the kernel, mismatched neighbours) builds a
    module whose counted MACs equal the analytic total and whose traced layers have the same shapes."""
    module, inputs = build_module(net)
    assert count_macs(module, inputs) == net.macs
    back = from_torch(module, tuple(inputs[0].shape))
    # the builder caps padding at the window's reach, dilation x (kernel - 1) (same output
    # shape and MACs from a smaller input), so the traced padding may be smaller
    assert [l.bounds + (l.stride, l.dilation) for l in back] == [l.bounds + (l.stride, l.dilation) for l in net]
    assert all(b.padding <= l.padding for b, l in zip(back, net))
