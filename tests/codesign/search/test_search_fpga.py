"""'codesign search --board': the NAAS outer loop over an FPGA template's designs on a board."""
import json

import numpy as np
import pytest

from accelerators.fpga import (HotNASDesign, Zhang15Design, check_resources, hotnas_network, load_board, load_preset,
                               zhang15_network)
from codesign.search.fpga_space import FPGASpace
from codesign.search.outer_loop import SearchConfig
from models import Layer, Network
from models.importers import load_workload

# At 16x16 input every layer of MobileNetV2 fits a 32x32 tile: the ZCU102 presets fit the board
# (at 224x224 their depthwise buffers need 1324-1806 BRAM36 of 912, so none fits).
RES = 16


@pytest.fixture(scope="module")
def mbv2():
    return load_workload("mobilenet_v2", resolution=RES)


@pytest.fixture(scope="module")
def zcu102_space(mbv2):
    return FPGASpace("zcu102", "hotnas", [mbv2], "edp")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    net = Network("tiny", [Layer.conv("c1", 3, 16, 16, 3, stride=2), Layer.conv("pw", 16, 32, 8, 1),
                           Layer.fc("fc", 32, 10)])
    p = tmp_path_factory.mktemp("wl") / "tiny.json"
    p.write_text(json.dumps(net.to_dict()))
    return net, str(p)


def test_decode_keeps_designs_within_the_board(zcu102_space, mbv2):
    space, board = zcu102_space, load_board("zcu102")
    assert space.dimension == 7
    rng = np.random.default_rng(0)
    fits = 0
    for _ in range(300):
        x = rng.random(space.dimension)
        d = space.decode(x)
        v = space._values(x)
        assert v["Tm"] * v["Tn"] + v["Tmd"] <= board.dsp  # DSPs and ports hold by construction
        assert v["Ip"] + v["Op"] + v["Wp"] == 32 and min(v["Ip"], v["Op"], v["Wp"]) >= 1
        broken = check_resources(HotNASDesign(**v), board, mbv2)
        assert (d is None) == bool(broken)  # rejected exactly when BRAM or LUTs overflow
        fits += d is not None
    assert fits > 150


def test_encode_lands_on_the_preset(zcu102_space):
    space = zcu102_space
    # zcu102-2 uses the whole 512-bit port (5 + 5 + 22 = 32 words): decoded exactly
    assert space.decode(space.encode(load_preset("zcu102-2"))) == load_preset("zcu102-2")
    # zcu102-4 uses 30 words: the decoded design widens Op to 32 - 10 - 10 = 12, nothing else
    d = space.decode(space.encode(load_preset("zcu102-4")))
    assert d.to_dict() == {**load_preset("zcu102-4").to_dict(), "Op": 12}
    assert d.dsp == 160 * 12 + 576 == 2496


def test_baseline_is_the_best_fitting_preset(zcu102_space, mbv2):
    board = load_board("zcu102")
    edp = {}
    for row in zcu102_space.presets:
        r = hotnas_network(mbv2, load_preset(row["preset"]), board)
        assert row["fits"] == r.fits and row["score"] == r.energy["edp_j_s"]
        if r.fits:
            edp[row["preset"]] = r.energy["edp_j_s"]
    assert "zcu102-3" not in edp  # 12 + 13 + 17 = 42 words = 672 port bits > 512
    assert len(edp) == 8
    assert zcu102_space.base_name == min(edp, key=edp.get)
    assert zcu102_space.base == load_preset(zcu102_space.base_name)
    # one workload: the space's evaluation is the template's own
    d = zcu102_space.decode(np.full(7, 0.3))
    assert zcu102_space.evaluate(d, mbv2).to_dict() == hotnas_network(mbv2, d, board).to_dict()


def test_one_design_for_several_workloads_has_buffers_for_all(mbv2, tiny):
    from accelerators.fpga import hotnas_resources
    from accelerators.fpga.power import network_energy
    net, _ = tiny
    space = FPGASpace("zcu102", "hotnas", [net, mbv2], "latency")
    d = HotNASDesign(Tm=16, Tn=8, Tr=16, Tc=16, Tmd=64, Ip=10, Op=10, Wp=12)
    both = hotnas_resources(d, list(net.layers) + list(mbv2.layers))
    # tiny has no depthwise layer: alone, both depthwise buffers hold full 16x16 tiles (64 banks x 2
    # copies x 1 BRAM18 each); with MobileNetV2 they are sized for its largest depthwise maps:
    # 10x10 padded inputs (100 words: BRAM18) and 8x8 outputs (64 words: LUT RAM); plus 8 x 2 BRAM18
    # of 16x16 convolution inputs in both cases
    assert space.resources(d) == both and (both.bram18, hotnas_resources(d, net).bram18) == (144, 272)
    r, alone = space.evaluate(d, net), hotnas_network(net, d, "zcu102")
    assert r.cycles == alone.cycles and r.resources == both  # timing is the network's, energy the whole design's
    assert r.energy == network_energy(load_board("zcu102"), alone.layers, both) != alone.energy
    lat = [space.evaluate(d, n).latency_ms for n in (net, mbv2)]
    assert space.score(d) == pytest.approx((lat[0] * lat[1]) ** 0.5, rel=1e-12)


def test_no_preset_fits_mobilenet_v2_at_224():
    space = FPGASpace("zcu102", "hotnas", [load_workload("mobilenet_v2")], "edp")
    assert space.base is None and not any(p["fits"] for p in space.presets)
    assert [p["violations"][0] for p in space.presets][:1] == ["BRAM36 1324 used > 912 available"]


def test_config_round_trip_and_old_configs():
    cfg = SearchConfig(workloads=["w"], envelope=None, board="zcu102", fpga_model="zhang15")
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg
    asic = SearchConfig(workloads=["w"])
    assert "board" not in asic.to_dict() and "fpga_model" not in asic.to_dict()
    old = {k: v for k, v in asic.to_dict().items()}
    assert SearchConfig.from_dict(old) == asic
    assert SearchConfig.from_dict(old).board is None and SearchConfig.from_dict(old).fpga_model == "hotnas"


def test_search_finds_a_fitting_design_no_worse_than_the_preset(tmp_path, capsys, mbv2):
    from codesign.cli import main
    from codesign.report import load_result

    run = tmp_path / "run"
    args = ["search", "--board", "zcu102", "--workload", "mobilenet_v2", "--resolution", str(RES), "--budget", "24",
            "--batch", "8", "--workers", "1", "--seed", "1", "--quiet"]
    assert main([*args, "--out", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res == json.loads((run / "result.json").read_text())
    board = load_board("zcu102")
    design = HotNASDesign(**res["design"])
    assert check_resources(design, board, mbv2) == []
    ref = hotnas_network(mbv2, design, board).to_dict()
    assert res["found"]["workloads"]["mobilenet_v2"] == ref
    base = res["baseline"]
    assert base["preset"] == FPGASpace("zcu102", "hotnas", [mbv2], "edp").base_name
    bt, ft = base["workloads"]["mobilenet_v2"]["total"], ref["total"]
    assert ft["edp_j_s"] <= bt["edp_j_s"]
    assert res["ratios"]["mobilenet_v2"]["edp_improvement"] == bt["edp_j_s"] / ft["edp_j_s"] >= 1.0
    assert res["ratios"]["mobilenet_v2"]["speedup"] == bt["latency_ms"] / ft["latency_ms"]
    assert res["found"]["score"] == ft["edp_j_s"]
    # the first candidate is the baseline preset itself (its ports already fill 512 bits)
    first = json.loads(next(l for l in (run / "journal.jsonl").read_text().splitlines() if '"i":0,' in l))
    assert first["design"] == load_preset(base["preset"]).to_dict() and first["score"] == bt["edp_j_s"]
    assert len(res["convergence"]) == 24 and res["convergence"][-1]["best_score"] == ft["edp_j_s"]
    assert sum(res["evaluations"].values()) == 24
    md = (run / "report.md").read_text()
    assert f"EDP improvement over preset {base['preset']}" in md and (run / "convergence.png").stat().st_size > 0
    # 'codesign report' rewrites the same report from result.json
    (run / "report.md").unlink()
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.startswith(f"EDP improvement over {base['preset']} (geomean): ")
    assert (run / "report.md").read_text() == md
    assert load_result(run)["kind"] == "fpga"
    # a run killed after 10 evaluations resumes to the same result
    part = tmp_path / "part"
    part.mkdir()
    (part / "config.yaml").write_text((run / "config.yaml").read_text())
    (part / "journal.jsonl").write_text("".join((run / "journal.jsonl").read_text().splitlines(True)[:10]) + '{"i":')
    assert main(["search", "--resume", str(part), "--quiet", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["design"] == res["design"] and resumed["convergence"] == res["convergence"]
    # same seed, same search (also in worker processes)
    workers_2 = [*args[:args.index("--workers") + 1], "2", *args[args.index("--workers") + 2:]]
    assert main([*workers_2, "--out", str(tmp_path / "again"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["design"] == res["design"] and again["convergence"] == res["convergence"]


def test_zhang15_without_presets_has_no_baseline(tmp_path, capsys, tiny):
    from codesign.cli import main
    from codesign.report import write_report

    net, path = tiny
    run = tmp_path / "z"
    assert main(["search", "--board", "pynq-z2", "--fpga-model", "zhang15", "--workload", path, "--objective",
                 "latency", "--budget", "16", "--workers", "1", "--quiet", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "no zhang15 preset of pynq-z2 fits these workloads: no baseline" in out
    res = json.loads((run / "result.json").read_text())
    assert res["baseline"] is None and res["ratios"] is None and res["edp_improvement_geomean"] is None
    d = res["design"]
    assert d["dtype"] == "fp32"
    ref = zhang15_network(net, Zhang15Design(**d), "pynq-z2")
    assert ref.fits and res["found"]["workloads"][path] == ref.to_dict()
    assert res["found"]["score"] == ref.latency_ms  # objective latency: the score is in ms
    best = min(e["score"] for e in map(json.loads, (run / "journal.jsonl").read_text().splitlines())
               if e["status"] == "ok")
    assert best == ref.latency_ms
    data = write_report(run)
    assert data["accelerators"]["baseline"]["name"] is None
    assert "no baseline" in (run / "report.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--board", "zcu102", "--envelope", "eyeriss"], "cannot be combined with --envelope"),
    (["--board", "zcu102", "--space", "ofa-mbv3"], "cannot be combined with --space"),
    (["--fpga-model", "zhang15"], "--fpga-model needs --board"),
    (["--board", "nosuch"], "unknown board 'nosuch'"),
])
def test_board_errors_are_one_line(tmp_path, capsys, argv, message):
    from codesign.cli import main
    assert main(["search", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
