"""The checked-in ZigZag peer data (codesign/validation/peers/data/zigzag.json): complete, sane, and
produced by the current translation. Needs no ZigZag."""
import math
import re
import sys

import pytest

from codesign.validation.peers import zigzag as zz
from codesign.validation.peers.layerset import peer_layers
from models.layer import Layer

HARDWARE = {"tpu_like", "eyeriss_like", "edge_tpu_like"}


@pytest.fixture(scope="module")
def data():
    return zz.load_data()


def test_data_file_header_and_size(data):
    assert data["peer"] == "zigzag"
    assert data["version"] == "3.9.1"
    assert data["command"] == "python -m codesign.validation.peers.zigzag --python <zigzag-venv>/bin/python"
    text = zz.DATA_PATH.read_text()
    assert len(text.encode()) < 400_000
    assert not re.search(r"(?<![\w.<>-])/(?:tmp|home|root|opt)/", text)  # no path of the machine that ran it
    assert set(data["hardware"]) == HARDWARE
    assert data["errors"] == []
    assert data["translation"] == zz.TRANSLATION


def test_hardware_summaries(data):
    tpu = data["hardware"]["tpu_like"]
    assert tpu["array"]["sizes"] == [32, 32] and tpu["array"]["pes"] == 1024
    assert tpu["spatial_unrolling"] == {"D1": ["K,32"], "D2": ["C,32"]}
    assert tpu["mac_energy_pj"] == 0.04
    assert tpu["hierarchy"] == {"W": ["rf_128B", "dram"], "I": ["sram_2MB", "dram"],
                                "O": ["rf_2B", "sram_2MB", "dram"]}
    edge = data["hardware"]["edge_tpu_like"]
    assert edge["array"]["sizes"] == [8, 8, 4, 4] and edge["array"]["pes"] == 1024
    eye = data["hardware"]["eyeriss_like"]
    assert eye["array"]["sizes"] == [14, 12] and eye["array"]["pes"] == 168
    assert eye["mac_energy_pj"] == 0.5
    for summ in data["hardware"].values():
        assert summ["precision_bits"] == {"W": 8, "I": 8, "O": 16, "O_final": 8}
        for mem in summ["memories"]:
            assert mem["size_bits"] > 0 and mem["r_cost_pj"] > 0 and mem["w_cost_pj"] > 0
            assert mem["instances"] >= 1


def test_every_layer_on_every_hardware(data):
    names = [layer.name for layer in peer_layers()]
    seen = {}
    for r in data["records"]:
        assert "error" not in r, (r["hardware"], r["layer"], r.get("error"))
        key = (r["hardware"], r["layer"])
        assert key not in seen
        seen[key] = r
    assert set(seen) == {(h, n) for h in HARDWARE for n in names}


def test_records_respect_compute_and_mac_energy_bounds(data):
    layers = {layer.name: layer for layer in peer_layers()}
    for r in data["records"]:
        hw = data["hardware"][r["hardware"]]
        layer = layers[r["layer"]]
        pes = math.prod(hw["array"]["sizes"])
        assert r["macs"] == layer.macs  # the translation keeps every MAC
        assert r["pes"] == pes
        lat = r["latency_cycles"]
        assert math.isfinite(lat["total"]) and lat["total"] > 0
        assert lat["total"] >= math.ceil(layer.macs / pes)
        assert lat["ideal"] == math.ceil(layer.macs / pes)
        parts = (lat["ideal_temporal"] + lat["temporal_stall"] + lat["onloading"]
                 + lat["offloading"] + lat["systolic_drain"])
        assert lat["total"] == pytest.approx(parts, rel=1e-5)
        assert lat["ideal_temporal"] == pytest.approx(lat["ideal"] + lat["spatial_stall"], rel=1e-5)
        assert lat["spatial_stall"] >= 0 and lat["temporal_stall"] >= 0
        e = r["energy_pj"]
        assert math.isfinite(e["total"]) and e["total"] > 0
        assert e["total"] >= layer.macs * hw["mac_energy_pj"] * (1 - 1e-6)
        assert e["mac"] == pytest.approx(layer.macs * hw["mac_energy_pj"], rel=1e-5)
        assert e["total"] == pytest.approx(e["mac"] + e["memory"], rel=1e-5)
        per_level = sum(v for op in e["memory_per_operand_level"].values() for v in op.values())
        assert e["memory"] == pytest.approx(per_level, rel=1e-4)
        assert set(r["accesses"]) == {"W", "I", "O"}
        assert 0 < r["utilization"]["spatial"] <= 1 + 1e-9
        assert r["search"]["evaluations"] > 0 and r["search"]["eval_seconds"] > 0


def test_records_match_current_translation(data):
    for layer in peer_layers():
        assert data["workloads"][layer.name] == zz.workload_layer(layer, data["workloads"][layer.name]["id"])


def test_translation_strided_conv_by_hand():
    layer = Layer.conv("r18.layer2.0.conv1", 64, 128, 28, 3, stride=2)  # padding 1, H = 57
    assert zz.workload_layer(layer, 3) == {
        "id": 3, "name": "r18.layer2.0.conv1", "operator_type": "Conv",
        "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
        "dimension_relations": ["ix=2*ox+1*fx", "iy=2*oy+1*fy"],
        "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
        "loop_sizes": [1, 128, 1, 28, 28, 64, 3, 3],
        "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
        "operand_source": {"I": 3, "W": 3},
        "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [55, 55], "padding": [[1, 1], [1, 1]],
    }


def test_translation_depthwise_and_fc_by_hand():
    dw = Layer.conv("mbv2.dw112", 32, 32, 112, 3, groups=32)  # G=32, K=C=1, padding 1
    assert zz.workload_layer(dw) == {
        "id": 0, "name": "mbv2.dw112", "operator_type": "Conv",
        "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
        "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"],
        "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
        "loop_sizes": [1, 1, 32, 112, 112, 1, 3, 3],
        "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
        "operand_source": {"I": 0, "W": 0},
        "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [112, 112], "padding": [[1, 1], [1, 1]],
    }
    fc = Layer.fc("bert.qkv", 768, 768, batch=128)
    assert zz.workload_layer(fc) == {
        "id": 0, "name": "bert.qkv", "operator_type": "Gemm",
        "equation": "O[b][k]+=I[b][c]*W[c][k]", "dimension_relations": [],
        "loop_dims": ["B", "C", "K"], "loop_sizes": [128, 768, 768],
        "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
        "operand_source": {"I": 0, "W": 0},
    }


def test_module_does_not_need_zigzag():
    assert "zigzag" not in sys.modules  # the harness only calls ZigZag in a subprocess


def test_job_has_every_peer_layer_once():
    job = zz.make_job()
    assert job["hardware"] == ["tpu_like", "eyeriss_like", "edge_tpu_like"]
    assert [wl["name"] for wl in job["layers"]] == [layer.name for layer in peer_layers()]
    assert [wl["id"] for wl in job["layers"]] == list(range(len(peer_layers())))
