"""The checked-in SCALE-Sim peer data and the translation that produced it (no SCALE-Sim needed)."""
import math
import re
from pathlib import Path

import pytest

from codesign.validation.peers import scalesim as ss
from codesign.validation.peers.layerset import peer_layers

CONFIGS = ("ws_32x32", "os_32x32", "is_32x32", "ws_16x16", "os_16x16", "is_16x16")


@pytest.fixture(scope="module")
def data():
    return ss.load_data()


@pytest.fixture(scope="module")
def layers():
    return {lay.name: lay for lay in peer_layers()}


def test_header(data):
    assert data["peer"] == "scalesim"
    assert data["version"] == "3.0.0"
    assert data["command"] == "python -m codesign.validation.peers.scalesim --python <scalesim-venv>/bin/python"
    assert sorted(data["configs"]) == sorted(CONFIGS)
    for name, c in data["configs"].items():
        df, size = name.split("_")
        assert c["dataflow"] == df
        assert f"{c['array_rows']}x{c['array_cols']}" == size
        assert (c["ifmap_sram_kB"], c["filter_sram_kB"], c["ofmap_sram_kB"]) == (64, 64, 64)
        assert c["bandwidth_words_per_cycle"] == 10
        assert c["word_size_bytes"] == 1
        assert c["interface_bandwidth"] == "CALC"
    assert data["base_cfg"] == ss.BASE_CFG
    assert [e["layer"] for e in data["excluded"]] == list(ss.EXCLUDED)


def test_no_machine_paths():
    text = Path(ss.DATA_PATH).read_text()
    assert not re.search(r"(?<![\w.<>-])/(?:tmp|home|root|opt)/", text)  # no path of the machine that ran it
    assert len(text) < 300_000


def test_coverage(data, layers):
    got = {}
    for r in data["records"]:
        key = (r["config"], r["layer"])
        assert key not in got, f"duplicate record {key}"
        got[key] = r
    expected = {(c, n) for c in CONFIGS for n in layers if n not in ss.EXCLUDED}
    assert set(got) == expected
    assert len(data["records"]) == 6 * (len(layers) - len(ss.EXCLUDED)) == 6 * 17


def test_records_match_current_layers_and_translation(data, layers):
    for r in data["records"]:
        lay = layers[r["layer"]]
        assert r["layer_dict"] == lay.to_dict()
        t = ss.translate(lay)
        assert r["scalesim_layer"] == {"mode": t["mode"], "row": t["row"], "multiplier": t["multiplier"]}
        # SCALE-Sim simulated exactly our MACs (times the group multiplier)
        assert r["run"]["sim"]["num_macs"] * t["multiplier"] == lay.macs


def test_cycles_positive_and_above_pe_bound(data, layers):
    for r in data["records"]:
        c = data["configs"][r["config"]]
        pes = c["array_rows"] * c["array_cols"]
        lay = layers[r["layer"]]
        total = r["total_cycles"]
        assert isinstance(total, int) and total > 0 and math.isfinite(total)
        # a systolic array cannot beat its PE count
        assert total >= math.ceil(lay.macs / pes), (r["config"], r["layer"])
        assert r["compute_cycles"] + r["stall_cycles"] == total
        assert r["stall_cycles"] >= 0
        assert r["total_cycles_incl_prefetch"] >= total
        assert 0 < r["overall_util_pct"] <= 100 and 0 < r["mapping_efficiency_pct"] <= 100


def test_closed_form_compute_cycles(data, layers):
    """SCALE-Sim's stall-free cycles equal folds * lines_per_fold - 1 on every record."""
    for r in data["records"]:
        c = data["configs"][r["config"]]
        t = ss.translate(layers[r["layer"]])
        assert r["compute_cycles"] == ss.compute_cycles_closed_form(
            t, c["array_rows"], c["array_cols"], c["dataflow"]), (r["config"], r["layer"])
        sim = r["run"]["sim"]
        assert sim["demand_lines"] % (sim["row_fold"] * sim["col_fold"]) == 0  # equal folds
        assert r["compute_cycles"] == t["multiplier"] * (sim["demand_lines"] - 1)


def test_closed_form_by_hand():
    # r18.layer1.conv on 32x32 ws: K=3*3*64=576 rows of window, N=64 filters, T=56*56=3136:
    # folds = ceil(576/32) * ceil(64/32) = 18 * 2 = 36, lines/fold = 64 + 32 + 3136 - 2 = 3230
    t = ss.translate(next(lay for lay in peer_layers() if lay.name == "r18.layer1.conv"))
    assert ss.compute_cycles_closed_form(t, 32, 32, "ws") == 36 * 3230 - 1 == 116279
    # os: Sr=3136 pixels, Sc=64 filters, T=576: 98 * 2 folds of 576 + 62 lines
    assert ss.compute_cycles_closed_form(t, 32, 32, "os") == 196 * 638 - 1
    # is: Sr=576, Sc=3136, T=64: 18 * 98 folds of 64 + 64 + 32 - 2 lines
    assert ss.compute_cycles_closed_form(t, 32, 32, "is") == 1764 * 158 - 1


def test_translate_resnet_stem():
    stem = next(lay for lay in peer_layers() if lay.name == "r18.conv1")
    t = ss.translate(stem)
    # H = (112 - 1) * 2 + 7 = 229: the padded input, passed as is (SCALE-Sim has no padding)
    assert t["mode"] == "conv" and t["multiplier"] == 1
    assert t["csv"] == [229, 229, 7, 7, 3, 64, 2]
    assert ss.gemm_dims(t) == (112 * 112, 64, 7 * 7 * 3)


def test_translate_depthwise_and_gemm():
    by_name = {lay.name: lay for lay in peer_layers()}
    # depthwise 144 channels, stride 2, out 28x28: one group (57x57x1 -> 1 filter), times 144
    t = ss.translate(by_name["mbv2.dw56.s2"])
    assert t["mode"] == "conv" and t["multiplier"] == 144
    assert t["csv"] == [57, 57, 3, 3, 1, 1, 2]
    # BERT projection over 128 tokens: GEMM M=128, N=768 outputs, K=768 reduction
    t = ss.translate(by_name["bert.qkv"])
    assert t == {"mode": "gemm", "row": {"M": 128, "N": 768, "K": 768}, "csv": [128, 768, 768],
                 "multiplier": 1}
    # batch-4 1x1 conv: GEMM with M = 4 * 14 * 14
    t = ss.translate(by_name["mbv2.pw.expand14.b4"])
    assert t["row"] == {"M": 784, "N": 576, "K": 96}
    # attention scores [128,64] x [64,128]
    assert ss.translate(by_name["bert.scores"])["row"] == {"M": 128, "N": 128, "K": 64}
