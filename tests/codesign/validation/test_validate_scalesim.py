"""Our cost model against SCALE-Sim, under SCALE-Sim's own mapping (codesign validate scalesim)."""
import json

import pytest

from accelerators.cost import evaluate_mapping
from codesign.validation.peers import scalesim as ss
from codesign.validation.peers import scalesim_compare as sc
from codesign.validation.peers.layerset import peer_layers
from models.layer import Layer


@pytest.mark.parametrize("name", list(ss.configs()))
def test_steady_cycles_equal_scalesims_closed_form(name):
    # The closed form is SCALE-Sim's per-fold demand-line count read off its source (ws / is:
    # 2R + C + T - 2 lines per fold, os: R + C + T - 2), independent of our model; SCALE-Sim
    # reports the 0-based cycle of the last write, one less per group run.
    c = ss.configs()[name]
    acc = sc.accelerator(ss._config_summary(c))
    for layer in peer_layers():
        t = ss.translate(layer)
        cost = evaluate_mapping(layer, acc, *sc.mapping(layer, c["dataflow"]))
        assert cost.valid, (layer.name, cost.reason)
        closed = ss.compute_cycles_closed_form(t, c["rows"], c["cols"], c["dataflow"])
        assert cost.compute_cycles + cost.pipeline_cycles == closed + t["multiplier"], layer.name


def test_one_fold_by_hand():
    # FC 512 -> 1000 on a 32 x 32 weight-stationary array: rows take the 512 inputs (16 folds),
    # columns the 1000 outputs (32 folds): 512 folds, each 2*32 + 32 + 1 - 2 = 95 cycles (one
    # output pixel streams through): 48,640 cycles, where an ideal array computes it in 512.
    layer = Layer.fc("fc", 512, 1000)
    cfg = {"array_rows": 32, "array_cols": 32, "dataflow": "ws", "word_size_bytes": 1, "bandwidth_words_per_cycle": 10}
    cost = evaluate_mapping(layer, sc.accelerator(cfg), *sc.mapping(layer, "ws"))
    assert (cost.compute_cycles, cost.pipeline_cycles) == (512, 512 * 94)


@pytest.fixture(scope="module")
def result():
    try:
        data = ss.load_data()
    except FileNotFoundError:
        pytest.skip("no checked-in SCALE-Sim data")
    return data, sc.compare(data)


def test_every_layer_within_5_percent_of_scalesim(result):
    data, res = result
    assert len(res["rows"]) == len(data["records"])
    for r in res["rows"]:
        assert abs(r["steady_ratio"] - 1) <= 0.05, r
    for name, s in res["summary"].items():
        assert s["steady_within_5pct"] == s["layers"] and s["steady_srcc"] > 0.99, (name, s)


def test_cli_validate_scalesim(result, capsys, tmp_path):
    from codesign.cli import main

    _, res = result
    assert main(["validate", "scalesim", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["summary"] == json.loads(json.dumps(res["summary"]))
    assert main(["validate", "scalesim", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "ws_32x32" in out and "r18.fc" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["validate", "scalesim", "--data", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("codesign: error: cannot read peer data")
    assert main(["validate", "scalesim", "--data", str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err
    bad.write_text('{"records": [{}], "configs": {}}')
    assert main(["validate", "scalesim", "--data", str(bad)]) == 2
    assert "malformed" in capsys.readouterr().err
