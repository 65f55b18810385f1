"""``codesign map``, ``codesign evaluate`` and ``codesign bench mapper`` end to end (in process)."""
import json

import pytest

from accelerators import load_accelerator
from accelerators.cost import check_mapping, evaluate_mapping
from codesign.cli import main
from mappings.mapping import Mapping
from models.layer import Layer
from models.network import Network


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_map_text_prints_loop_nest_and_cost(capsys):
    rc, out, _ = run(capsys, "map", "--accelerator", "eyeriss", "--layer", "K=16,C=8,P=7,Q=7,R=3,S=3")
    assert rc == 0
    assert "for " in out and "spatial_for " in out and out.count("mac") >= 1
    assert "cycles" in out and "EDP" in out and "utilization" in out and "lower bound" in out


def test_map_json_is_a_valid_mapping_with_its_cost(capsys):
    spec = "K=16,C=8,P=7,Q=7,R=3,S=3,stride=2"
    rc, out, _ = run(capsys, "map", "--accelerator", "nvdla-256", "--layer", spec, "--optimizer", "heuristic",
                     "--objective", "energy", "--json")
    assert rc == 0
    d = json.loads(out)
    layer, acc = Layer.parse(spec), load_accelerator("nvdla-256")
    m = Mapping.from_dict(d["mapping"])
    assert check_mapping(layer, acc, *m.to_arrays()) == 0
    ref = evaluate_mapping(layer, acc, *m.to_arrays())
    assert d["cost"]["edp"] == pytest.approx(ref.edp, rel=1e-12)
    assert d["objective"] == "energy" and d["optimizer"] == "heuristic"
    assert d["ratio_to_lower_bound"] >= 1 and d["layer"]["dims"]["K"] == 16


@pytest.mark.parametrize("argv,msg", [
    (["map", "--accelerator", "eyeriss", "--layer", "K=64,C=6x4"], "not an integer"),
    (["map", "--accelerator", "eyeriss", "--layer", "K=64,Z=3"], "unknown key 'Z'"),
    (["map", "--accelerator", "eyeriss", "--layer", "K=-4"], "must be a positive integer"),
    (["map", "--accelerator", "nope", "--layer", "K=4"], "unknown accelerator 'nope'"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "no_such_net"], "no_such_net"),
])
def test_user_errors_are_one_line_and_exit_2(capsys, argv, msg):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.startswith("codesign: error:") and msg in err and len(err.strip().splitlines()) == 1


def test_missing_layer_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["map", "--accelerator", "eyeriss"])
    assert e.value.code == 2


def _toy_json(tmp_path):
    net = Network("toy", [Layer.conv("c1", 3, 8, 8, 3, stride=2), Layer.conv("c2", 8, 8, 8, 3),
                          Layer.conv("c3", 8, 8, 8, 3), Layer.fc("fc", 8, 10)])
    p = tmp_path / "toy.json"
    p.write_text(json.dumps(net.to_dict()))
    return p


def test_evaluate_network_file_json_and_disk_cache(capsys, tmp_path):
    path = _toy_json(tmp_path)
    cache = tmp_path / "cache"
    argv = ["evaluate", "--accelerator", "shidiannao", "--workload", str(path), "--cache-dir", str(cache), "--json"]
    rc, out, _ = run(capsys, *argv)
    assert rc == 0
    d = json.loads(out)
    assert [l["name"] for l in d["layers"]] == ["c1", "c2", "c3", "fc"]
    assert set(d["total"]) >= {"macs", "cycles", "latency_ms", "energy_pj", "edp", "utilization"}
    assert d["total"]["cycles"] == sum(l["cycles"] for l in d["layers"])
    assert all(l["ratio_to_lower_bound"] >= 1 for l in d["layers"])
    assert d["distinct_shapes"] == 3 and len(list(cache.rglob("*.json"))) == 3
    rc, out2, _ = run(capsys, *argv)
    d2 = json.loads(out2)
    assert d2["cache"]["disk_hits"] == 3 and d2["total"] == d["total"]


def test_evaluate_zoo_workload_text(capsys):
    rc, out, _ = run(capsys, "evaluate", "--accelerator", "nvdla-256", "--workload", "resnet18",
                     "--resolution", "32", "--optimizer", "heuristic")
    assert rc == 0
    assert "conv1" in out and "fc" in out and "total:" in out and "lower-bound EDP" in out


def test_bench_mapper_reports_ratios(capsys):
    rc, out, _ = run(capsys, "bench", "mapper", "--accelerators", "shidiannao", "--layers", "3", "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["cases"] == 3 and d["layers"] == 3
    assert 1.0 <= d["median_ratio"] <= d["worst_ratio"]
    assert {"median_seconds", "targets", "meets_targets", "cases_detail"} <= set(d)
