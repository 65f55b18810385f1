"""``codesign search --schedule fused``: candidates and the baseline costed depth-first."""
import json

import pytest
import yaml

from codesign.cli import main
from models.assets import have_asset
from models.zoo._builder import NetBuilder


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    b = NetBuilder("chain", 8, 16)
    entry = b.state()
    b.conv("pw1", 24, 1).dwconv("dw", 3).conv("pw2", 8, 1).add("add", entry)
    p = tmp_path_factory.mktemp("wl") / "chain.json"
    p.write_text(json.dumps(b.build(16).to_dict()))
    return str(p)


def test_fused_search_reports_both_baselines(chain, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["search", "--workload", chain, "--budget", "2", "--batch", "2", "--workers", "1", "--mapper", "heuristic",
               "--final-mapper", "heuristic", "--schedule", "fused", "--out", str(out), "--quiet"])
    assert rc == 0
    assert "vs eyeriss layer by layer: EDP" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["schedule"] == "fused"
    res = json.loads((out / "result.json").read_text())
    f = res["found"]["workloads"][chain]
    assert f["total"]["schedule"] == "fused" and f["schedule"]["schedule"] == "fused"
    assert f["total"]["edp"] <= f["layer_by_layer_total"]["edp"]  # the search may keep layer by layer
    assert f["total"]["edp"] == pytest.approx(f["total"]["energy_pj"] * f["total"]["cycles"], rel=1e-12)
    vs = res["ratios_vs_layer_by_layer_baseline"][chain]["edp_improvement"]
    base = res["baseline"]["workloads"][chain]
    assert vs == pytest.approx(base["layer_by_layer_total"]["edp"] / f["total"]["edp"], rel=1e-12)
    assert (out / "report.md").exists()


@pytest.mark.parametrize("extra, match", [
    (["--space", "ofa-mbv3", "--objective", "accuracy"], "--schedule does not apply"),
    (["--board", "zcu102"], "--schedule fused"),
])
def test_fused_search_refuses_other_targets(tmp_path, capsys, extra, match):
    rc = main(["search", "--schedule", "fused", "--out", str(tmp_path / "r"), *extra])
    err = capsys.readouterr().err
    assert rc != 0 and match in err and len(err.strip().splitlines()) == 1


def test_fused_search_needs_graph_edges(tmp_path, capsys):
    from models import Layer, Network
    p = tmp_path / "flat.json"
    p.write_text(json.dumps(Network("flat", [Layer.conv("a", 3, 8, 8, 3), Layer.conv("b", 8, 8, 8, 3)]).to_dict()))
    rc = main(["search", "--workload", str(p), "--schedule", "fused", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc != 0 and "no graph edges" in err and not (tmp_path / "r").exists()


def test_fused_search_starts_at_the_baseline_and_its_storage_trade_off(chain, tmp_path):
    # Eyeriss: 520 B of register file per PE (528 in the space's 16-byte steps) and 108 kB of
    # global buffer. After the baseline, the search tries the register files cut to 1/8, 1/4
    # and 1/2 (64, 128, 256 B per PE), every freed byte in the buffer:
    # 168 x (528 - 64) + 109,248 = 187,200 B; x (528 - 128) -> 176,448; x (528 - 256) -> 154,944.
    out = tmp_path / "run"
    assert main(["search", "--workload", chain, "--budget", "4", "--batch", "4", "--workers", "1",
                 "--mapper", "heuristic", "--final-mapper", "heuristic", "--schedule", "fused",
                 "--out", str(out), "--quiet"]) == 0
    rows = sorted((json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()),
                  key=lambda r: r["i"])
    got = [(r["accelerator"]["rf"]["capacity_bytes"], r["accelerator"]["glb"]["capacity_bytes"]) for r in rows]
    assert got == [(528, 109248), (64, 187200), (128, 176448), (256, 154944)]


@pytest.mark.skipif(not have_asset("nasbench201/hw360_cifar100_pi5.csv.gz"),
                    reason="needs the HW-NAS-Bench-360 table: set CODESIGN_ASSETS")
def test_fused_sub_network_co_search_re_ranks_the_best_cells(tmp_path, capsys, monkeypatch):
    """With --space, the evolution ranks cells layer by layer; its feasible cells of least EDP
    are re-costed under their searched schedules and the least fused EDP wins."""
    from codesign.search import outer_loop
    from accelerators import accelerator_from_dict
    from codesign.search.outer_loop import SearchConfig, _fused_score
    from models.spaces import get_space

    monkeypatch.setattr(outer_loop, "FUSED_FINALISTS", 2)
    d = tmp_path / "nb"
    rc = main(["search", "--space", "nasbench201", "--accuracy", "table", "--min-accuracy", "0.6", "--budget", "1",
               "--batch", "1", "--population", "4", "--generations", "1", "--mapper", "heuristic",
               "--subnet-mapper", "heuristic", "--final-mapper", "heuristic", "--schedule", "fused",
               "--workers", "1", "--out", str(d), "--json", "--quiet"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    res = json.loads(out.out)
    found = res["found"]
    fin = found["fused_finalists"]
    assert len(fin) == 2 and all(f["accuracy"] >= 0.6 for f in fin)
    assert fin[0]["layer_by_layer_edp"] <= fin[1]["layer_by_layer_edp"]
    best = min(fin, key=lambda f: f["edp"])
    assert found["subnet"]["arch"] == best["arch"]
    # the winner's fused EDP, costed again from scratch on the found accelerator
    cfg = SearchConfig.from_dict(res["config"])
    again = _fused_score(get_space("nasbench201").to_network(best["arch"]), accelerator_from_dict(res["accelerator"]),
                         cfg, "heuristic", detail=False)["edp"]
    assert again == pytest.approx(best["edp"], rel=1e-12)
    assert all(f["edp"] <= f["layer_by_layer_edp"] * (1 + 1e-12) for f in fin)  # layer by layer is a candidate
    sub = found["workloads"]["subnet"]
    assert sub["total"]["schedule"] == "fused" and sub["total"]["edp"] <= sub["layer_by_layer_total"]["edp"]
    assert res["baseline"]["workloads"]["subnet"]["total"]["schedule"] == "fused"
    assert res["ratios_vs_layer_by_layer_baseline"]["subnet"]["edp_improvement"] > 0
    report = (d / "report.md").read_text()
    assert "re-costed under their searched depth-first schedules" in report and "| yes |" in report
