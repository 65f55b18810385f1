"""``codesign accuracy --space nasbench201``: the measured accuracy of a cell, zero-cost proxy
scores (``--proxy``), and one-line errors with exit code 2."""
import json

import pytest

from codesign.cli import main
from models.assets import have_asset
from models.nb201_table import HW360_ASSET, load_hw360
from models.proxies import score_cells

NEEDS = "needs the NAS-Bench-201 table: set CODESIGN_ASSETS to the shared data folder"
needs_table = pytest.mark.skipif(not have_asset(HW360_ASSET), reason=NEEDS)
FIRST = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
SMALL = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def run(capsys, *argv):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # a usage error
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def error_line(capsys, *argv) -> str:
    rc, out, err = run(capsys, "accuracy", *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and "Traceback" not in err, (rc, out, err)
    assert lines[-1].startswith("codesign: error: ") and sum(l.startswith("codesign:") for l in lines) == 1
    return lines[-1]


@needs_table
def test_measured_accuracy_of_a_cell(capsys):
    rc, out, err = run(capsys, "accuracy", "--space", "nasbench201", "--arch", FIRST)
    assert rc == 0 and err == "" and "0.5291 (52.91 %)" in out and FIRST in out
    rc, out, _ = run(capsys, "accuracy", "--space", "nas-bench-201", "--arch",
                     json.dumps({"ops": ["avg_pool_3x3", "nor_conv_1x1", "skip_connect",
                                         "nor_conv_1x1", "skip_connect", "skip_connect"]}), "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["accuracy"] == pytest.approx(0.529133) and doc["arch"] == FIRST


def test_missing_table_is_one_error_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_ASSETS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    load_hw360.cache_clear()
    try:
        assert "nasbench201/hw360_cifar100_pi5.csv.gz' not found" in error_line(
            capsys, "--space", "nasbench201", "--arch", FIRST)
    finally:
        load_hw360.cache_clear()


def test_proxy_scores_match_the_api(capsys):
    rc, out, err = run(capsys, "accuracy", "--space", "nasbench201", "--arch", SMALL,
                       "--proxy", "params,synflow,naswot", "--json")
    assert rc == 0 and err == ""
    doc = json.loads(out)
    api = score_cells([SMALL], ["params", "synflow", "naswot"])
    assert doc["arch"] == SMALL and doc["proxies"] == ["params", "synflow", "naswot"]
    assert doc["scores"] == {k: float(v[0]) for k, v in api.items()}
    assert doc["batch_size"] == {"params": None, "synflow": 1, "naswot": 16} and doc["seed"] == 0
    rc, out, _ = run(capsys, "accuracy", "--space", "nasbench201", "--arch", SMALL, "--proxy", "params,synflow")
    assert rc == 0 and out.splitlines()[1].split() == ["params", "105492"]
    assert f"{api['synflow'][0]:.6g}" in out and "higher is better" in out


def test_seed_and_batch_size_change_the_scores(capsys):
    base = ["accuracy", "--space", "nasbench201", "--arch", SMALL, "--proxy", "synflow", "--json"]
    s0 = json.loads(run(capsys, *base)[1])["scores"]["synflow"]
    s1 = json.loads(run(capsys, *base, "--seed", "1")[1])["scores"]["synflow"]
    doc = json.loads(run(capsys, *base, "--batch-size", "2", "--resolution", "16")[1])
    assert s0 != s1 and doc["batch_size"] == {"synflow": 2} and doc["resolution"] == 16


def test_a_file_of_cells_with_rank(capsys, tmp_path):
    f = tmp_path / "cells.txt"
    f.write_text(f"# three cells\n{SMALL}\n\n{json.dumps({'ops': ['none'] * 6})}\n"
                 "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|\n")
    rc, out, err = run(capsys, "accuracy", "--space", "nasbench201", "--arch", f, "--proxy", "synflow,rank", "--json")
    assert rc == 0, err
    cells = json.loads(out)["cells"]
    assert [c["arch"] for c in cells][1] == NONE
    assert cells[1]["scores"] == {"synflow": 0.0, "rank": 1.0}
    assert json.loads(out)["rank_proxies"] == ["synflow", "jacob_cov", "snip"]
    rc, out, _ = run(capsys, "accuracy", "--space", "nasbench201", "--arch", f, "--proxy", "params")
    assert rc == 0 and len(out.strip().splitlines()) == 5   # header, 3 cells, footer


@pytest.mark.parametrize("argv, needle", [
    (["--proxy", "zico"], "unknown proxy 'zico' (known: params, macs, synflow"),
    (["--proxy", "synflow,synflow"], "synflow given twice"),
    (["--proxy", ","], "expected NAME"),
    (["--proxy", "rank"], "rank ranks cells against each other"),
    (["--proxy", "synflow", "--resolution", "2"], "the proxies accept 4 to 128 pixels"),
    (["--proxy", "synflow", "--batch-size", "0"], "--batch-size: 0 is out of range"),
    (["--seed", "3"], "--seed: only with --proxy"),
    (["--resolution", "64"], "--resolution: only with --proxy"),
    (["--net-config", "x"], "ofa-mbv3 only"),
])
def test_bad_proxy_arguments(capsys, argv, needle):
    assert needle in error_line(capsys, "--space", "nasbench201", "--arch", SMALL, *argv)


@pytest.mark.parametrize("arch, needle", [
    ("|nor_conv_3x3~0|+|none~0|", "--arch: nasbench201: arch string must have 3"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operator 'conv'"),
    ('{"ops": ["none"]}', "must list 6 operators"),
    ('{"ops": [', "malformed JSON"),
    ("nope", "'nope' is not a NAS-Bench-201 cell"),
])
def test_bad_cells(capsys, arch, needle):
    assert needle in error_line(capsys, "--space", "nasbench201", "--arch", arch, "--proxy", "params")


def test_bad_cell_files(capsys, tmp_path):
    f = tmp_path / "cells.txt"
    f.write_text(f"{SMALL}\n|none~0|\n")
    assert "--arch" in (line := error_line(capsys, "--space", "nasbench201", "--arch", f, "--proxy", "params"))
    assert "line 2" in line
    f.write_text("# nothing\n\n")
    assert "no cells in the file" in error_line(capsys, "--space", "nasbench201", "--arch", f)
    assert "not a file" in error_line(capsys, "--space", "nasbench201", "--arch", tmp_path)
    assert "give --arch CELL" in error_line(capsys, "--space", "nasbench201")


def test_proxies_on_other_spaces_are_refused(capsys):
    arch = json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 224})
    assert "zero-cost proxies are available for --space nasbench201 only" in error_line(
        capsys, "--arch", arch, "--proxy", "synflow")
    assert "--seed and --batch-size apply to --proxy" in error_line(capsys, "--arch", arch, "--seed", "1")
    assert "available: ofa-mbv3, ofa-resnet50, nasbench201" in error_line(
        capsys, "--space", "darts", "--arch", arch, "--proxy", "synflow")
