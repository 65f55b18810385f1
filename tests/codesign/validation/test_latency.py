"""Latency backends: registry and specs, analytical / FPGA against the models they wrap, lookup
tables summed by hand, measured torch / ONNX Runtime on a tiny network, and the CLI."""
import json
import math

import pytest
import yaml

from codesign.cli import main
from codesign.validation.latency import BackendUnavailable, LatencyError, get_backend
from models import Layer
from models.assets import asset_path, have_asset
from models.network import Network

NEEDS = "set CODESIGN_ASSETS to the shared data directory (ofa/, proxylessnas/)"
NOTE10_30MS = "ofa/specialized/note10_lat-30ms_top1-78.4_finetune-75/net.config"


def tiny(k1=8, k2=16, name="tiny"):
    """Two 3x3 convolutions on an 8x8 input."""
    return Network(name, (Layer.conv("c1", 3, k1, 8, 3), Layer.conv("c2", k1, k2, 8, 3)), resolution=8)


# ---- registry and specs -----------------------------------------------------------------------
@pytest.mark.parametrize("spec, words", [
    ("nope", ["unknown latency backend", "analytical", "onnxruntime"]),
    ("analytical:", ["name an accelerator"]),
    ("analytical:nope", ["unknown accelerator", "eyeriss"]),
    ("analytical:eyeriss?mapper=magic", ["unknown mapping optimizer", "heuristic"]),
    ("analytical:eyeriss?speed=1", ["bad option", "mapper="]),
    ("fpga:zcu102:zcu102-42", ["unknown hotnas preset", "zcu102-1", "zcu102-9"]),
    ("fpga:nope:zcu102-1", ["unknown board", "zcu102", "vc707"]),
    ("fpga:Tm=4,Tn=4,Tr=8,Tc=8", ["needs a board"]),
    ("lut:", ["name a table", "note10"]),
    ("lut:mystery", ["unknown latency table", "proxyless-mobile"]),
    ("torch-cpu:repeats=0", ["repeats must be an integer >= 1"]),
    ("torch-cpu:speed=2", ["unknown option", "warmup"]),
])
def test_bad_specs_raise_latency_error(spec, words):
    with pytest.raises(LatencyError) as e:
        get_backend(spec)
    for w in words:
        assert w in str(e.value)


# ---- analytical ---------------------------------------------------------------------------------
def test_analytical_equals_evaluate_network_and_grows_with_k():
    from accelerators.spec import load_accelerator
    from mappings.evaluate import evaluate_network

    net = tiny()
    b = get_backend("analytical:eyeriss")
    r = b.measure(net)
    total = evaluate_network(net, "eyeriss", optimizer="heuristic", cache=False).total
    assert r.ms == pytest.approx(total.latency_ms, rel=1e-12) and r.ms > 0
    assert r.details["cycles"] == total.cycles
    assert r.ms == pytest.approx(total.cycles / (load_accelerator("eyeriss").clock_mhz * 1e3))
    assert r.details["energy_pj"] == pytest.approx(total.energy_pj)
    assert r.details["edp"] == pytest.approx(total.energy_pj * total.cycles)
    assert r.details["bound"] in r.details["bound_cycles"]
    assert sum(r.details["bound_cycles"].values()) == total.cycles
    assert (r.spread, r.samples, r.backend) == (0.0, 1, "analytical:eyeriss")
    assert b.measure(net) is r  # cached per target

    # the same shapes under other names: a new target, but every shape comes from the backend's cache
    hits = b.mapping_cache.hits
    assert b.measure(tiny(name="renamed")).ms == r.ms
    assert b.mapping_cache.hits == hits + 2

    assert b.measure(tiny(16, 32)).ms > r.ms  # doubling K of every layer costs more


def test_analytical_mapper_option():
    a = get_backend("analytical:eyeriss?mapper=random")
    b = get_backend("analytical:eyeriss", mapper="random")
    assert a.mapper == b.mapper == "random"
    assert get_backend("analytical:eyeriss").mapper == "heuristic"


# ---- FPGA ---------------------------------------------------------------------------------------
def test_fpga_preset_and_inline_design_match_the_fpga_models():
    from accelerators.fpga import Zhang15Design, hotnas_network, load_preset, zhang15_network

    net = tiny()
    r = get_backend("fpga:zcu102:zcu102-3").measure(net)
    direct = hotnas_network(net, load_preset("zcu102-3"), "zcu102")
    assert r.ms == pytest.approx(direct.latency_ms, rel=1e-12) and r.ms > 0
    assert r.details["cycles"] == direct.cycles
    assert r.ms == pytest.approx(direct.cycles / (200.0 * 1e3))  # ZCU102 default clock: 200 MHz
    assert r.details["design"]["Tm"] == 160 and r.details["preset"] == "zcu102-3"
    assert get_backend("fpga:zcu102-3").measure(net).ms == r.ms  # the preset's own board

    z = get_backend("fpga:vc707:Tm=4,Tn=3,Tr=8,Tc=8").measure(net)
    assert z.details["model"] == "zhang15"
    assert z.ms == pytest.approx(zhang15_network(net, Zhang15Design(4, 3, 8, 8), "vc707").latency_ms, rel=1e-12)


# ---- lookup tables ------------------------------------------------------------------------------
def _conv(c_in, c_out, k, stride, act):
    return {"name": "ConvLayer", "kernel_size": k, "stride": stride, "in_channels": c_in, "out_channels": c_out,
            "use_bn": True, "act_func": act}


def _mb(c_in, c_out, k, stride, e, mid=None, act="relu", se=False, identity=False):
    conv = {"name": "MBInvertedConvLayer", "in_channels": c_in, "out_channels": c_out, "kernel_size": k,
            "stride": stride, "expand_ratio": e, "mid_channels": mid, "act_func": act, "use_se": se}
    shortcut = {"name": "IdentityLayer", "in_channels": [c_in], "out_channels": [c_out]} if identity else None
    return {"name": "MobileInvertedResidualBlock", "mobile_inverted_conv": conv, "shortcut": shortcut}


ZERO_BLOCK = {"name": "MobileInvertedResidualBlock", "mobile_inverted_conv": {"name": "ZeroLayer", "stride": 1},
              "shortcut": {"name": "IdentityLayer"}}

# a tiny MobileNetV3-style net at 32 px and its table, written by hand (OFA key style, std)
MBV3_TINY = {
    "name": "MobileNetV3", "first_conv": _conv(3, 16, 3, 2, "h_swish"),
    "blocks": [_mb(16, 16, 3, 1, 1, identity=True), ZERO_BLOCK,
               _mb(16, 24, 5, 2, 4, mid=64, act="h_swish", se=True)],
    "final_expand_layer": _conv(24, 96, 1, 1, "h_swish"),
    "feature_mix_layer": {**_conv(96, 128, 1, 1, "h_swish"), "use_bn": False},
    "classifier": {"name": "LinearLayer", "in_features": 128, "out_features": 10, "bias": True},
}
MBV3_TINY_TABLE = {
    "Conv-input:32x32x3-output:16x16x16": {"mean": 1.0, "std": 0.1},
    "expanded_conv-input:16x16x16-output:16x16x16-expand:16-kernel:3-stride:1-idskip:1-se:0-hs:0":
        {"mean": 2.0, "std": 0.2},
    "expanded_conv-input:16x16x16-output:8x8x24-expand:64-kernel:5-stride:2-idskip:0-se:1-hs:1":
        {"mean": 3.0, "std": 0.2},
    "Conv_1-input:8x8x24-output:8x8x96": {"mean": 0.5, "std": 0.4},
    "AvgPool2D-input:8x8x96-output:1x1x96": {"mean": 0.25, "std": 0.0},
    "Conv_2-input:1x1x96-output:1x1x128": {"mean": 0.125, "std": 0.0},
    "Logits-input:1x1x128-output:10": {"mean": 0.0625, "std": 0.0},
    # not in the network: must not be counted
    "expanded_conv-input:16x16x16-output:8x8x24-expand:64-kernel:3-stride:2-idskip:0-se:1-hs:1":
        {"mean": 100.0, "std": 9.0},
}


@pytest.fixture
def tiny_table(tmp_path):
    p = tmp_path / "tiny_table.yaml"
    p.write_text(yaml.safe_dump(MBV3_TINY_TABLE))
    return str(p)


def test_lut_hand_made_table_sums_by_hand(tiny_table):
    b = get_backend(f"lut:{tiny_table}")
    r = b.measure({"net_config": MBV3_TINY, "resolution": 32})
    assert r.ms == pytest.approx(1.0 + 2.0 + 3.0 + 0.5 + 0.25 + 0.125 + 0.0625)  # 6.9375
    assert r.spread == pytest.approx(math.sqrt(0.1**2 + 0.2**2 + 0.2**2 + 0.4**2))  # 0.5
    assert r.samples == 1
    ops = b.layer_latencies({"net_config": MBV3_TINY, "resolution": 32})
    assert [k for k, _ in ops] == list(MBV3_TINY_TABLE)[:7]  # network order; the zero block skipped
    assert [m for _, m in ops] == [1.0, 2.0, 3.0, 0.5, 0.25, 0.125, 0.0625]
    assert r.details["operators"] == [[k, m] for k, m in ops]


def test_lut_missing_operators_are_named(tiny_table):
    cfg = json.loads(json.dumps(MBV3_TINY))
    cfg["blocks"][2]["mobile_inverted_conv"]["kernel_size"] = 7
    with pytest.raises(LatencyError) as e:
        get_backend(f"lut:{tiny_table}").measure({"net_config": cfg, "resolution": 32})
    msg = str(e.value)
    assert "1 operator(s)" in msg
    assert "expanded_conv-input:16x16x16-output:8x8x24-expand:64-kernel:7-stride:2-idskip:0-se:1-hs:1" in msg
    with pytest.raises(LatencyError) as e:  # at 40 px all keys but the 1x1 Conv_2 and Logits change:
        get_backend(f"lut:{tiny_table}").measure({"net_config": MBV3_TINY, "resolution": 40})
    assert "5 operator(s)" in str(e.value) and "(and 2 more)" in str(e.value)  # three named, then a count
    assert "Conv-input:40x40x3-output:20x20x16" in str(e.value)
    with pytest.raises(LatencyError, match="layer list only"):
        get_backend(f"lut:{tiny_table}").measure(tiny())


@pytest.mark.skipif(not have_asset(NOTE10_30MS), reason=NEEDS)
def test_lut_note10_specialized_net_is_30ms():
    b = get_backend("lut:note10")
    r = b.measure(str(asset_path(NOTE10_30MS)))
    assert r.ms == pytest.approx(30.0, rel=0.01)  # the folder name reports 30 ms on the Note10
    assert 0 < r.spread < 1.0
    ops = b.layer_latencies(str(asset_path(NOTE10_30MS)))
    assert len(ops) == 21  # Conv, 16 blocks, Conv_1, AvgPool2D, Conv_2, Logits
    assert sum(m for _, m in ops) == pytest.approx(r.ms)
    # the table is picked by resolution: the LG-G8 net runs at 156 px, which has none
    lg = str(asset_path("ofa/specialized/LG-G8_lat-11ms_top1-73.0_finetune-25/net.config"))
    with pytest.raises(LatencyError, match="160, 176, 192, 208, 224; the target is at 156"):
        b.measure(lg)


# ProxylessNAS mobile table (key style: expand ratio, var): a path through the supernet, by hand
PROXYLESS_KEYS = [
    "Conv-input:224x224x3-output:112x112x32",
    "expanded_conv-input:112x112x32-output:112x112x16-expand:1-kernel:3-stride:1-idskip:0",
    "expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:5-stride:2-idskip:0",
    "expanded_conv-input:56x56x24-output:56x56x24-expand:6-kernel:7-stride:1-idskip:1",
    "expanded_conv-input:56x56x24-output:28x28x40-expand:3-kernel:3-stride:2-idskip:0",
    "expanded_conv-input:28x28x40-output:14x14x80-expand:6-kernel:3-stride:2-idskip:0",
    "expanded_conv-input:14x14x80-output:14x14x96-expand:3-kernel:5-stride:1-idskip:0",
    "expanded_conv-input:14x14x96-output:7x7x192-expand:6-kernel:5-stride:2-idskip:0",
    "expanded_conv-input:7x7x192-output:7x7x320-expand:6-kernel:7-stride:1-idskip:0",
    "Conv_1-input:7x7x320-output:7x7x1280",
    "Logits-input:7x7x1280-output:1000",
]
PROXYLESS_NET = {
    "name": "ProxylessNASNets", "first_conv": _conv(3, 32, 3, 2, "relu6"),
    "blocks": [_mb(32, 16, 3, 1, 1), _mb(16, 24, 5, 2, 3), _mb(24, 24, 7, 1, 6, identity=True), ZERO_BLOCK,
               _mb(24, 40, 3, 2, 3), _mb(40, 80, 3, 2, 6), _mb(80, 96, 5, 1, 3), _mb(96, 192, 5, 2, 6),
               _mb(192, 320, 7, 1, 6)],
    "feature_mix_layer": _conv(320, 1280, 1, 1, "relu6"),
    "classifier": {"name": "LinearLayer", "in_features": 1280, "out_features": 1000, "bias": True},
}


@pytest.mark.skipif(not have_asset("proxylessnas/mobile_trim.yaml"), reason=NEEDS)
def test_lut_proxyless_mobile_hand_sum_and_missing():
    table = yaml.safe_load(asset_path("proxylessnas/mobile_trim.yaml").read_text())
    want_ms = sum(table[k]["mean"] for k in PROXYLESS_KEYS)
    want_spread = math.sqrt(sum(table[k]["var"] for k in PROXYLESS_KEYS))
    b = get_backend("lut:proxyless-mobile")
    r = b.measure({"net_config": PROXYLESS_NET, "resolution": 224})
    assert [k for k, _ in b.layer_latencies({"net_config": PROXYLESS_NET, "resolution": 224})] == PROXYLESS_KEYS
    assert r.ms == pytest.approx(want_ms) and r.spread == pytest.approx(want_spread)
    # the published ProxylessNAS mobile net has a 32-wide second stage; the trimmed table covers 24 only
    with pytest.raises(LatencyError) as e:
        b.measure(str(asset_path("proxylessnas/proxyless_mobile.config")))
    assert "3 operator(s)" in str(e.value)
    assert "expanded_conv-input:112x112x16-output:56x56x32-expand:3-kernel:5-stride:2-idskip:0" in str(e.value)


# ---- measured -----------------------------------------------------------------------------------
def test_torch_cpu_on_tiny_network():
    import torch

    threads = torch.get_num_threads()
    b = get_backend("torch-cpu", repeats=5, warmup=1)
    r = b.measure(tiny())
    assert r.ms > 0 and r.spread >= 0 and r.samples == 5
    assert r.details["min"] <= r.ms <= r.details["max"]
    assert r.details["threads"] == 1 and r.details["device"] == "cpu" and r.details["built_from"] == "network"
    assert torch.get_num_threads() == threads  # restored
    again = b.measure(tiny())
    assert again is r  # cached by target key

    cut = get_backend("torch-cpu:repeats=50,warmup=0", max_seconds=1e-9).measure(tiny())
    assert cut.samples == 1 and cut.details["truncated"]


def test_torch_cpu_builds_from_net_config():
    r = get_backend("torch-cpu", repeats=2, warmup=0).measure({"net_config": MBV3_TINY, "resolution": 32})
    assert r.ms > 0 and r.samples == 2 and r.details["built_from"] == "net.config"


def test_onnxruntime_on_tiny_network():
    pytest.importorskip("onnxruntime")
    r = get_backend("onnxruntime", repeats=3, warmup=1).measure(tiny())
    assert r.ms > 0 and r.spread >= 0 and r.samples == 3 and r.details["threads"] == 1


def test_torch_cuda_unavailable_without_gpu():
    import torch

    if torch.cuda.is_available():
        r = get_backend("torch-cuda", repeats=3, warmup=1).measure(tiny())
        assert r.ms > 0 and r.details["device"].startswith("cuda")
    else:
        with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
            get_backend("torch-cuda")


# ---- CLI ----------------------------------------------------------------------------------------
def test_cli_latency_json_and_text(capsys, tmp_path, tiny_table):
    from mappings.evaluate import evaluate_network

    net_file = tmp_path / "tiny.json"
    net_file.write_text(json.dumps(tiny().to_dict()))
    assert main(["latency", "--backend", "analytical:eyeriss", "--workload", str(net_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == "tiny" and out["backend"] == "analytical:eyeriss" and out["samples"] == 1
    assert out["ms"] == pytest.approx(evaluate_network(tiny(), "eyeriss", optimizer="heuristic",
                                                       cache=False).total.latency_ms)

    arch = json.dumps(MBV3_TINY)
    assert main(["latency", "--backend", f"lut:{tiny_table}", "--arch", arch, "--resolution", "32"]) == 0
    assert capsys.readouterr().out.strip() == f"MobileNetV3: 6.94 ms ± 0.50 (lut:{tiny_table}, 1 samples)"


@pytest.mark.parametrize("argv", [
    ["--backend", "warp-drive", "--workload", "resnet18"],
    ["--backend", "analytical:eyeriss", "--workload", "resnet18", "--repeats", "3"],
    ["--backend", "analytical:eyeriss"],
    ["--backend", "lut:note10", "--arch", "{not json"],
])
def test_cli_latency_errors_exit_2(argv, capsys):
    assert main(["latency", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codesign: error:") and len(err.strip().splitlines()) == 1


def test_analytical_aux_option_adds_the_non_mac_operators():
    from models.zoo import get_network

    net = get_network("resnet18")
    plain = get_backend("analytical:eyeriss").measure(net)
    full = get_backend("analytical:eyeriss?aux=1").measure(net)
    assert full.details["aux"] and full.details["aux_cycles"] > 0
    assert full.details["cycles"] == plain.details["cycles"] + full.details["aux_cycles"]
    assert full.ms == pytest.approx(plain.ms + full.details["aux_cycles"] / 200e3)
    with pytest.raises(LatencyError, match="aux must be 0 or 1"):
        get_backend("analytical:eyeriss?aux=yes")


def _export(tmp_path, name, act, dynamic=False):
    import torch
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), act, torch.nn.Conv2d(8, 8, 1))
    path = tmp_path / name
    kw = {"dynamic_axes": {"x": {0: "n", 2: "h", 3: "w"}}} if dynamic else {}
    torch.onnx.export(m, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False, input_names=["x"], **kw)
    return str(path)


def test_onnxruntime_runs_an_onnx_workload_file_as_it_is(tmp_path):
    import onnx
    import torch

    from codesign.validation.latency import Target
    from models.importers import from_onnx

    relu = _export(tmp_path, "relu.onnx", torch.nn.ReLU())
    sig = _export(tmp_path, "sig.onnx", torch.nn.Sigmoid())
    assert "Sigmoid" in {n.op_type for n in onnx.load(sig).graph.node}
    b = get_backend("onnxruntime", repeats=3, warmup=1)
    r1, r2 = b.measure(relu), b.measure(sig)
    assert r1.details["built_from"] == r2.details["built_from"] == "onnx file"
    assert r1.ms > 0 and r2.ms > 0 and r1.samples == 3
    assert r1 is not r2  # same layer list, different files: two cache entries
    assert b.measure(relu) is r1
    # torch backends rebuild the layer list (the file's activations are not part of it)
    assert get_backend("torch-cpu", repeats=2, warmup=0).measure(relu).details["built_from"] == "network"
    dyn = _export(tmp_path, "dyn.onnx", torch.nn.ReLU(), dynamic=True)
    with pytest.raises(LatencyError, match="dynamic shape"):
        b.measure(Target(from_onnx(relu), onnx_path=dyn))


def test_bench_latency_measures_distinct_sampled_archs(capsys):
    import numpy as np

    from models.spaces import get_space

    assert main(["bench", "latency", "--backends", "fpga:zcu102:zcu102-1", "--samples", "3", "--seed", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    (row,) = r["backends"]
    assert row["backend"] == "fpga:zcu102:zcu102-1" and row["archs"] == 3
    assert row["archs_per_s"] == pytest.approx(3 / row["seconds"])
    space, rng = get_space("ofa-mbv3"), np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(3)]  # seed 1 gives three distinct ones
    b = get_backend("fpga:zcu102:zcu102-1")
    assert row["mean_latency_ms"] == pytest.approx(np.mean([b.measure(a, space="ofa-mbv3").ms for a in archs]))
    with pytest.raises(SystemExit) as e:
        main(["bench", "latency", "--samples", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("codesign: error: bench latency: argument --samples")


def test_measure_many_interleaves_and_caches(monkeypatch):
    import codesign.validation.latency.measured as measured

    monkeypatch.setattr(measured, "INTERLEAVE", 2)  # three networks: a group of 2, then 1
    nets = [tiny(8, 16, "a"), tiny(8, 32, "b"), tiny(16, 16, "c")]
    b = get_backend("torch-cpu", repeats=4, warmup=1)
    calls = []
    real = measured.TorchCpuBackend._make_runner

    def spy(self, module, x):
        run = real(self, module, x)
        tag = len(calls)
        calls.append([])

        def wrapped():
            calls[tag].append(len(sum(calls, [])))  # global order of runs
            run()
        return wrapped
    monkeypatch.setattr(measured.TorchCpuBackend, "_make_runner", spy)
    rs = b.measure_many(nets)
    assert [r.samples for r in rs] == [4, 4, 4]
    assert [r.details["interleaved_with"] for r in rs] == [2, 2, 1]
    # group 1: 1 warm-up each, then rounds alternate a, b, a, b, ...
    assert calls[0] == [0, 2, 4, 6, 8] and calls[1] == [1, 3, 5, 7, 9]
    assert all(r.ms > 0 and r.spread >= 0 for r in rs)
    assert b.measure(nets[1]) is rs[1]  # cached: no new runs
    assert len(calls) == 3
    a = get_backend("analytical:eyeriss")  # the default: one by one, same results as measure()
    assert [r.ms for r in a.measure_many(nets)] == [a.measure(n).ms for n in nets]
