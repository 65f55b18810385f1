"""net.config importer and torch builder: hand-checked block, published MAC totals, errors."""
import copy
import json

import pytest

from models import Layer, WorkloadError
from models.assets import asset_path, have_asset
from models.netconfig import load_net_config, network_from_net_config, run_config_resolution
from models.spaces import OfaMbv3Space, get_space

NEEDS = "set CODESIGN_ASSETS to the shared data directory (ofa/, proxylessnas/)"
SPECIALIZED = ("LG-G8_lat-11ms_top1-73.0_finetune-25", "flops-595M_top1-80.0_finetune-75",
               "note10_lat-30ms_top1-78.4_finetune-75")


def proxyless(name):
    return load_net_config(asset_path(f"proxylessnas/{name}.config"))


# A w1.2 arch whose stage-2 first block (blocks.3 when stage 1 has depth 2) is k=5, e=4.
ARCH = {"ks": [3] * 20, "e": [3] * 20, "d": [2, 3, 2, 2, 2], "r": 224}
ARCH["ks"][4], ARCH["e"][4] = 5, 4


def test_first_block_of_stage_2_by_hand():
    """Stage 2 of OFA-MBv3 w1.2 at r=224, first block, k=5, e=4.

    Input: stage 1 output, 32 channels (make_divisible(24*1.2)=32) at 56x56 (224 /2 stem /2 stage 1).
    expand 1x1 32->128 (32*4) at 56x56; depthwise 5x5 stride 2 -> 28x28, pad 2; SE on 128
    channels: squeeze to make_divisible(128//4, 8)=32; project 1x1 128->48 (make_divisible(40*1.2)=48).
    """
    net = get_space("ofa-mbv3").to_network(ARCH)
    by = {l.name: l for l in net.layers}
    assert by["blocks.3.expand"] == Layer(name="blocks.3.expand", G=1, N=1, K=128, C=32, P=56, Q=56, R=1, S=1,
                                          stride=1, padding=0, op="conv")
    assert by["blocks.3.depthwise"] == Layer(name="blocks.3.depthwise", G=128, N=1, K=1, C=1, P=28, Q=28, R=5, S=5,
                                             stride=2, padding=2, op="dwconv")
    assert by["blocks.3.depthwise"].H == 59  # (28-1)*2 + 5 input rows incl. halo
    assert by["blocks.3.se.fc1"] == Layer(name="blocks.3.se.fc1", K=32, C=128, op="fc", bias=True)
    assert by["blocks.3.se.fc2"] == Layer(name="blocks.3.se.fc2", K=128, C=32, op="fc", bias=True)
    assert by["blocks.3.project"] == Layer(name="blocks.3.project", G=1, N=1, K=48, C=128, P=28, Q=28, R=1, S=1,
                                           stride=1, padding=0, op="conv")
    # MACs: 32*128*56*56, 128*25*28*28, 128*32, 32*128, 128*48*28*28
    assert [by[f"blocks.3.{n}"].macs for n in ("expand", "depthwise", "se.fc1", "se.fc2", "project")] == \
        [12_845_056, 2_508_800, 4_096, 4_096, 4_816_896]
    names = [l.name for l in net.layers]
    i = names.index("blocks.3.expand")
    assert names[i:i + 5] == ["blocks.3.expand", "blocks.3.depthwise", "blocks.3.se.fc1", "blocks.3.se.fc2",
                              "blocks.3.project"]
    aux = {a.name: a for a in net.aux}
    assert (aux["blocks.3.se.avgpool"].in_elems, aux["blocks.3.se.avgpool"].out_elems) == (128 * 28 * 28, 128)
    assert "blocks.3.add" not in aux  # stride 2: no residual
    assert (aux["blocks.4.add"].in_elems, aux["blocks.4.add"].out_elems) == (2 * 48 * 28 * 28, 48 * 28 * 28)


def test_head_and_stem_by_hand():
    """Stem 3x3/2 3->24 at 112x112; head at 7x7: 1x1 192->1152, pool, 1x1 1152->1536 on 1x1, FC 1536->1000."""
    net = get_space("ofa-mbv3").to_network(ARCH)
    by = {l.name: l for l in net.layers}
    assert by["first_conv"].dims == dict(G=1, N=1, K=24, C=3, P=112, Q=112, R=3, S=3)
    assert by["final_expand_layer"].dims == dict(G=1, N=1, K=1152, C=192, P=7, Q=7, R=1, S=1)
    assert by["feature_mix_layer"].dims == dict(G=1, N=1, K=1536, C=1152, P=1, Q=1, R=1, S=1)
    assert (by["classifier"].K, by["classifier"].C, by["classifier"].bias) == (1000, 1536, True)
    assert net.layers[-1].name == "classifier" and net.resolution == 224


@pytest.mark.skipif(not have_asset("ofa/specialized"), reason=NEEDS)
def test_flops_595m_specialized_net_has_595m_macs():
    """The OFA authors name this network by its MAC count (595M, counted as 'FLOPs' in OFA) at 236."""
    path = asset_path("ofa/specialized/flops-595M_top1-80.0_finetune-75")
    assert run_config_resolution(path) == 236
    net = network_from_net_config(load_net_config(path), 236)
    assert abs(net.macs / 595e6 - 1) < 0.005


@pytest.mark.skipif(not have_asset("proxylessnas/proxyless_mobile.config"), reason=NEEDS)
@pytest.mark.parametrize("name,published_macs", [
    # ProxylessNAS (mobile): 320M MACs, as tabulated in the OFA paper (Cai et al., ICLR 2020,
    # comparison with MobileNetV2 300M / MnasNet 317M) and later mobile-NAS tables.
    ("proxyless_mobile", 320e6),
    # ProxylessNAS (GPU): 465M multiply-adds, as tabulated in follow-up comparisons (e.g. FairNAS,
    # Chu et al. 2019, Table "ImageNet comparison": Proxyless-GPU 465M, 7.1M params, 75.1 %).
    ("proxyless_gpu", 465e6),
])
def test_proxylessnas_macs_match_published(name, published_macs):
    net = network_from_net_config(proxyless(name), 224)
    assert abs(net.macs / published_macs - 1) < 0.01  # papers round to 1M


@pytest.mark.skipif(not have_asset("proxylessnas/proxyless_gpu.config"), reason=NEEDS)
def test_proxyless_zero_blocks_are_identity():
    """GPU net: ZeroLayer blocks with identity shortcuts add no layer and no add."""
    cfg = proxyless("proxyless_gpu")
    zero = [i for i, b in enumerate(cfg["blocks"]) if b["mobile_inverted_conv"]["name"] == "ZeroLayer"]
    assert len(zero) == 8
    net = network_from_net_config(cfg, 224)
    for i in zero:
        assert not any(l.name.startswith(f"blocks.{i}.") for l in net.layers)
        assert not any(a.name.startswith(f"blocks.{i}.") for a in net.aux)
    # a 1x1 feature mix at 7x7 before the pool, then the classifier
    by = {l.name: l for l in net.layers}
    assert (by["feature_mix_layer"].C, by["feature_mix_layer"].K, by["feature_mix_layer"].P) == (432, 1728, 7)
    assert (by["classifier"].C, by["classifier"].K) == (1728, 1000)


def test_resolution_changes_only_spatial_dims():
    cfg = get_space("ofa-mbv3").to_net_config(ARCH)
    a, b = network_from_net_config(cfg, 224), network_from_net_config(cfg, 160)
    assert [(l.K, l.C, l.R) for l in a] == [(l.K, l.C, l.R) for l in b]
    assert a.layers[0].P == 112 and b.layers[0].P == 80


# ---- errors -----------------------------------------------------------------------------------
def _cfg():
    return get_space("ofa-mbv3").to_net_config(ARCH)


def test_unknown_block_type_is_named():
    cfg = _cfg()
    cfg["blocks"][2]["name"] = "FancyBlock"
    with pytest.raises(WorkloadError, match="FancyBlock"):
        network_from_net_config(cfg, 224)


def test_unknown_layer_type_is_named():
    cfg = _cfg()
    cfg["blocks"][2]["mobile_inverted_conv"]["name"] = "ShuffleLayer"
    with pytest.raises(WorkloadError, match="ShuffleLayer"):
        network_from_net_config(cfg, 224)


def test_channel_mismatch_and_bad_identity_are_errors():
    cfg = _cfg()
    cfg["blocks"][2]["mobile_inverted_conv"]["in_channels"] = 99
    with pytest.raises(WorkloadError, match="99"):
        network_from_net_config(cfg, 224)
    cfg = _cfg()
    cfg["blocks"][1]["shortcut"] = copy.deepcopy(cfg["blocks"][2]["shortcut"])  # stride-2 block
    with pytest.raises(WorkloadError, match="identity shortcut"):
        network_from_net_config(cfg, 224)


@pytest.mark.parametrize("bad", [[], {"blocks": []}, {"first_conv": {}, "blocks": []}])
def test_structurally_broken_configs(bad):
    with pytest.raises(WorkloadError):
        network_from_net_config(bad, 224)


def test_bad_resolution_and_files(tmp_path):
    with pytest.raises(WorkloadError, match="resolution"):
        network_from_net_config(_cfg(), 0)
    with pytest.raises(WorkloadError, match="not found"):
        load_net_config(tmp_path / "nope.config")
    (tmp_path / "net.config").write_text("{oops")
    with pytest.raises(WorkloadError, match="malformed JSON"):
        load_net_config(tmp_path)
    (tmp_path / "net.config").write_text(json.dumps(_cfg()))
    (tmp_path / "run.config").write_text(json.dumps({"image_size": 192}))
    assert run_config_resolution(tmp_path / "net.config") == 192
    assert network_from_net_config(load_net_config(tmp_path), 192).resolution == 192


# ---- torch builder ----------------------------------------------------------------------------
def _torch_macs(cfg, r):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from models.torch_netconfig import build_from_net_config
    torch.set_num_threads(1)
    module = build_from_net_config(cfg)
    assert not module.training
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(torch.randn(1, 3, r, r))
    assert tuple(out.shape) == (1, 1000)
    return counter.get_total_flops() // 2, module


def _configs():
    cases = [("ofa-mbv3 sample", get_space("ofa-mbv3").to_net_config(ARCH), 192),
             ("ofa-mbv3-w1.0 sample", OfaMbv3Space(1.0).to_net_config(ARCH), 160),
             ("ofa-proxyless max", get_space("ofa-proxyless").to_net_config(
                 {"ks": [7] * 21, "e": [6] * 21, "d": [4] * 5, "r": 224}), 224)]
    if have_asset("ofa/specialized") and have_asset("proxylessnas/proxyless_gpu.config"):
        for d in SPECIALIZED:
            p = asset_path(f"ofa/specialized/{d}")
            cases.append((d, load_net_config(p), run_config_resolution(p)))
        for n in ("proxyless_gpu", "proxyless_mobile"):
            cases.append((n, proxyless(n), 224))
    return cases


@pytest.mark.parametrize("label,cfg,r", _configs(), ids=[c[0] for c in _configs()])
def test_torch_module_macs_equal_analytic(label, cfg, r):
    """FlopCounterMode counts executed conv / linear FLOPs; half of them are the analytic MACs."""
    macs, module = _torch_macs(cfg, r)
    assert macs == network_from_net_config(cfg, r).macs


def test_torch_module_traces_back_to_the_same_layers():
    """Independent importer: tracing the built module gives the same shapes in the same order."""
    importers = pytest.importorskip("models.importers")
    import torch.nn as nn

    from models.torch_netconfig import build_from_net_config
    cfg = get_space("ofa-mbv3").to_net_config(ARCH)
    module = build_from_net_config(cfg)
    traced = importers.from_torch(module, (1, 3, 224, 224))
    ours = network_from_net_config(cfg, 224)
    assert [l.shape_key for l in traced] == [l.shape_key for l in ours]
    assert sum(isinstance(m, nn.Hardswish) for m in module.modules()) > 0  # h-swish stages present
    assert sum(isinstance(m, nn.Hardsigmoid) for m in module.modules()) == sum(
        1 for l in ours if l.name.endswith("se.fc2"))


def test_torch_builder_rejects_what_the_importer_rejects():
    from models.torch_netconfig import build_from_net_config
    cfg = _cfg()
    cfg["blocks"][3]["name"] = "FancyBlock"
    with pytest.raises(WorkloadError, match="FancyBlock"):
        build_from_net_config(cfg)
