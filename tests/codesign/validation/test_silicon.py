"""The Eyeriss v1 silicon anchors: the data file, its loader and the comparison (two layers)."""
import json
import math
import re
from pathlib import Path

import pytest

from codesign.validation import silicon as si

DOC = Path(__file__).resolve().parents[3] / "docs" / "silicon.md"
# JSSC 2017 Table III: padded ifmap height H of the AlexNet layers
TABLE_III_H = {"CONV1": 227, "CONV2": 31, "CONV3": 15, "CONV4": 15, "CONV5": 15}


@pytest.fixture(scope="module")
def data():
    return si.load_anchors()


@pytest.fixture(scope="module")
def result():
    return si.compare(layers=["AlexNet.CONV5", "VGG-16.CONV5-1"])


def test_file_covers_both_tables(data):
    assert data["clock_mhz"] == 200 and data["num_pes"] == 168 and data["word_bits"] == 16
    assert data["batch"] == {"AlexNet": 4, "VGG-16": 3}
    names = [(r["network"], r["layer"]) for r in data["layers"]]
    assert [n for net, n in names if net == "AlexNet"] == [f"CONV{i}" for i in range(1, 6)]
    assert len([n for net, n in names if net == "VGG-16"]) == 13
    assert any("doi:10.1109/JSSC.2016.2616357" in s for s in data["source"])
    for r in data["layers"]:
        assert r["shape"]["N"] == data["batch"][r["network"]]
        assert r["source"]


def test_macs_from_shape_equal_published(data):
    for r in data["layers"]:
        lay = si.layer_of(r)
        assert round(lay.macs / 1e9, 2) == r["measured"]["macs_g"], lay.name  # Tables V / VI
        assert lay.macs == lay.N * r["caffe_macs_per_image"], lay.name


def test_alexnet_shapes_are_table_iii(data):
    for r in data["layers"]:
        if r["network"] == "AlexNet":
            lay = si.layer_of(r)
            assert lay.H == lay.W_in == TABLE_III_H[r["layer"]], lay.name
            assert lay.H - 2 * lay.padding in (227, 27, 13)  # the unpadded ifmap


def test_layers_sum_to_published_totals(data):
    for net, tot in data["totals"].items():
        rows = [r["measured"] for r in data["layers"] if r["network"] == net]
        tol = 0.05 * len(rows) + 1e-9  # each value rounded to its last printed digit
        for k in ("latency_ms", "total_latency_ms", "glb_mb", "dram_mb"):
            assert sum(m[k] for m in rows) == pytest.approx(tot[k], abs=tol), (net, k)
        assert sum(m["macs_g"] for m in rows) == pytest.approx(tot["macs_g"], abs=0.005 * len(rows))


def test_megabytes_are_16bit_accesses(data):
    # the paper's DRAM access per MAC: 0.0029 (AlexNet), 0.0035 (VGG-16); an access is 2 bytes, MB 1e6
    for net, per_mac in (("AlexNet", 0.0029), ("VGG-16", 0.0035)):
        macs = sum(si.layer_of(r).macs for r in data["layers"] if r["network"] == net)
        assert round(data["totals"][net]["dram_mb"] * 1e6 / 2 / macs, 4) == per_mac


def _write(tmp_path, doc):
    p = tmp_path / "anchors.json"
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("source"), "'source' must be a non-empty list"),
    (lambda d: d.update(clock_mhz=0), "'clock_mhz' must be a positive number"),
    (lambda d: d.update(layers=[]), "'layers' must be a non-empty list"),
    (lambda d: d["layers"][1]["shape"].pop("K"), r"layers\[1\] \(AlexNet CONV2\): shape.K=None"),
    (lambda d: d["layers"][0]["shape"].update(C=2.5), r"shape.C=2.5 must be a positive integer"),
    (lambda d: d["layers"][0]["shape"].update(padding=-1), "shape.padding=-1 must be a non-negative"),
    (lambda d: d["layers"][2]["measured"].update(dram_mb=-3.0), r"measured.dram_mb=-3.0 must be a positive"),
    (lambda d: d["layers"][2]["measured"].pop("latency_ms"), "measured.latency_ms=None"),
    (lambda d: d["layers"].append(dict(d["layers"][0])), "duplicate layer AlexNet CONV1"),
])
def test_loader_rejects_malformed(tmp_path, data, mutate, message):
    doc = json.loads(json.dumps(data))
    mutate(doc)
    with pytest.raises(si.SiliconError, match=message):
        si.load_anchors(_write(tmp_path, doc))


def test_loader_rejects_bad_json_and_missing_file(tmp_path):
    with pytest.raises(si.SiliconError, match=r"anchors.json: malformed JSON"):
        si.load_anchors(_write(tmp_path, '{"source": ['))
    with pytest.raises(si.SiliconError, match="cannot read"):
        si.load_anchors(tmp_path / "absent.json")


def test_compare_gives_finite_positive_ratios(result):
    assert [(r["network"], r["layer"]) for r in result["rows"]] == [("AlexNet", "CONV5"), ("VGG-16", "CONV5-1")]
    for r in result["rows"]:
        for k, v in r["ratio"].items():
            assert math.isfinite(v) and v > 0, (r["layer"], k)
        m = r["model"]
        # no mapping beats every PE busy every cycle, nor moves less than each tensor once
        assert m["latency_ms"] >= r["macs"] / (168 * result["clock_mhz"] * 1e3) * (1 - 1e-9)
        assert m["dram_mb"] >= r["compulsory_dram_mb"] * (1 - 1e-9)
        assert 0 < r["measured"]["utilization"] <= 1
    for scope in (result["summary"], *result["by_network"].values()):
        for v in scope.values():
            assert v["min"] <= v["geomean"] <= v["max"]
    assert all(-1 <= v["srcc"] <= 1 for v in result["summary"].values() if v["srcc"] is not None)
    assert all(v["srcc"] is None for v in result["by_network"]["AlexNet"].values())  # one layer


def test_unknown_layer(capsys):
    with pytest.raises(si.SiliconError, match="unknown anchored layer"):
        si.compare(layers=["AlexNet.CONV9"])
    assert si.main(["--layers", "AlexNet.CONV9"]) == 2
    assert "unknown anchored layer" in capsys.readouterr().err


def test_table_and_main(result, capsys):
    text = si.table(result)
    assert "AlexNet CONV5" in text and "VGG-16 CONV5-1" in text and "geomean" in text
    assert si.main(["--layers", "AlexNet.CONV5"]) == 0
    assert "AlexNet CONV5" in capsys.readouterr().out


def test_no_machine_paths():
    for p in (si.DATA_PATH, DOC):
        text = p.read_text()
        assert not re.search(r"(?<![\w.<>-])/(?:tmp|home|root|work|opt)/", text), p.name
