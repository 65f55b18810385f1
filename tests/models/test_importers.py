"""Importers: torch.nn.Module and ONNX files to Network, and the workload loader."""
import io
import json
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from models import Layer, Network, WorkloadError
from models.assets import have_asset
from models.importers import from_onnx, from_torch, load_workload
from models.torch_builder import count_macs
from models.zoo import get_network


class Small(nn.Module):
    """Conv, dilated depthwise, pointwise, grouped strided conv, per-token Linear, two matmuls, head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.dw = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.grouped = nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=4)
        self.proj = nn.Linear(32, 24)
        self.head = nn.Linear(24, 10)

    def forward(self, x):
        y = self.grouped(self.pw(torch.relu(self.dw(self.stem(x)))))   # [B, 32, 8, 8]
        t = y.flatten(2).transpose(1, 2)                                # [B, 64 tokens, 32]
        q = self.proj(t)                                                # [B, 64, 24]
        a = torch.matmul(q, q.transpose(1, 2))                          # [B, 64, 64]
        o = a.softmax(-1) @ q                                           # [B, 64, 24]
        return self.head(o.mean(1))                                     # [B, 10]


def small_expected(b: int) -> list[Layer]:
    """Worked out by hand for a [b, 3, 32, 32] input."""
    return [
        Layer("stem", G=1, N=b, K=16, C=3, P=16, Q=16, R=3, S=3, stride=2, padding=1),
        Layer("dw", G=16, N=b, K=1, C=1, P=16, Q=16, R=3, S=3, dilation=2, padding=2, op="dwconv", bias=True),
        Layer("pw", G=1, N=b, K=32, C=16, P=16, Q=16, bias=True),
        Layer("grouped", G=4, N=b, K=8, C=8, P=8, Q=8, R=3, S=3, stride=2, padding=1, bias=True),
        Layer("proj", N=b * 64, K=24, C=32, op="fc", bias=True),
        Layer("matmul", G=b, N=64, C=24, K=64, op="matmul"),
        Layer("matmul_1", G=b, N=64, C=64, K=24, op="matmul"),
        Layer("head", N=b, K=10, C=24, op="fc", bias=True),
    ]


def _key(l: Layer):
    return (l.op, l.shape_key, l.bias, l.padding)


def _export(module, args, **kw) -> onnx.ModelProto:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, f, dynamo=False, **kw)
    return onnx.load_from_string(f.getvalue())


def test_from_torch_small_module_exact_layers():
    net = from_torch(Small(), (2, 3, 32, 32), name="small")
    assert list(net.layers) == small_expected(2)
    assert net.resolution == 32
    # the hand count agrees with PyTorch's own FLOP counter
    assert net.macs == count_macs(Small(), (torch.zeros(2, 3, 32, 32),))


def test_from_onnx_gives_the_same_layers_as_from_torch():
    model = _export(Small().eval(), (torch.zeros(2, 3, 32, 32),))
    net = from_onnx(model, name="small")
    exp = small_expected(2)
    assert [_key(l) for l in net] == [_key(l) for l in exp]
    # module layers keep their names through the exported weight names
    assert [l.name for l in net if l.op != "matmul"] == [l.name for l in exp if l.op != "matmul"]


def test_from_onnx_dynamic_batch_is_fixed_to_one():
    model = _export(Small().eval(), (torch.zeros(2, 3, 32, 32),), input_names=["x"],
                    dynamic_axes={"x": {0: "batch"}})
    net = from_onnx(model)
    assert [_key(l) for l in net] == [_key(l) for l in small_expected(1)]
    assert net.meta["fixed_dynamic_inputs"] == ["x"]


def test_from_onnx_hand_built_graph(tmp_path):
    """Conv (pads 1, stride 2, group 2) -> Flatten -> Gemm, built with onnx.helper; MACs by hand."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 2, 3, 3], np.zeros(8 * 2 * 9, np.float32))
    fc = helper.make_tensor("fc", TensorProto.FLOAT, [10, 8 * 4 * 4], np.zeros(10 * 128, np.float32))
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2], group=2,
                              kernel_shape=[3, 3]),
             helper.make_node("Flatten", ["y"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc"], ["z"], name="gemm", transB=1)]
    graph = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 10])], [w, fc])
    path = tmp_path / "hand.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    net = load_workload(str(path))
    conv, gemm = net.layers
    assert (conv.G, conv.K, conv.C, conv.P, conv.Q, conv.R, conv.stride, conv.padding) == (2, 4, 2, 4, 4, 3, 2, 1)
    assert conv.macs == 8 * 2 * 9 * 4 * 4            # out channels x in/group x kernel x output pixels
    assert (gemm.op, gemm.N, gemm.C, gemm.K, gemm.bias) == ("fc", 1, 128, 10, False)
    assert net.name == "hand" and net.resolution == 8


def test_conv_transpose_kernel_equals_stride_is_a_1x1_conv():
    """A 2x2 stride-2 transposed conv (U-Net up-conv) = 1x1 conv to 4*C_out on the coarse grid."""
    m = nn.Sequential(nn.ConvTranspose2d(16, 8, 2, stride=2))
    expected = Layer("0", N=1, K=32, C=16, P=5, Q=5, bias=True)
    assert list(from_torch(m, (1, 16, 5, 5)).layers) == [expected]
    net = from_onnx(_export(m.eval(), (torch.zeros(1, 16, 5, 5),)))
    assert [_key(l) for l in net] == [_key(expected)]
    # the same count PyTorch's FLOP counter makes for the real transposed conv
    assert expected.macs == count_macs(m, (torch.zeros(1, 16, 5, 5),))


def test_sdpa_becomes_two_matmuls():
    class Attn(nn.Module):
        def forward(self, q):
            return F.scaled_dot_product_attention(q, q, q)

    net = from_torch(Attn(), (2, 4, 16, 8))  # batch 2, 4 heads, 16 tokens, head dim 8
    assert [(l.op, l.G, l.N, l.C, l.K) for l in net] == [("matmul", 8, 16, 8, 16), ("matmul", 8, 16, 16, 8)]


@pytest.mark.parametrize("module,shape,word", [
    (nn.Sequential(nn.Conv3d(2, 4, 3)), (1, 2, 6, 6, 6), "Conv3d"),
    (nn.Sequential(nn.ConvTranspose2d(4, 4, 3, stride=2)), (1, 4, 5, 5), "ConvTranspose2d"),
    (nn.Sequential(nn.LSTM(8, 8)), (3, 1, 8), "LSTM"),
])
def test_from_torch_unsupported_operator(module, shape, word):
    with pytest.raises(WorkloadError, match=word):
        from_torch(module, shape)


def test_from_torch_unsupported_function_and_attention_module():
    class Ein(nn.Module):
        def forward(self, x):
            return torch.einsum("bij,bjk->bik", x, x)

    with pytest.raises(WorkloadError, match="einsum"):
        from_torch(Ein(), (1, 4, 4))

    class MHA(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x)[0]

    with pytest.raises(WorkloadError, match="MultiheadAttention"):
        from_torch(MHA(), (1, 5, 16))


def test_from_torch_bad_input():
    with pytest.raises(WorkloadError, match="input shape"):
        from_torch(Small(), (2, 3, 32, 0))
    with pytest.raises(WorkloadError, match="cannot run"):
        from_torch(Small(), (2, 5, 32, 32))  # 5 channels into a 3-channel stem
    with pytest.raises(WorkloadError):
        from_torch("not a module", (1, 3))


def test_from_onnx_unsupported_operators():
    m3 = nn.Sequential(nn.Conv3d(2, 4, 3))
    with pytest.raises(WorkloadError, match="Conv.*3-D"):
        from_onnx(_export(m3.eval(), (torch.zeros(1, 2, 6, 6, 6),)))
    mt = nn.Sequential(nn.ConvTranspose2d(4, 4, 3, stride=2))
    with pytest.raises(WorkloadError, match="ConvTranspose"):
        from_onnx(_export(mt.eval(), (torch.zeros(1, 4, 5, 5),)))
    node = helper.make_node("Einsum", ["a", "a"], ["b"], equation="ij,jk->ik", name="ein")
    vi = helper.make_tensor_value_info
    g = helper.make_graph([node], "e", [vi("a", TensorProto.FLOAT, [4, 4])], [vi("b", TensorProto.FLOAT, [4, 4])])
    with pytest.raises(WorkloadError, match="Einsum"):
        from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_malformed_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage, not a protobuf \xff\xfe")
    with pytest.raises(WorkloadError, match="bad.onnx"):
        from_onnx(str(bad))
    good = _export(Small().eval(), (torch.zeros(1, 3, 32, 32),)).SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 3])
    with pytest.raises(WorkloadError):
        load_workload(str(tmp_path / "cut.onnx"))
    with pytest.raises(WorkloadError, match="not found"):
        from_onnx(str(tmp_path / "missing.onnx"))


# ---- load_workload ------------------------------------------------------------------------------
def test_load_workload_zoo_names_and_network_json(tmp_path):
    assert load_workload("ResNet-18").macs == get_network("resnet18").macs
    assert load_workload("mobilenet_v2", resolution=160).resolution == 160
    net = get_network("squeezenet1_1", resolution=96)
    path = tmp_path / "sq.json"
    path.write_text(json.dumps(net.to_dict()))
    back = load_workload(str(path))
    assert back.layers == net.layers and back.aux == net.aux and back.resolution == 96
    assert load_workload(str(path), resolution=96).macs == net.macs
    with pytest.raises(WorkloadError, match="input size"):
        load_workload(str(path), resolution=224)


@pytest.mark.parametrize("text,match", [
    ("{not json", "malformed JSON"),
    ('{"name": "x", "layers": "abc"}', "layers: must be a list"),
    ('{"name": "x", "layers": [{"name": "a", "dims": {"K": 0}}]}',
     r"layers\[0\]\.dims\.K: must be a positive integer up to 1,048,576 \(got 0\)"),
    ('{"name": "x", "layers": [{"name": "a", "dims": {"C": -4}}]}', r"dims\.C: .*\(got -4\)"),
    ('{"name": "x", "layers": [{"name": "a", "dims": {"Z": 3}}]}', "unknown field 'Z'"),
    ('{"something": "else"}', "neither"),
    ("[1, 2]", "neither"),
])
def test_load_workload_bad_json(tmp_path, text, match):
    path = tmp_path / "net.json"
    path.write_text(text)
    with pytest.raises(WorkloadError, match=match):
        load_workload(str(path))


def test_load_workload_unknown_and_missing():
    with pytest.raises(WorkloadError, match="unknown network 'lenet'.*resnet50"):
        load_workload("lenet")
    with pytest.raises(WorkloadError, match="file not found"):
        load_workload("no/such/file.json")


def _netconfig_available() -> bool:
    try:
        from models.netconfig import network_from_net_config  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _netconfig_available(), reason="models.netconfig (net.config reader) not available")
@pytest.mark.skipif(not have_asset("proxylessnas/proxyless_mobile.config"),
                    reason="needs proxylessnas/proxyless_mobile.config: set CODESIGN_ASSETS to the shared data folder")
def test_load_workload_net_config():
    from models.assets import asset_path
    from models.netconfig import network_from_net_config
    path = asset_path("proxylessnas/proxyless_mobile.config")
    net = load_workload(str(path), resolution=224)
    with open(path) as f:
        direct = network_from_net_config(json.load(f), resolution=224, name=net.name)
    assert isinstance(net, Network) and net.layers == direct.layers


# ---- property: any single conv imports with the MACs PyTorch counts --------------------------------
@settings(max_examples=20, deadline=None)
@given(c=st.integers(1, 4), k=st.integers(1, 4), g=st.sampled_from([1, 2]), kernel=st.integers(1, 5),
       stride=st.integers(1, 3), dilation=st.integers(1, 2), pad=st.integers(0, 2), size=st.integers(9, 16),
       batch=st.integers(1, 2))
def test_conv_import_matches_flop_counter(c, k, g, kernel, stride, dilation, pad, size, batch):
    conv = nn.Sequential(nn.Conv2d(c * g, k * g, kernel, stride=stride, dilation=dilation, padding=pad, groups=g))
    net = from_torch(conv, (batch, c * g, size, size))
    (layer,) = net.layers
    out = conv(torch.zeros(batch, c * g, size, size))
    assert (layer.G, layer.N, layer.K, layer.C) == (g, batch, k, c)
    assert (layer.P, layer.Q) == tuple(out.shape[2:])
    assert layer.macs == count_macs(conv, (torch.zeros(batch, c * g, size, size),))


@pytest.mark.skipif(not _netconfig_available(), reason="models.netconfig (net.config reader) not available")
@pytest.mark.skipif(not have_asset("ofa/specialized/flops-595M_top1-80.0_finetune-75/net.config"),
                    reason="needs ofa/specialized/: set CODESIGN_ASSETS to the shared data folder")
def test_net_config_uses_run_config_image_size():
    """The OFA authors named this sub-network "flops-595M"; its run.config evaluates it at 236x236."""
    from models.assets import asset_path
    path = asset_path("ofa/specialized/flops-595M_top1-80.0_finetune-75/net.config")
    net = load_workload(str(path))
    assert net.resolution == 236 and net.name == "flops-595M_top1-80.0_finetune-75"
    assert abs(net.macs - 595e6) / 595e6 < 0.001
    assert load_workload(str(path), resolution=224).resolution == 224
