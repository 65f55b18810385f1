"""``codesign fpga``: design evaluation, presets, search, and the error paths (one line, exit 2)."""
import json

import pytest

from codesign.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_zhang15_design_on_alexnet(capsys):
    rc, out, err = run(capsys, "fpga", "--board", "vc707", "--design", "Tm=64,Tn=7,Tr=13,Tc=13",
                       "--model", "zhang15", "--workload", "alexnet", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["model"] == "zhang15" and d["board"] == "vc707" and d["design"]["Tm"] == 64
    conv1 = d["layers"][0]
    # torchvision conv1: M=64, N=3, 55x55, 11x11: ceil(64/64) ceil(3/7) 55*55*121 = 366025 cycles at 100 MHz
    assert conv1["cycles"] == 366025 and conv1["bound"] == "compute"
    assert conv1["latency_ms"] == pytest.approx(3.66025)
    assert conv1["gops"] == pytest.approx(2 * 64 * 3 * 55 * 55 * 121 / 3.66025e-3 / 1e9)
    # DSP 448 x 5; BRAM: 7 input banks x 2 x 7 + 448 x 2 + 64 x 2 = 1122 BRAM18 (see the zhang15 tests)
    assert d["resources"]["dsp"] == 2240 and d["resources"]["bram36"] == 561
    assert d["total"]["cycles"] == sum(l["cycles"] for l in d["layers"])
    assert d["fits"] is True


def test_hotnas_design_and_text_output(capsys):
    rc, out, err = run(capsys, "fpga", "--board", "zcu102", "--model", "hotnas", "--workload", "mobilenet_v2",
                       "--design", "Tm=32,Tn=16,Tr=16,Tc=16,Tmd=128,Ip=10,Op=10,Wp=10")
    assert rc == 0, err
    assert "dwconv" in out and "resources: DSP 640/2520" in out and "ports 480/512 bits" in out


def test_preset_over_budget_is_one_line_exit_2(capsys):
    rc, out, err = run(capsys, "fpga", "--board", "zcu102", "--preset", "zcu102-3", "--workload", "mobilenet_v2")
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "BRAM36 1324 used > 912 available" in lines[0]
    assert "memory port width (bits) 672 used > 512 available" in lines[0]
    rc, out, err = run(capsys, "fpga", "--preset", "zcu102-3", "--workload", "mobilenet_v2", "--json",
                       "--allow-over-budget")
    assert rc == 0
    d = json.loads(out)
    assert d["fits"] is False and d["preset"] == "zcu102-3"
    assert {v["resource"] for v in d["violations"]} == {"BRAM36", "memory port width (bits)"}


@pytest.mark.parametrize("argv, needle", [
    (["--board", "zcu999", "--search"], "unknown board 'zcu999'"),
    (["--board", "zcu102", "--model", "zhang15", "--design", "Tm64,Tn=7"], "expected KEY=VALUE"),
    (["--board", "zcu102", "--model", "zhang15", "--design", "Tm=64,Tn=7"], "Tr: missing"),
    (["--board", "zcu102", "--model", "hotnas", "--design", "Tm=64,Tn=7,Tr=13,Tc=13"], "Tmd: missing"),
    (["--board", "zcu102", "--design", "Tm=a,Tn=7,Tr=13,Tc=13"], "Tm='a' is not an integer"),
    (["--board", "zcu102", "--preset", "zcu102-99"], "unknown hotnas preset"),
    (["--board", "zcu102"], "exactly one of --design, --preset or --search"),
    (["--board", "vc707", "--model", "zhang15", "--design", "Tm=64,Tn=8,Tr=13,Tc=13", "--limit", "dsp=2240"],
     "DSP 2560 used > 2240 available"),
    (["--board", "zcu102", "--search", "--workload", "no_such_net"], "unknown network"),
])
def test_errors_exit_2_with_one_line(capsys, argv, needle):
    rc, out, err = run(capsys, "fpga", *argv)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codesign: error:") and needle in lines[0], err


def test_search_json_fits(capsys):
    rc, out, err = run(capsys, "fpga", "--board", "pynq-z2", "--search", "--model", "zhang15", "--dtype", "fix16",
                       "--workload", "alexnet", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["result"]["fits"] is True and d["result"]["violations"] == []
    r = d["result"]["resources"]
    assert r["dsp"] <= 220 and r["bram36"] <= 140 and r["lut"] <= 53200
    assert d["design"]["Tm"] * d["design"]["Tn"] == r["dsp"]  # one DSP per 16-bit MAC


def test_list(capsys):
    rc, out, _ = run(capsys, "fpga", "--list")
    assert rc == 0
    for name in ("zcu102", "vc707", "zc706", "ultra96", "pynq-z2", "zcu102-9"):
        assert name in out
