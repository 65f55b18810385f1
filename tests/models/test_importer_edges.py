"""Graph edges of imported networks: who reads whom, recorded by the torch and ONNX importers."""
import io
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper

from accelerators.schedule import flow
from models import Network
from models.importers import from_onnx, from_torch
from models.zoo import get_network


def _export(module, args, **kw) -> onnx.ModelProto:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, f, dynamo=False, **kw)
    return onnx.load_from_string(f.getvalue())


def _round_trip(net: Network) -> None:
    assert Network.from_dict(net.to_dict()).inputs == net.inputs


def _index(net: Network, name: str) -> int:
    return [l.name for l in net.layers].index(name)


def _canon(net: Network, layers_by_position: bool = False) -> dict:
    """``net.inputs`` with operators renamed by kind and rank (``add3``), and layers by position
    (``L7``) when ``layers_by_position``: importers and the zoo name operators differently."""
    rename = {"input": "input"}
    for i, l in enumerate(net.layers):
        rename[l.name] = f"L{i}" if layers_by_position else l.name
    seen = {}
    for a in net.aux:
        seen[a.kind] = seen.get(a.kind, 0) + 1
        rename[a.name] = f"{a.kind}{seen[a.kind]}"
    return {rename[n]: tuple(rename[x] for x in xs) for n, xs in net.inputs.items()}


# ---- a residual block, by hand --------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + x
        return self.relu(out)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Block(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = self.pool(self.block(x))
        return self.fc(torch.flatten(x, 1))


def _check_residual_flow(net: Network, add: str) -> None:
    stem, c1, c2 = _index(net, "stem"), _index(net, "block.conv1"), _index(net, "block.conv2")
    fl = flow(net)
    assert fl.skips[c2] == (stem,)          # the add is fused into conv2, the skip is the stem output
    assert fl.fused_aux == {add: c2}
    assert fl.joins[c2] and fl.joins[c1]    # stem -> conv1 -> conv2 may share a stack
    assert not fl.joins[_index(net, "fc")]  # behind the pool


def test_torch_residual_block_edges():
    net = from_torch(Residual(), (1, 3, 16, 16))
    assert net.inputs == {
        "stem": ("input",),
        "block.conv1": ("stem",),
        "block.conv2": ("block.conv1",),
        "block.add": ("block.conv2", "stem"),
        "pool": ("block.add",),
        "fc": ("pool",),
    }
    _round_trip(net)
    _check_residual_flow(net, "block.add")


def test_torch_skip_written_first_still_gives_the_main_branch_first():
    class SkipFirst(Block):
        def forward(self, x):
            return x + self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    class Net(Residual):
        def __init__(self):
            super().__init__()
            self.block = SkipFirst(8)

    net = from_torch(Net(), (1, 3, 16, 16))
    assert net.inputs["block.add"] == ("block.conv2", "stem")
    _check_residual_flow(net, "block.add")


def test_onnx_export_of_the_residual_block():
    net = from_onnx(_export(Residual(), (torch.zeros(1, 3, 16, 16),)))
    assert net.inputs == {
        "stem": ("input",),
        "block.conv1": ("stem",),
        "block.conv2": ("block.conv1",),
        "/block/Add": ("block.conv2", "stem"),
        "/pool/GlobalAveragePool": ("/block/Add",),
        "fc": ("/pool/GlobalAveragePool",),
    }
    _round_trip(net)
    _check_residual_flow(net, "/block/Add")


# ---- ONNX by hand -----------------------------------------------------------------------------------
def _tensor(name, dims):
    return helper.make_tensor(name, TensorProto.FLOAT, dims, np.zeros(int(np.prod(dims)), np.float32))


def _model(nodes, inits, out="z", out_shape=(1, 10), in_shape=(1, 3, 8, 8)) -> onnx.ModelProto:
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "hand", [vi("x", TensorProto.FLOAT, list(in_shape))],
                              [vi(out, TensorProto.FLOAT, list(out_shape))], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _residual_onnx(skip_first: bool, named: bool = True) -> onnx.ModelProto:
    """stem conv -> relu -> conv1 -> bn -> relu -> conv2 -> add(skip) -> relu -> gap -> flatten -> gemm."""
    inits = [_tensor("stem.weight", [8, 3, 3, 3]), _tensor("c1.weight", [8, 8, 3, 3]),
             _tensor("c2.weight", [8, 8, 3, 3]), _tensor("fc.weight", [10, 8]), _tensor("fc.bias", [10])]
    inits += [_tensor(f"bn.{p}", [8]) for p in ("scale", "bias", "mean", "var")]
    n = (lambda s: s) if named else (lambda s: "")
    conv = dict(pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    add_in = ["r0", "c2"] if skip_first else ["c2", "r0"]
    nodes = [helper.make_node("Conv", ["x", "stem.weight"], ["s"], name=n("stem"), **conv),
             helper.make_node("Relu", ["s"], ["r0"], name=n("relu0")),
             helper.make_node("Conv", ["r0", "c1.weight"], ["c1"], name=n("c1"), **conv),
             helper.make_node("BatchNormalization", ["c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b1"],
                              name=n("bn")),
             helper.make_node("Relu", ["b1"], ["r1"], name=n("relu1")),
             helper.make_node("Conv", ["r1", "c2.weight"], ["c2"], name=n("c2"), **conv),
             helper.make_node("Add", add_in, ["a"], name=n("add")),
             helper.make_node("Relu", ["a"], ["r2"], name=n("relu2")),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"], name=n("gap")),
             helper.make_node("Flatten", ["g"], ["f"], name=n("flat")),
             helper.make_node("Identity", ["f"], ["f2"], name=n("id")),
             helper.make_node("Gemm", ["f2", "fc.weight", "fc.bias"], ["z"], name=n("fc"), transB=1)]
    return _model(nodes, inits)


@pytest.mark.parametrize("skip_first", [False, True])
def test_onnx_hand_built_residual_edges(skip_first):
    net = from_onnx(_residual_onnx(skip_first))
    assert [l.name for l in net.layers] == ["stem", "c1", "c2", "fc"]
    assert net.inputs == {
        "stem": ("input",),
        "c1": ("stem",),
        "c2": ("c1",),
        "add": ("c2", "stem"),   # the main branch first, whatever the node's operand order
        "gap": ("add",),
        "fc": ("gap",),
    }
    _round_trip(net)
    fl = flow(net)
    assert fl.skips[2] == (0,) and fl.fused_aux == {"add": 2}
    assert fl.joins == (False, True, True, False)


def test_onnx_unnamed_nodes_get_distinct_names():
    """Unnamed operators are named by their type; two Adds must still be two graph nodes."""
    inits = [_tensor("a.weight", [4, 4, 1, 1]), _tensor("b.weight", [4, 4, 1, 1])]
    nodes = [helper.make_node("Conv", ["x", "a.weight"], ["a"]),
             helper.make_node("Add", ["a", "x"], ["s1"]),
             helper.make_node("Conv", ["s1", "b.weight"], ["b"]),
             helper.make_node("Add", ["s1", "b"], ["z"])]
    net = from_onnx(_model(nodes, inits, out_shape=(1, 4, 8, 8), in_shape=(1, 4, 8, 8)))
    assert [a.name for a in net.aux] == ["Add", "Add#2"]
    assert net.inputs == {"a": ("input",), "Add": ("a", "input"), "b": ("Add",), "Add#2": ("b", "Add")}
    _round_trip(net)


def test_onnx_shape_arithmetic_is_not_an_operator():
    """``x.view(x.size(0), -1)`` exports Shape -> Gather -> Unsqueeze -> Concat -> Reshape: the
    Concat of shape pieces moves no data and the Reshape passes the conv output on."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 5)

        def forward(self, x):
            y = self.c(x)
            return self.fc(y.view(y.size(0), -1))

    model = _export(M(), (torch.zeros(2, 3, 8, 8),), input_names=["x"], dynamic_axes={"x": {0: "b"}})
    assert any(n.op_type == "Concat" for n in model.graph.node)
    net = from_onnx(model)
    assert net.aux == ()
    assert net.inputs == {"c": ("input",), "fc": ("c",)}
    assert from_torch(M(), (2, 3, 8, 8)).inputs == {"c": ("input",), "fc": ("c",)}


# ---- what the importers cannot attribute: no edges rather than wrong ones ---------------------------
class Diff(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.c(self.a(x) - self.b(x))   # a subtraction of two branches is not modelled


def test_unattributable_join_gives_no_edges():
    net = from_torch(Diff(), (1, 3, 8, 8))
    assert net.inputs == {} and "sub" in net.meta["graph"]
    assert [l.name for l in net.layers] == ["a", "b", "c"]   # the layers themselves are unchanged
    onet = from_onnx(_export(Diff(), (torch.zeros(1, 3, 8, 8),)))
    assert onet.inputs == {} and "Sub" in onet.meta["graph"]
    with pytest.raises(Exception, match="no graph edges"):
        flow(net)


def test_unattributable_join_no_layer_reads_keeps_the_edges():
    class Out(Diff):
        def forward(self, x):
            return self.c(self.a(x)) - self.b(x)   # the join is only the network's output

    net = from_torch(Out(), (1, 3, 8, 8))
    assert net.inputs == {"a": ("input",), "b": ("input",), "c": ("a",)}


# ---- torch specifics ----------------------------------------------------------------------------------
def test_torch_inplace_add_is_what_later_layers_read():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(4, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            y = self.a(x)
            y.add_(x)
            return self.b(y)

    net = from_torch(M(), (1, 4, 8, 8))
    add = net.aux[0].name
    assert net.inputs == {"a": ("input",), add: ("a", "input"), "b": (add,)}
    assert flow(net).skips[0] == (-1,)


def test_torch_reused_pool_and_a_layer_called_input_get_distinct_names():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.input = nn.Conv2d(3, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.c = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.pool(self.c(self.pool(self.input(x))))

    net = from_torch(M(), (1, 3, 16, 16))
    assert [l.name for l in net.layers] == ["input#2", "c"]
    assert [a.name for a in net.aux] == ["pool", "pool#2"]
    assert net.inputs == {"input#2": ("input",), "pool": ("input#2",), "c": ("pool",), "pool#2": ("c",)}
    _round_trip(net)


def test_torch_attention_and_squeeze_excitation():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.fc1 = nn.Linear(8, 2)
            self.fc2 = nn.Linear(2, 8)
            self.proj = nn.Linear(8, 8)

        def forward(self, x):
            y = self.dw(x)
            gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(y.mean((2, 3))))))
            y = y * gate[:, :, None, None]                     # SE: (main, gate)
            t = self.proj(y.flatten(2).transpose(1, 2))        # [1, 16 tokens, 8]
            return F.scaled_dot_product_attention(t, t, t)

    net = from_torch(M(), (1, 8, 4, 4))
    mul = net.aux[0].name
    sdpa = [l.name for l in net.layers if l.op == "matmul"]
    assert net.inputs == {"dw": ("input",), "fc1": ("dw",), "fc2": ("fc1",), mul: ("dw", "fc2"),
                          "proj": (mul,), sdpa[0]: ("proj",), sdpa[1]: (sdpa[0], "proj")}
    _round_trip(net)


# ---- torchvision-layout networks against the zoo -----------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """torchvision's resnet18 layout and module names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for stage, width in enumerate((64, 128, 256, 512), start=1):
            blocks = []
            for i in range(2):
                blocks.append(BasicBlock(cin, width, 2 if i == 0 and stage > 1 else 1))
                cin = width
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _conv_bn_relu(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        self.use_res = stride == 1 and cin == cout
        layers = [_conv_bn_relu(cin, hidden, 1)] if t != 1 else []
        layers += [_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)   # torchvision writes the skip first


class MobileNetV2(nn.Module):
    """torchvision's mobilenet_v2 layout and module names (width 1.0)."""

    def __init__(self):
        super().__init__()
        feats = [_conv_bn_relu(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)):
            for i in range(n):
                feats.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        feats.append(_conv_bn_relu(cin, 1280, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


@pytest.mark.parametrize("zoo_name, module", [("resnet18", ResNet18), ("mobilenet_v2", MobileNetV2)])
def test_torchvision_layouts_match_the_zoo_edges(zoo_name, module):
    zoo = get_network(zoo_name, resolution=64)
    net = from_torch(module(), (1, 3, 64, 64), name=zoo_name)
    assert [(l.name, l.shape_key) for l in net.layers] == [(l.name, l.shape_key) for l in zoo.layers]
    assert [a.kind for a in net.aux] == [a.kind for a in zoo.aux]
    # layers are named alike; operators are compared by kind and rank
    assert _canon(net) == _canon(zoo)
    _round_trip(net)
    fz, fn = flow(zoo), flow(net)
    assert (fn.joins, fn.skips, fn.sources, fn.consumers) == (fz.joins, fz.skips, fz.sources, fz.consumers)
    adds = [a for a in net.aux if a.kind == "add"]
    assert adds and all(len(net.inputs[a.name]) == 2 for a in adds)


@pytest.mark.parametrize("zoo_name, module", [("resnet18", ResNet18), ("mobilenet_v2", MobileNetV2)])
def test_onnx_exports_of_torchvision_layouts_match_the_zoo_structure(zoo_name, module):
    """BatchNorm folding renames the weights, so layers are compared by position."""
    zoo = get_network(zoo_name, resolution=64)
    net = from_onnx(_export(module(), (torch.zeros(1, 3, 64, 64),)))
    assert [l.shape_key for l in net.layers] == [l.shape_key for l in zoo.layers]
    assert _canon(net, layers_by_position=True) == _canon(zoo, layers_by_position=True)
    _round_trip(net)
    fz, fn = flow(zoo), flow(net)
    assert (fn.joins, fn.skips, fn.sources, fn.consumers) == (fz.joins, fz.skips, fz.sources, fz.consumers)


def test_torch_inplace_copy_into_a_fresh_tensor_is_not_misread():
    """``z = zeros_like(a(x)); z.copy_(b(x))``: z holds b's output (zeros_like reads a shape only)."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(4, 2, 1)
            self.b = nn.Conv2d(4, 2, 1)
            self.c = nn.Conv2d(2, 4, 1)

        def forward(self, x):
            z = torch.zeros_like(self.a(x))
            z.copy_(self.b(x))
            return self.c(z)

    net = from_torch(M(), (1, 4, 8, 8))
    assert net.inputs == {"a": ("input",), "b": ("input",), "c": ("b",)}
