"""Our layer-fused schedule model against the checked-in Stream data
(codesign/validation/peers/data/stream.json, made by stream_runner.py with stream-dse 2.1.1).
Needs no Stream. The tolerances are the ones observed when the data was made; the known
disagreements are pinned too, so that a change on either side shows up here."""
import re

import pytest

from codesign.validation.peers import stream_compare as sc

RUNS = ("layer_by_layer", "fused_2x2_4tiles", "fused_all_4tiles")


@pytest.fixture(scope="module")
def data():
    return sc.load_data()


@pytest.fixture(scope="module")
def res(data):
    return sc.compare(data)


@pytest.fixture(scope="module")
def res_refetch(data):
    return sc.compare(data, weights="refetch")


def _saving(res, run, key):
    return next(s for s in res["fused_vs_layer_by_layer"] if s["run"] == run)[key]


def test_data_header(data):
    assert data["peer"] == "stream" and data["version"] == "2.1.1"
    assert data["hardware_name"] == "eyeriss_like_single_core"
    assert [r["name"] for r in data["runs"]] == list(RUNS)
    assert data["command"].endswith("stream_runner.py --out codesign/validation/peers/data/stream.json")
    assert set(data["translation"]) == {"workload", "hardware", "schedule", "dram"}
    assert not re.search(r"(?<![\w.<>-])/(?:tmp|home|root|opt)/", sc.DATA_PATH.read_text())
    for run in data["runs"]:
        for g in run["groups"]:
            assert g["solve"]["status"] == "OPTIMAL"
            assert g["nodes"] and g["transfers"], "the runner's capture of Stream's internals failed"


def test_stream_data_is_consistent(data):
    """Stream's own totals: its energy report is the sum of the captured streams and nodes."""
    for run in data["runs"]:
        for g in run["groups"]:
            e = g["energy_pj"]
            assert sum(t["pj_per_iteration"] for t in g["transfers"]) == pytest.approx(e["transfer_pj_per_iteration"], rel=1e-6)
            assert sum(n["zigzag"]["energy_total"] * n["active_fraction"] for n in g["nodes"]) == pytest.approx(
                e["node_pj_per_iteration"], rel=1e-6)
            assert e["total_pj"] == pytest.approx(e["per_iteration_pj"] * g["iterations"], rel=1e-9)
    lbl = data["runs"][0]["total"]
    weights_bits = sum(l["weight_elems"] * 8 for l in data["layers"])
    assert lbl["dram_weights_bits"] == weights_bits  # every weight once
    # Stream re-fetches every weight tensor each tile in fused_2x2, and only w3 in fused_all
    assert data["runs"][1]["total"]["dram_weights_bits"] == 4 * weights_bits
    assert data["runs"][2]["groups"][0]["dram"]["by_tensor_bits"]["w3"] == 4 * 147456 * 8


def test_schedule_translation(data):
    net = sc.network(data)
    assert [l.name for l in net.layers] == ["Conv0", "Conv1", "Conv2", "Conv3"]
    assert sc.stacks_of(data["runs"][0], net) == [sc.Stack(i, i, None, "cache") for i in range(4)]
    assert sc.stacks_of(data["runs"][1], net) == [sc.Stack(0, 1, (8, 32), "cache"), sc.Stack(2, 3, (4, 16), "cache")]
    assert sc.stacks_of(data["runs"][2], net) == [sc.Stack(0, 3, (4, 16), "cache")]


def test_comparison_runs_and_prints(res):
    assert [r["name"] for r in res["runs"]] == list(RUNS)
    text = sc.format_table(res)
    assert "fused_all_4tiles" in text and "dram_activations" in text


def test_layer_by_layer_dram_traffic_matches(res):
    """Layer by layer both tools move every tensor once: within 5 % (observed 1.00 and 0.99)."""
    r = res["runs"][0]["total_ratio"]
    assert r["dram_weights"] == pytest.approx(1.0, abs=0.05)
    assert r["dram_activations"] == pytest.approx(1.0, abs=0.05)


def test_fusion_saves_dram_activations_in_both_tools(res):
    """The saving that defines fusion: intermediates stay on chip, and with cached overlap the
    stack's input rows come from DRAM once. Observed 0.534 vs 0.538 and 0.233 vs 0.231 (before the
    first layer's halo came from the cache: 0.62 and 0.28)."""
    for run in RUNS[1:]:
        s = _saving(res, run, "dram_activations")
        assert s["same_direction"] and s["ours"] < 1 and s["stream"] < 1
        assert s["ours"] == pytest.approx(s["stream"], abs=0.01)


def test_fused_all_total_energy_ratio_agrees(res):
    """Whole-chain fusion: both tools put the saving at 4-5 % of the energy (0.948 vs 0.964)."""
    s = _saving(res, "fused_all_4tiles", "energy_pj")
    assert s["same_direction"] and s["ours"] == pytest.approx(s["stream"], abs=0.02)


def test_weights_refetched_like_stream(res_refetch):
    """Fetching weights every tile (Stream's choice in fused_2x2): the DRAM traffic ratios then agree
    in direction for every fused run, and the weight traffic exactly where Stream re-fetched all."""
    for run in RUNS[1:]:
        assert _saving(res_refetch, run, "dram_total")["same_direction"]
    s = _saving(res_refetch, "fused_2x2_4tiles", "dram_weights")
    assert s["ours"] == pytest.approx(4.0) and s["stream"] == pytest.approx(4.0)
    fused_2x2 = res_refetch["runs"][1]["total_ratio"]
    assert fused_2x2["dram_weights"] == pytest.approx(1.0, abs=1e-9)


def test_known_disagreements(res):
    """Pinned, not wished away (see stream_compare's docstring and the Stream notes): Stream's fused latency
    is 20 % below its layer-by-layer one, mostly because its ZigZag picks another spatial unrolling for
    the tiles (OX x C instead of OX x OY, 0.83 of the node cycles) and the steady-state pipeline hides
    the DRAM transfers; ours changes by +1..+3 %. And with weights kept on chip (ours) vs re-fetched
    per tile (Stream), fused weight traffic is 1x in ours, 2.5-4x in Stream."""
    for run in RUNS[1:]:
        c = _saving(res, run, "cycles")
        assert c["stream"] < 0.85 and 0.99 <= c["ours"] <= 1.05
        w = _saving(res, run, "dram_weights")
        assert w["ours"] == pytest.approx(1.0) and w["stream"] >= 2.5


def test_validate_stream_command(capsys):
    from codesign.cli import main
    assert main(["validate", "stream"]) == 0
    out = capsys.readouterr().out
    assert "fused / layer-by-layer" in out and "fused_all_4tiles dram_activations" in out
