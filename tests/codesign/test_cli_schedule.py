"""``codesign schedule`` and ``codesign evaluate --schedule`` end to end (in process)."""
import json

import pytest

from codesign.cli import main

WL = ["--accelerator", "eyeriss", "--workload", "mobilenet_v2", "--resolution", "32"]


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    p = tmp_path_factory.mktemp("sched") / "s.yaml"
    rc = main(["schedule", *WL, "--max-layers", "3", "--optimizer", "heuristic", "--out", str(p), "--json"])
    assert rc == 0
    return p


def test_schedule_prints_stacks_and_the_gain(capsys, saved):
    rc, out, _ = run(capsys, "schedule", *WL, "--max-layers", "3", "--optimizer", "heuristic")
    assert rc == 0
    assert "vs layer-by-layer: EDP" in out and "DRAM traffic" in out and "peak global buffer" in out
    assert "features.0.0 .. " in out  # at least the first stack is fused


def test_evaluate_replays_a_saved_schedule(capsys, saved):
    rc, out, _ = run(capsys, "schedule", *WL, "--max-layers", "3", "--optimizer", "heuristic", "--json")
    searched = json.loads(out)
    rc, out, _ = run(capsys, "evaluate", *WL, "--optimizer", "heuristic", "--schedule", str(saved), "--json")
    assert rc == 0
    replay = json.loads(out)
    assert replay["total"]["cycles"] == searched["total"]["cycles"]
    assert replay["total"]["energy_pj"] == pytest.approx(searched["total"]["energy_pj"], rel=1e-12)
    assert replay["total"]["edp"] <= replay["layer_by_layer"]["edp"]
    assert [s["layers"] for s in replay["stacks"]] == [s["layers"] for s in searched["stacks"]]


def test_evaluate_layer_schedule_is_the_default_output(capsys):
    rc, a, _ = run(capsys, "evaluate", *WL, "--optimizer", "heuristic", "--json")
    rc2, b, _ = run(capsys, "evaluate", *WL, "--optimizer", "heuristic", "--schedule", "layer", "--json")
    assert rc == rc2 == 0
    assert json.loads(a)["total"] == json.loads(b)["total"]


@pytest.mark.parametrize("text, match", [
    ("stacks: 3\n", "stacks"),
    ("stacks:\n- layers: [features.0.0, nope]\n", "no layer 'nope'"),
    ("stacks:\n- layers: [features.1.conv.0.0]\n", "expected a stack starting at"),
    ("stacks:\n- {layers: [features.0.0], tile: [2]}\n", "tile"),
    ("stacks:\n- {layers: [features.0.0], overlap: sometimes}\n", "overlap"),
])
def test_bad_schedule_files_are_one_line(capsys, tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    rc, out, err = run(capsys, "evaluate", *WL, "--optimizer", "heuristic", "--schedule", str(p))
    assert rc != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and match in err and "Traceback" not in err


def test_missing_schedule_file(capsys):
    rc, _, err = run(capsys, "evaluate", *WL, "--schedule", "nowhere.yaml")
    assert rc != 0 and "expected layer, fused or a schedule file" in err


def test_workload_without_edges_cannot_fuse(capsys, tmp_path):
    from models import Layer, Network
    p = tmp_path / "flat.json"
    p.write_text(json.dumps(Network("flat", [Layer.conv("a", 3, 8, 8, 3), Layer.conv("b", 8, 8, 8, 3)]).to_dict()))
    rc, _, err = run(capsys, "schedule", "--accelerator", "eyeriss", "--workload", str(p), "--optimizer", "heuristic")
    assert rc != 0 and "no graph edges" in err and len(err.strip().splitlines()) == 1


def test_memory_objective_and_peak_bound(capsys, tmp_path):
    from models.zoo._builder import NetBuilder
    b = NetBuilder("chain", 8, 16)
    entry = b.state()
    b.conv("pw1", 24, 1).dwconv("dw", 3).conv("pw2", 8, 1).add("add", entry)
    wl = tmp_path / "chain.json"
    wl.write_text(json.dumps(b.build(16).to_dict()))
    args = ["schedule", "--accelerator", "eyeriss", "--workload", str(wl), "--max-layers", "3",
            "--optimizer", "heuristic", "--json"]
    rc, out, _ = run(capsys, *args)
    free = json.loads(out)["total"]
    rc, out, _ = run(capsys, *args, "--objective", "memory")
    least = json.loads(out)["total"]
    assert rc == 0 and least["peak_glb_bytes"] < free["peak_glb_bytes"] and least["edp"] >= free["edp"]
    kb = (least["peak_glb_bytes"] + free["peak_glb_bytes"]) / 2 / 1024
    rc, out, _ = run(capsys, *args, "--max-peak-kb", f"{kb:.3f}")
    bounded = json.loads(out)["total"]
    assert rc == 0 and bounded["peak_glb_bytes"] <= kb * 1024 and bounded["edp"] >= free["edp"]
    # a bound below the least reachable peak: one error line that names that peak
    rc, out, err = run(capsys, *args, "--max-peak-kb", f"{least['peak_glb_bytes'] / 1024 * 0.9:.3f}")
    assert rc != 0 and len(err.strip().splitlines()) == 1
    assert f"least peak any candidate schedule reaches is {least['peak_glb_bytes'] / 1024:,.1f} kB" in err


def test_a_stack_cutting_a_fire_module_is_one_line(capsys, tmp_path):
    # features.3.expand3x3 reads the squeeze layer, which the stack starts after
    p = tmp_path / "fire.yaml"
    p.write_text("stacks:\n- layers: [features.0, features.3.expand1x1]\n"
                 "- layers: [features.3.expand3x3, features.4.squeeze]\n")
    rc, out, err = run(capsys, "evaluate", "--accelerator", "eyeriss", "--workload", "squeezenet1_1",
                       "--resolution", "32", "--optimizer", "heuristic", "--schedule", str(p))
    assert rc != 0 and out == "" and "Traceback" not in err
    assert err.strip().splitlines() == ["codesign: error: layer 'features.4.squeeze' reads 'features.3.expand1x1', "
                                        "before the stack's first layer 'features.3.expand3x3'"]
