"""Schemas and bounds of every workload input: layers, workload JSON, net.config, ONNX, archs."""
import copy
import json
import math
import time

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from models import AuxOp, Layer, Network, WorkloadError
from models.importers import from_onnx, load_workload
from models.netconfig import network_from_net_config, run_config_resolution
from models.schema import (MAX_AUX_ELEMS, MAX_DIM, MAX_LAYER_MACS, MAX_RESOLUTION, MAX_STRIDE, MAX_TENSOR_ELEMS,
                           NC_MAX_DILATION)
from models.spaces import get_space
from models.zoo import get_network

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---- Layer bounds -------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, msg", [
    ({"K": 2 ** 62}, "K=4611686018427387904 must be a positive integer up to 1,048,576"),
    ({"K": 1e20}, r"K=1e\+20 must be"),
    ({"K": np.int64(4)}, "K=.*4.* must be"),          # numpy ints would wrap around in MAC products
    ({"K": True}, "K=True"),
    ({"stride": MAX_STRIDE + 1}, "stride=4097"),
    ({"dilation": 0}, "dilation=0"),
    ({"padding": -1}, "padding=-1"),
    ({"K": MAX_DIM, "C": MAX_DIM, "P": 2 ** 11}, "MACs, more than"),
    ({"N": MAX_DIM, "C": MAX_DIM, "P": 64, "Q": 16, "stride": 2}, "inputs of .* elements, more than"),
])
def test_layer_bounds_are_one_workload_error(kw, msg):
    with pytest.raises(WorkloadError, match=msg):
        Layer(name="x", **kw)


def test_layer_bounds_accept_the_largest_allowed_layer():
    l = Layer(name="big", K=MAX_DIM, C=MAX_DIM, P=2 ** 10)
    assert l.macs == MAX_LAYER_MACS
    assert max(l.weight_elems, l.input_elems, l.output_elems) <= MAX_TENSOR_ELEMS
    with pytest.raises(WorkloadError, match="in_elems"):
        AuxOp("a", "add", MAX_AUX_ELEMS + 1, 1)


# ---- --layer strings ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, msg", [
    ("K=1,K=2", "K is given twice"),
    ("K=1e20", r"K: not an integer \(accepted: a positive integer up to 1,048,576\) \(got '1e20'\)"),
    ("K=2.5", "K: not an integer"),
    ("C=-3", r"C: must be a positive integer up to 1,048,576 \(got -3\)"),
    ("K=4611686018427387904", r"K: must be .* \(got 4611686018427387904\)"),
    ("stride=0", "stride: must be a positive integer up to 4,096"),
    ("padding=-1", "padding: must be an integer from 0 to 1,048,576"),
    ("T=3", "unknown key 'T'"),
    ("name=x", "unknown key 'name'"),
    ("K", "KEY=VALUE"),
    ("K=1048576,C=1048576,P=1048576", "MACs, more than"),
])
def test_layer_spec_errors_name_key_value_and_range(text, msg):
    with pytest.raises(WorkloadError, match=msg) as e:
        Layer.parse(text)
    assert str(e.value).startswith("layer spec: ") and "\n" not in str(e.value)


DIM_VALUES = st.integers(1, 64)


@FAST
@given(st.dictionaries(st.sampled_from(list("GNKCPQRS") + ["stride", "dilation", "padding"]), DIM_VALUES))
def test_layer_spec_round_trips(kw):
    text = ",".join(f"{k}={v}" for k, v in kw.items())
    l = Layer.parse(text)
    assert all(getattr(l, k) == v for k, v in kw.items())


@FAST
@given(st.text(alphabet="GNKCPQRS=,.-+e0123456789xstride ", max_size=40))
def test_layer_spec_never_fails_other_than_workload_error(text):
    try:
        Layer.parse(text)
    except WorkloadError as e:
        assert "\n" not in str(e)


# ---- workload JSON ------------------------------------------------------------------------------
def _net(**over):
    d = {"name": "n", "layers": [{"name": "a", "op": "conv", "dims": {"K": 4, "C": 3, "P": 8, "Q": 8, "R": 3, "S": 3}}]}
    d.update(over)
    return d


@pytest.mark.parametrize("doc, msg", [
    (_net(resolution=-5), r"resolution: must be a positive integer up to 4,096 \(got -5\)"),
    (_net(resolution="224"), r"resolution: not an integer .* \(got '224'\)"),
    (_net(resolution=MAX_RESOLUTION + 1), "resolution: must be"),
    (_net(layers=[{"name": "a", "dims": {"K": 2 ** 62}}]), r"layers\[0\]\.dims\.K: must be .*1,048,576"),
    (_net(layers=[{"name": "a", "dims": {"K": 1e20}}]), r"layers\[0\]\.dims\.K: not an integer"),
    (_net(layers=[{"name": "a", "dims": {"K": 2}, "K": 3}]), "K is given both"),
    (_net(layers=[{"name": "a", "K": 2, "macs": 3}]), "macs 3 contradicts"),
    (_net(layers=[{"name": "a", "K": 2, "params": 3, "op": "fc"}]), r"layers\[0\]\.params: 3 contradicts"),
    (_net(total={"macs": 1}), "total.macs: 1 contradicts"),
    (_net(layers=[{"name": "a", "op": "conv3d"}]), r"layers\[0\]\.op"),
    (_net(layers=[{"name": "a", "bias": "yes"}]), r"layers\[0\]\.bias: must be true or false"),
    (_net(layers=[{"name": "a", "stride": 5000}]), r"layers\[0\]\.stride: must be a positive integer up to 4,096"),
    (_net(layers=[]), "at least one MAC layer"),
    (_net(layers=[{"name": "a"}, {"name": "a"}]), "duplicate layer name"),
    (_net(aux=[{"name": "p", "kind": "pool", "in_elems": -1, "out_elems": 1}]), r"aux\[0\]\.in_elems"),
    (_net(colour="red"), "unknown field 'colour'"),
    ({"layers": [{"name": "a"}]}, "name: Field required"),
])
def test_workload_json_errors(tmp_path, doc, msg):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(WorkloadError, match=msg) as e:
        load_workload(str(path))
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, msg", [
    ('{"name": "n", "name": "m", "layers": []}', "duplicate key 'name'"),
    ('{"name": "n", "resolution": NaN, "layers": []}', "NaN"),
    ("[" * 100 + "]" * 100, "nested deeper"),
])
def test_workload_json_is_read_safely(tmp_path, text, msg):
    path = tmp_path / "w.json"
    path.write_text(text)
    with pytest.raises(WorkloadError, match=msg):
        load_workload(str(path))
    path.write_bytes(b"\xff\xfe{\x00}\x00")
    with pytest.raises(WorkloadError, match="UTF-16"):
        load_workload(str(path))


def test_workload_json_round_trip_keeps_numbers(tmp_path):
    net = get_network("mobilenet_v2", resolution=160)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(net.to_dict()))
    back = load_workload(str(path))
    assert back.layers == net.layers and back.aux == net.aux and back.macs == net.macs
    flat = {"name": "f", "layers": [{"name": "x", "K": 8, "C": 4, "P": 2, "Q": 2}]}  # flat dims are accepted
    assert Network.from_dict(flat).macs == 8 * 4 * 4


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False)
                       | st.text(max_size=5),
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                       max_leaves=12)


@FAST
@given(st.fixed_dictionaries({"name": JSONISH, "layers": st.lists(
    st.fixed_dictionaries({"name": st.text(max_size=3)}, optional={
        "dims": st.dictionaries(st.sampled_from(list("GNKCPQRSZ")), JSONISH, max_size=3),
        "stride": JSONISH, "op": JSONISH, "bias": JSONISH}), max_size=3)},
    optional={"resolution": JSONISH, "aux": JSONISH}))
def test_network_from_dict_fails_only_with_workload_error(doc):
    try:
        Network.from_dict(doc)
    except WorkloadError as e:
        assert "\n" not in str(e)


# ---- net.config / run.config --------------------------------------------------------------------
MBV3 = get_space("ofa-mbv3")
CFG = MBV3.to_net_config(MBV3.sample(np.random.default_rng(0)))


def _bad(path, value):
    cfg = copy.deepcopy(CFG)
    *head, last = path
    d = cfg
    for p in head:
        d = d[p]
    d[last] = value
    return cfg


@pytest.mark.parametrize("path, value, msg", [
    (("blocks", 3, "mobile_inverted_conv", "expand_ratio"), 0, r"blocks\[3\]\.mobile_inverted_conv\.expand_ratio: "
                                                              r"must be a finite number in \(0, 64\] \(got 0\)"),
    (("blocks", 3, "mobile_inverted_conv", "expand_ratio"), float("nan"), r"expand_ratio: .*\(got nan\)"),
    (("first_conv", "dilation"), 500, r"first_conv\.dilation: must be a positive integer up to 64 \(got 500\)"),
    (("blocks", 2, "mobile_inverted_conv", "kernel_size"), 999, r"blocks\[2\]\.mobile_inverted_conv\.kernel_size"),
    (("blocks", 2, "mobile_inverted_conv", "stride"), 0, r"blocks\[2\]\.mobile_inverted_conv\.stride"),
    (("blocks", 2, "mobile_inverted_conv", "out_channels"), 10 ** 9, r"out_channels: must be .*65,536"),
    (("blocks", 2, "mobile_inverted_conv", "kernel_size"), "3", r"kernel_size: not an integer"),
    (("blocks", 2, "name"), "FancyBlock", r"blocks\[2\]\.name: unsupported block type 'FancyBlock'"),
    (("blocks", 2, "shortcut"), {"name": "Conv1x1"}, r"blocks\[2\]\.shortcut: unsupported shortcut type"),
    (("blocks", 2), None, r"blocks\[2\]: must be an object"),
    (("classifier", "out_features"), -1, r"classifier\.out_features"),
    (("blocks",), list(range(5000)), "5,000 blocks, more than the 4,096"),
])
def test_net_config_errors_name_block_and_field(path, value, msg):
    with pytest.raises(WorkloadError, match=msg) as e:
        network_from_net_config(_bad(path, value), 224)
    assert str(e.value).startswith("net.config: ")


def _paths(d, prefix=()):
    """Every (path, value) in a nested JSON document."""
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in items:
        yield prefix + (k,)
        yield from _paths(v, prefix + (k,))


PATHS = list(_paths(CFG))


@FAST
@given(st.sampled_from(PATHS), JSONISH)
def test_net_config_mutations_fail_only_with_workload_error(path, value):
    cfg = _bad(path, value)
    for build in (lambda: network_from_net_config(cfg, 224), lambda: MBV3.from_net_config(cfg, 224)):
        try:
            build()
        except WorkloadError as e:
            assert "\n" not in str(e)


def test_a_block_without_its_convolution_is_an_error_not_a_dropped_block():
    cfg = copy.deepcopy(CFG)
    del cfg["blocks"][2]["mobile_inverted_conv"]
    with pytest.raises(WorkloadError, match=r"blocks\[2\]: a block needs 'mobile_inverted_conv'"):
        network_from_net_config(cfg, 224)
    cfg["blocks"][2]["mobile_inverted_conv"] = None  # said explicitly: the block is skipped
    assert len(network_from_net_config(cfg, 224).layers) < len(network_from_net_config(CFG, 224).layers)


def test_net_config_semantic_errors_and_resolution():
    with pytest.raises(WorkloadError, match=r"blocks\[2\]\.mobile_inverted_conv: expects 99 input channels"):
        network_from_net_config(_bad(("blocks", 2, "mobile_inverted_conv", "in_channels"), 99), 224)
    for r in (0, -3, MAX_RESOLUTION + 1, "224", 224.0):
        with pytest.raises(WorkloadError, match="resolution"):
            network_from_net_config(CFG, r)
    assert network_from_net_config(CFG, 224).macs == MBV3.to_network({**MBV3.validate(
        MBV3.sample(np.random.default_rng(0))), "r": 224}).macs
    assert NC_MAX_DILATION < 500


def test_run_config(tmp_path):
    (tmp_path / "net.config").write_text(json.dumps(CFG))
    for image_size, expect in ((192, 192), ([128, 160, 224], 224)):
        (tmp_path / "run.config").write_text(json.dumps({"image_size": image_size, "lr": 0.1}))
        assert run_config_resolution(tmp_path / "net.config") == expect
    for bad, msg in (({"image_size": -4}, r"run.config: image_size: must be"), ({"image_size": [1, "x"]}, "entries"),
                     ({"image_size": []}, "list of 1 to"), ([1], "must be an object")):
        (tmp_path / "run.config").write_text(json.dumps(bad))
        with pytest.raises(WorkloadError, match=msg):
            load_workload(str(tmp_path / "net.config"))


# ---- ONNX ---------------------------------------------------------------------------------------
VI = helper.make_tensor_value_info


def _conv(x_shape=(1, 3, 8, 8), w_shape=(4, 3, 3, 3), opset=17, **attrs):
    w = numpy_helper.from_array(np.zeros(w_shape, np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", **attrs)
    g = helper.make_graph([node], "g", [VI("x", TensorProto.FLOAT, list(x_shape))],
                          [VI("y", TensorProto.FLOAT, [None] * len(x_shape))], initializer=[w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _matmul(a, b):
    node = helper.make_node("MatMul", ["a", "b"], ["y"], name="mm0")
    g = helper.make_graph([node], "g", [VI("a", TensorProto.FLOAT, list(a)), VI("b", TensorProto.FLOAT, list(b))],
                          [VI("y", TensorProto.FLOAT, [])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("model, msg", [
    (lambda: _conv(group=0), r"node 'conv0' \(Conv\): attribute group=0 must be a positive integer"),
    (lambda: _conv(group=5), "attribute group=5 does not fit"),
    (lambda: _matmul((), ()), r"node 'mm0' \(MatMul\): input A 'a' has rank 0"),
    (lambda: _conv(x_shape=(0, 3, 8, 8)), r"graph input 'x': dimension 0 must be .*\(got 0\)"),
    (lambda: _conv(x_shape=(-1, 3, 8, 8)), r"graph input 'x': dimension 0 .*\(got -1\)"),
    (lambda: _conv(x_shape=(1, 3, 0, 8)), r"dimension 2 .*\(got 0\)"),
    (lambda: _conv(x_shape=(1, 3, 2 ** 40, 8)), r"dimension 2 must be a positive integer up to 1,048,576"),
    (lambda: _conv(opset=99999), "opset 99999 is not supported"),
    (lambda: _conv(auto_pad="BOGUS"), "attribute auto_pad='BOGUS' is not one of"),
    (lambda: _conv(strides=[0, 0]), r"attribute strides=\[0, 0\]: 0 is not a positive integer up to 4,096"),
    (lambda: _conv(pads=[-1, -1, -1, -1]), "attribute pads=.*-1 is not an integer from 0"),
    (lambda: _conv(dilations=[10 ** 6, 10 ** 6]), "attribute dilations"),
    (lambda: _conv(kernel_shape=[5, 5]), "kernel_shape=.* contradicts the weight"),
    (lambda: _conv(w_shape=(4, 3, 9, 9)), r"output 'y' has the empty shape \[1, 4, 0, 0\]"),
])
def test_onnx_errors_name_node_and_attribute(tmp_path, model, msg):
    path = tmp_path / "bad.onnx"
    onnx.save(model(), str(path))
    t = time.perf_counter()
    with pytest.raises(WorkloadError, match=msg) as e:
        from_onnx(str(path))
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    assert time.perf_counter() - t < 5


def test_onnx_valid_conv_and_not_onnx_files(tmp_path):
    net = from_onnx(_conv(pads=[1, 1, 1, 1], auto_pad="NOTSET"))
    assert [(l.K, l.C, l.P, l.padding) for l in net] == [(4, 3, 8, 1)]
    assert from_onnx(_conv(auto_pad="VALID")).layers[0].P == 6
    assert from_onnx(_matmul((1, 4), (4, 5))).layers[0].macs == 20
    (tmp_path / "text.onnx").write_text('{"not": "onnx"}')
    (tmp_path / "cut.onnx").write_bytes(_conv().SerializeToString()[:40])
    for name in ("text.onnx", "cut.onnx"):
        with pytest.raises(WorkloadError, match=f"{name}: .*(not a valid|invalid) ONNX"):
            load_workload(str(tmp_path / name))
    (tmp_path / "model.json").write_bytes(_conv().SerializeToString())
    with pytest.raises(WorkloadError, match="binary file, not JSON"):
        load_workload(str(tmp_path / "model.json"))


# ---- search-space archs -------------------------------------------------------------------------
BIG = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}


@pytest.mark.parametrize("space, arch, msg", [
    ("ofa-mbv3", {**BIG, "ks": 7}, r"arch\['ks'\] must be a list of 20 values from \[3, 5, 7\]"),
    ("ofa-mbv3", {**BIG, "ks": [7] * 19}, "must have 20 entries"),
    ("ofa-mbv3", {**BIG, "e": [6] * 19 + [float("nan")]}, r"arch\['e'\]\[19\]=nan is not one of \[3, 4, 6\]"),
    ("ofa-mbv3", {**BIG, "r": 1e300}, r"arch\['r'\]=1e\+300 must be an integer in \[112, 239\]"),
    ("ofa-mbv3", {**BIG, "r": "x" * 1000}, r"arch\['r'\]='xxx.*\.\.\. must be"),
    ("ofa-resnet50", {"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6, "r": [128]}, r"arch\['r'\]=\[128\] must be one of"),
    ("ofa-resnet50", {"d": [1] + [0] * 4, "e": [0.2] * 18, "w": [0] * 6, "r": 128}, r"arch\['d'\]\[0\]=1"),
    ("nasbench201", {"ops": ["none"] * 5 + [7]}, r"arch\['ops'\]\[5\]=7 is not one of none"),
    ("nasbench201", {"ops": ["none"] * 5}, "must list 6 operators"),
    ("nasbench201", "|foo~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operator 'foo' in node 1"),
    ("nasbench201", "|none~0|" * 1000, r"'\+'-separated nodes, like '\|none~0\|\+"),
])
def test_arch_errors_name_field_and_accepted_values(space, arch, msg):
    with pytest.raises(WorkloadError, match=msg) as e:
        get_space(space).validate(arch)
    assert len(str(e.value)) < 300


@FAST
@given(st.sampled_from(["ofa-mbv3", "ofa-proxyless", "ofa-resnet50", "nasbench201"]),
       st.dictionaries(st.sampled_from(["ks", "e", "d", "r", "w", "ops"]), JSONISH, max_size=5) | JSONISH)
def test_arch_validation_fails_only_with_workload_error(space, arch):
    try:
        get_space(space).validate(arch)
    except WorkloadError as e:
        assert "\n" not in str(e)


# ---- through the CLI ----------------------------------------------------------------------------
def _cli(capsys, *argv):
    from codesign.cli import main
    t = time.perf_counter()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err, time.perf_counter() - t


def test_cli_bad_workloads_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "neg.json").write_text(json.dumps(_net(resolution=-5)))
    onnx.save(_conv(group=0), str(tmp_path / "g0.onnx"))
    cases = [
        (["evaluate", "--workload", str(tmp_path / "neg.json"), "--accelerator", "eyeriss"], "resolution: must be"),
        (["evaluate", "--workload", str(tmp_path / "g0.onnx"), "--accelerator", "eyeriss"], "attribute group=0"),
        (["map", "--layer", "K=1,K=2", "--accelerator", "eyeriss"], "K is given twice"),
        (["map", "--layer", "K=1e20", "--accelerator", "eyeriss"], "K: not an integer"),
        (["accuracy", "--space", "ofa-mbv3", "--arch", json.dumps({**BIG, "d": [9] * 5})], r"arch['d'][0]=9"),
    ]
    for argv, msg in cases:
        rc, out, err, seconds = _cli(capsys, *argv)
        assert rc == 2 and out == "", (argv, err)
        assert err.startswith("codesign: error:") and msg in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and seconds < 5
    assert math.isfinite(MAX_LAYER_MACS * 1.0)
