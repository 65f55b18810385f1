"""``codesign accuracy``: the predictor behind the CLI, and one-line errors with exit code 2."""
import json

import pytest

from codesign.cli import main
from models.assets import asset_path, have_asset

NEEDS = "set CODESIGN_ASSETS to the shared data directory (ofa/)"
needs_mbv3 = pytest.mark.skipif(not have_asset("ofa/acc_predictor.pth"), reason=NEEDS)
LARGEST = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@needs_mbv3
def test_largest_subnet_json(capsys):
    rc, out, err = run(capsys, "accuracy", "--space", "ofa-mbv3", "--arch", json.dumps(LARGEST), "--json")
    assert rc == 0 and err == ""
    doc = json.loads(out)
    assert doc["accuracy"] == pytest.approx(0.8359, abs=5e-4)
    assert doc["space"] == "ofa-mbv3" and doc["arch"] == LARGEST


@needs_mbv3
def test_arch_from_file_and_resolution_override(capsys, tmp_path):
    f = tmp_path / "arch.json"
    f.write_text(json.dumps({**LARGEST, "r": 224}))
    rc, out, _ = run(capsys, "accuracy", "--arch", str(f), "--resolution", "160", "--json")
    assert rc == 0 and json.loads(out)["arch"]["r"] == 160
    rc, out, _ = run(capsys, "accuracy", "--arch", str(f))
    assert rc == 0 and "0.8359" in out


@needs_mbv3
def test_net_config_folder(capsys):
    """note10 net: 1 + 15 MBConv blocks with depths 2,3,3,3,4 between channel changes, r=224 in run.config."""
    path = asset_path("ofa/specialized/note10_lat-30ms_top1-78.4_finetune-75")
    rc, out, err = run(capsys, "accuracy", "--net-config", str(path), "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["arch"]["d"] == [2, 3, 3, 3, 4] and doc["arch"]["r"] == 224
    assert 0.7 < doc["accuracy"] < 0.85


@pytest.mark.skipif(not have_asset("ofa/specialized"), reason=NEEDS)
def test_width_10_net_config_is_refused(capsys):
    path = asset_path("ofa/specialized/LG-G8_lat-11ms_top1-73.0_finetune-25")
    rc, out, err = run(capsys, "accuracy", "--net-config", str(path))
    assert rc == 2 and out == "" and "width" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,needle", [
    (["--arch", '{"ks": [7, 7'], "malformed JSON"),
    (["--arch", json.dumps({**LARGEST, "ks": [7] * 19})], "20 entries"),
    (["--arch", json.dumps({**LARGEST, "d": [4] * 6})], "5 entries"),
    (["--arch", json.dumps({**LARGEST, "e": [5] * 20})], "not one of"),
    (["--space", "darts", "--arch", json.dumps(LARGEST)], "no accuracy predictor"),
    ([], "exactly one of"),
    (["--arch", json.dumps(LARGEST), "--net-config", "x"], "exactly one of"),
    (["--net-config", "/nonexistent/net.config"], "not found"),
    (["--space", "ofa-resnet50", "--net-config", "x"], "ofa-mbv3 only"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    rc, out, err = run(capsys, "accuracy", *argv)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("codesign: error:")
