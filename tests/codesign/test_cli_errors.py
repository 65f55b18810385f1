"""Bad command lines: exit 2 and one ``codesign: error:`` line (last on stderr), no traceback,
within seconds; bounded numbers state their range; repeated or contradictory options are
errors; no NaN reaches a JSON result; latency tables are checked cell by cell."""
import argparse
import gzip
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.cli import main
from codesign.cli._common import finite, float_in, int_in, parse_kv, to_json
from models.errors import CodesignError


def run(capsys, *argv):
    t0 = time.monotonic()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # a usage error
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err, time.monotonic() - t0


def error_line(capsys, *argv, seconds: float = 10.0) -> str:
    """Run ``codesign ARGV``; check the failure is one clean error line and return it."""
    rc, out, err, dt = run(capsys, *argv)
    lines = err.strip().splitlines()
    errors = [l for l in lines if l.startswith("codesign: error: ")]
    assert rc == 2, (rc, err)
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err and out == ""
    assert dt < seconds, f"{dt:.1f} s before the error"
    return errors[0]


# ---------------------------------------------------------------- bounded numbers

@pytest.mark.parametrize("argv, needle", [
    (["bench", "costmodel", "--mappings", "-5"], "bench costmodel: argument --mappings: -5 is out of range: "
                                                 "accepted 1 to 10,000,000"),
    (["bench", "costmodel", "--mappings", "0"], "accepted 1 to 10,000,000"),
    (["bench", "costmodel", "--mappings", str(10 ** 12)], "out of range"),
    (["bench", "costmodel", "--mappings", "9" * 5000], "expected an integer from 1 to 10,000,000"),
    (["bench", "costmodel", "--repeats", "0"], "--repeats: 0 is out of range: accepted 1 to 100"),
    (["bench", "costmodel", "--threads", "65"], "--threads: 65 is out of range: accepted 1 to 64"),
    (["bench", "costmodel", "--seed", "-1"], "--seed: -1 is out of range: accepted 0 to 4,294,967,295"),
    (["bench", "mapper", "--layers", "-3"], "bench mapper: argument --layers: -3 is out of range: accepted 1 to 23"),
    (["bench", "mapper", "--layers", "0"], "accepted 1 to 23"),
    (["bench", "latency", "--samples", "0"], "--samples: 0 is out of range: accepted 1 to 1,000"),
    (["map", "--accelerator", "eyeriss", "--layer", "K=4", "--budget", "0"], "map: argument --budget"),
    (["map", "--accelerator", "eyeriss", "--layer", "K=4", "--seed", "1.5"], "expected an integer"),
    (["evaluate", "--accelerator", "eyeriss", "--workload", "resnet18", "--resolution", "0"], "--resolution"),
    (["latency", "--backend", "torch-cpu", "--workload", "resnet18", "--threads", "0"], "accepted 1 to 64"),
    (["latency", "--backend", "torch-cpu", "--workload", "resnet18", "--repeats", "-1"], "--repeats"),
    (["latency", "--backend", "torch-cpu", "--workload", "resnet18", "--warmup", "-1"], "accepted 0 to 1,000"),
    (["workloads", "show", "resnet18", "--batch", "0"], "workloads show: argument --batch"),
    (["workloads", "show", "bert_base_layer", "--seq-len", "100000000"], "--seq-len"),
    (["accuracy", "--resolution", "-224"], "--resolution: -224 is out of range"),
    (["fpga", "--preset", "zcu102-1", "--clock-mhz", "nan"], "--clock-mhz: expected a number from 1 to 5000"),
    (["fpga", "--preset", "zcu102-1", "--clock-mhz", "0"], "--clock-mhz"),
    (["fpga", "--search", "--board", "zcu102", "--budget", "-1"], "--budget: -1 is out of range"),
    (["monotonicity", "--threshold", "nan"], "monotonicity: argument --threshold: expected a number from -1 to 1"),
    (["monotonicity", "--threshold", "2"], "--threshold"),
    (["monotonicity", "--slack", "nan"], "--slack: expected a number from 0 to 100"),
    (["monotonicity", "--slack", "inf"], "--slack"),
    (["monotonicity", "--confidence-z", "-1"], "--confidence-z"),
    (["monotonicity", "--folds", "0"], "--folds: 0 is out of range: accepted 1 to 100"),
    (["monotonicity", "--bags", "-1"], "--bags"),
    (["monotonicity", "--repeats", "0"], "--repeats"),
    (["monotonicity", "--samples", "2"], "--samples: 2 is out of range: accepted 3 to 100,000"),
    (["monotonicity", "--step", "0"], "--step"),
    (["monotonicity", "--rows", "1"], "--rows"),
])
def test_numbers_out_of_range_are_usage_errors_naming_the_range(capsys, argv, needle):
    line = error_line(capsys, *argv)
    assert line.startswith(f"codesign: error: {argv[0]}") and needle in line


def test_subparser_errors_start_like_top_level_ones(capsys):
    assert error_line(capsys, "nope").startswith("codesign: error: argument COMMAND: invalid choice")
    assert error_line(capsys, "bench", "nope").startswith("codesign: error: bench: argument TARGET")
    assert "accelerators: the following arguments are required: ACTION" in error_line(capsys, "accelerators")
    assert "map: the following arguments are required: --layer" in error_line(
        capsys, "map", "--accelerator", "eyeriss")


@pytest.mark.parametrize("argv, needle", [
    (["map", "--accelerator", "eyeriss", "--layer", "K=4", "--seed", "1", "--seed", "2"], "--seed: given twice"),
    (["workloads", "list", "--json", "--json"], "--json: given twice"),
    (["accelerators", "show", "eyeriss", "--json", "--json"], "--json: given twice"),
    (["fpga", "--preset", "zcu102-1", "--workload", "alexnet", "--workload", "vgg16"], "--workload: given twice"),
])
def test_an_option_given_twice_is_an_error(capsys, argv, needle):
    assert needle in error_line(capsys, *argv)


@given(st.text(max_size=50))
@settings(max_examples=200, deadline=None)
def test_bounded_types_accept_exactly_their_range(text):
    iparse, fparse = int_in(-3, 1000), float_in(0.0, 1.0, lo_open=True)
    try:
        v = iparse(text)
        assert isinstance(v, int) and -3 <= v <= 1000
    except argparse.ArgumentTypeError as e:
        assert "1,000" in str(e)
    try:
        x = fparse(text)
        assert math.isfinite(x) and 0.0 < x <= 1.0
    except argparse.ArgumentTypeError as e:
        assert "> 0" in str(e) and "<= 1" in str(e)


# ---------------------------------------------------------------- duplicate / contradictory

@pytest.mark.parametrize("argv, needle", [
    (["fpga", "--preset", "zcu102-1", "--limit", "dsp=1,dsp=2"], "--limit: dsp given twice"),
    (["fpga", "--preset", "zcu102-1", "--limit", "dsp=2k"], "--limit: dsp='2k' is not an integer"),
    (["fpga", "--preset", "zcu102-1", "--limit", "clock_mhz=100", "--clock-mhz", "200"], "give the clock once"),
    (["fpga", "--list", "--preset", "zcu102-1"], "--list lists the boards and presets; it takes no --preset"),
    (["fpga", "--preset", "zcu102-1", "--seed", "3"], "--seed goes with --search"),
    (["fpga", "--preset", "zcu102-1", "--budget", "30"], "--budget goes with --search"),
    (["fpga", "--board", "zcu102", "--search", "--allow-over-budget"], "--allow-over-budget goes with --design"),
    (["bench", "mapper", "--optimizer", "auto,auto"], "--optimizer: auto given twice"),
    (["bench", "mapper", "--accelerators", "eyeriss,eyeriss"], "--accelerators: eyeriss given twice"),
    (["bench", "latency", "--backends", "lut:note10,lut:note10"], "--backends: lut:note10 given twice"),
    (["bench", "costmodel", "--mappings", "10000000", "--repeats", "100"], "more than 200,000,000 evaluations"),
    (["monotonicity", "--space", "nasbench201", "--backends", "unit-macs,unit-macs"], "unit-macs given twice"),
])
def test_duplicate_and_contradictory_values(capsys, argv, needle):
    assert needle in error_line(capsys, *argv)


def test_parse_kv_refuses_repeated_keys():
    assert parse_kv("a=1, b=2", "--x") == {"a": "1", "b": "2"}
    with pytest.raises(CodesignError, match=r"--x: a given twice \(a=1 and a=3\)"):
        parse_kv("a=1,b=2,a=3", "--x")
    with pytest.raises(CodesignError, match="expected KEY=VALUE"):
        parse_kv("=1", "--x")


# ---------------------------------------------------------------- files and JSON arguments

def test_cache_dir_that_is_a_file_or_below_one(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    base = ["evaluate", "--accelerator", "eyeriss", "--workload", "resnet18"]
    assert "--cache-dir" in error_line(capsys, *base, "--cache-dir", f) and "is a file" in error_line(
        capsys, *base, "--cache-dir", f)
    assert "is a file, not a folder" in error_line(capsys, *base, "--cache-dir", f / "sub")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_cache_dir_not_writable(capsys, tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        assert "not writable" in error_line(capsys, "evaluate", "--accelerator", "eyeriss", "--workload",
                                             "resnet18", "--cache-dir", d)
    finally:
        d.chmod(0o700)


@pytest.mark.parametrize("arch, needle", [
    ('{"ks": NaN}', "NaN is not a number JSON accepts"),
    ('{"r": 224, "r": 160}', "duplicate key 'r'"),
    ("[" * 200, "nested deeper than 64 levels"),
    ('{"r": 1' + "0" * 100 + "}", "digits"),
    ("nope/arch.json", "not found"),
])
def test_arch_json_is_read_with_the_safe_input_bounds(capsys, arch, needle):
    line = error_line(capsys, "accuracy", "--arch", arch)
    assert "--arch" in line and needle in line


def test_arch_json_file_too_is_bounded(capsys, tmp_path):
    p = tmp_path / "arch.json"
    p.write_bytes('{"ks": [3]}'.encode("utf-16"))
    assert "UTF-16" in error_line(capsys, "latency", "--backend", "analytical:eyeriss", "--arch", p,
                                  "--space", "ofa-mbv3")


def test_asset_manifest_schema(capsys, tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"assets": [{"name": "a", "path": "../x", "sha256": "0" * 64}]}))
    line = error_line(capsys, "assets", "list", "--manifest", p)
    assert "assets[0].path" in line and "relative" in line
    p.write_text(json.dumps({"assets": [{"name": "a", "path": "x", "sha256": "abc"}]}))
    assert "assets[0].sha256" in error_line(capsys, "assets", "list", "--manifest", p)
    p.write_text(json.dumps({"assets": [{"name": "a", "path": "x", "sha256": "0" * 64}] * 2}))
    assert "'a' appears twice" in error_line(capsys, "assets", "list", "--manifest", p)


def test_asset_fetch_arguments(capsys, tmp_path):
    base = ["assets", "fetch", "--dest", tmp_path / "d"]
    assert "--base-url 'ftp:x': give an http://" in error_line(capsys, *base, "--base-url", "ftp:x")
    assert "--only a given twice" in error_line(capsys, *base, "--only", "a", "--only", "a")
    (tmp_path / "f").write_text("x")
    assert "--dest" in error_line(capsys, "assets", "fetch", "--dest", tmp_path / "f")


def test_bench_costmodel_zigzag_python_must_be_a_program(capsys, tmp_path):
    assert "not an executable file" in error_line(capsys, "bench", "costmodel", "--zigzag-python",
                                                  tmp_path / "python")


def test_bench_costmodel_on_a_network_without_convolutions(capsys, tmp_path):
    p = tmp_path / "fc.json"
    p.write_text(json.dumps({"name": "fc_only", "layers": [{"name": "fc", "dims": {"K": 10, "C": 20}}]}))
    assert "no convolution layer" in error_line(capsys, "bench", "costmodel", "--workload", p,
                                                "--mappings", "100", "--repeats", "1")


# ---------------------------------------------------------------- non-finite results

def test_to_json_names_the_non_finite_field():
    class Result:
        def to_dict(self):
            return {"total": {"edp": float("inf")}}

    with pytest.raises(CodesignError, match=r"result field layers\[1\]\.cost\.edp is not a finite number"):
        to_json({"layers": [{"cost": {"edp": 1.0}}, {"cost": {"edp": float("nan")}}]})
    with pytest.raises(CodesignError, match=r"result field found\.total\.edp"):
        to_json({"found": Result()})
    with pytest.raises(CodesignError, match=r"result field m\[0\]\[1\]"):
        to_json({"m": np.array([[1.0, np.nan]])})
    assert json.loads(to_json({"x": np.float64(1.5), "y": None})) == {"x": 1.5, "y": None}
    with pytest.raises(CodesignError, match="the latency is not a finite number"):
        finite(float("nan"), "the latency")


def test_a_non_finite_prediction_is_one_error_line(capsys, monkeypatch):
    import codesign.cli.accuracy as acc
    from models.spaces import get_space

    class NaNPredictor:
        def predict(self, archs):
            return [float("nan")]

    monkeypatch.setattr(acc, "load_predictor", lambda name: NaNPredictor())
    arch = get_space("ofa-mbv3").sample(np.random.default_rng(0))
    line = error_line(capsys, "accuracy", "--arch", json.dumps(arch), "--json")
    assert "the predicted accuracy is not a finite number" in line


# ---------------------------------------------------------------- listings as JSON

def test_fpga_list_json(capsys):
    rc, out, err, _ = run(capsys, "fpga", "--list", "--json")
    assert rc == 0 and err == ""
    d = json.loads(out)
    assert {"zcu102", "pynq-z2"} <= {b["name"] for b in d["boards"]}
    p = next(p for p in d["presets"] if p["name"] == "zcu102-1")
    assert p["board"] == "zcu102" and p["design"]["Tm"] > 0 and p["model"] == "hotnas"


# ---------------------------------------------------------------- latency tables

def table(tmp_path, text: str, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


ROWS = "a,b\n" + "".join(f"{i},{(i * 7) % 11}\n" for i in range(1, 9))


@pytest.mark.parametrize("text, extra, needle", [
    ("a,a\n1,2\n", [], "column 'a' appears twice in the header (columns 1 and 2)"),
    ("a,\n1,2\n", [], "column 2 of the header has no name"),
    ("a,b\n", [], "no data rows"),
    ("", [], "empty file"),
    ("a,b\n1,2,3\n", [], "line 2 has 3 fields, the header 2"),
    ('a,b\n1,"2\n', [], "malformed CSV at line 2"),
    (ROWS.replace("3,10", "3,x"), ["--proxy", "a", "--target", "b"], "row 3 (line 4), column 'b': 'x' is not a number"),
    (ROWS.replace("3,10", "3,"), ["--proxy", "a", "--target", "b"], "row 3 (line 4), column 'b': is empty"),
    (ROWS.replace("3,10", "3,inf"), ["--proxy", "a", "--target", "b"], "column 'b': 'inf' is not a finite number"),
    (ROWS.replace("3,10", "3,nan"), ["--proxy", "b", "--target", "a"], "column 'b': 'nan' is not a finite number"),
    (ROWS.replace("3,10", "3,-10"), ["--proxy", "a", "--target", "b"], "line 4, column 'b': latency -10 is negative"),
    (ROWS.replace("3,10", "3,x"), [], "row 3 (line 4), column 'b': 'x' is not a number (choose the columns"),
    ("a,b,note\n1,2,x\n3,x,y\n", [], "column 'b': 'x' is not a number"),
    ("a,note\n1,x\n3,y\n", [], "need at least two numeric columns"),
    (ROWS.replace("3,10", "3,1e13"), ["--proxy", "a", "--target", "b"], "latency 1e+13 is out of range: accepted 0"),
    ("a,b,acc\n" + "".join(f"{i},{i % 3},{60 + i}\n" for i in range(1, 9)).replace("61\n", "161\n"),
     ["--proxy", "a", "--target", "b", "--pareto", "acc"], "line 2, column 'acc': accuracy 161 is out of range"),
    ("a,b\n1,2\n", [], "1 data row; an SRCC needs at least 2"),
    (ROWS, ["--proxy", "a", "--target", "b", "--columns", "a,b"], "--columns"),
    (ROWS, ["--columns", "a,b,a"], "--columns: a given twice"),
    (ROWS, ["--proxy", "a", "--target", "b", "--heatmap", "m.png"], "--heatmap"),
])
def test_bad_latency_tables(capsys, tmp_path, text, extra, needle):
    p = table(tmp_path, text)
    line = error_line(capsys, "monotonicity", "--data", p, "--samples", "3", *extra, "--json")
    assert needle in line
    if not needle.startswith("--"):
        assert str(p) in line


def test_gzip_tables(capsys, tmp_path):
    plain = table(tmp_path, ROWS, "t.csv.gz")
    assert "not gzip data, although the name ends in .gz" in error_line(capsys, "monotonicity", "--data", plain)
    packed = tmp_path / "p.csv"
    packed.write_bytes(gzip.compress(ROWS.encode()))
    assert "gzip-compressed data; name the file *.gz" in error_line(capsys, "monotonicity", "--data", packed)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(ROWS.encode())[:20])
    assert "corrupt or truncated gzip data" in error_line(capsys, "monotonicity", "--data", cut)
    u16 = tmp_path / "u16.csv"
    u16.write_bytes(ROWS.encode("utf-16"))
    assert "UTF-16" in error_line(capsys, "monotonicity", "--data", u16)
    good = tmp_path / "good.csv.gz"
    good.write_bytes(gzip.compress(ROWS.encode()))
    rc, out, err, _ = run(capsys, "monotonicity", "--data", good, "--json")
    assert rc == 0 and json.loads(out)["columns"] == ["a", "b"]


def test_table_bounds(capsys, tmp_path, monkeypatch):
    import codesign.validation.monotonicity as mono

    monkeypatch.setattr(mono, "MAX_TABLE_ROWS", 5)
    assert "more than 5 rows" in error_line(capsys, "monotonicity", "--data", table(tmp_path, ROWS))
    monkeypatch.setattr(mono, "MAX_TABLE_BYTES", 32)
    assert len(ROWS) > 32 and "more than the 32 accepted" in error_line(capsys, "monotonicity", "--data",
                                                                          table(tmp_path, ROWS))
    monkeypatch.setattr(mono, "MAX_TABLE_BYTES", 1000)
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 1000))
    assert bomb.stat().st_size < 1000
    assert "decompresses to more than 1,000 bytes" in error_line(capsys, "monotonicity", "--data", bomb)


def test_bad_encoding_cell_names_row_and_column(capsys, tmp_path):
    p = table(tmp_path, "arch,encoding,a,b\n0," + "0" * 31 + ",1,2\n1,1012,3,4\n")
    line = error_line(capsys, "monotonicity", "--data", p)
    assert "row 1 (line 2), column 'encoding'" in line or "row 2 (line 3), column 'encoding'" in line


@given(st.lists(st.text(alphabet="0123456789.-eEinfa x", max_size=6), min_size=2, max_size=8))
@settings(max_examples=150, deadline=None)
def test_any_latency_cells_load_or_fail_naming_the_cell(tmp_path_factory, cells):
    from codesign.validation.monotonicity import MonotonicityError, load_latency_csv

    p = tmp_path_factory.mktemp("cells") / "t.csv"
    p.write_text("a,b\n" + "".join(f"{i},{c}\n" for i, c in enumerate(cells)))
    try:
        t = load_latency_csv(p)
        v = t.column("b", latency=True)
        assert np.isfinite(v).all() and (v >= 0).all() and len(v) == len(cells)
    except MonotonicityError as e:
        msg = str(e)
        assert msg.startswith(str(p)) and "column 'b'" in msg and "line " in msg


# ---------------------------------------------------------------- a real process

@pytest.mark.parametrize("argv", [
    ["bench", "costmodel", "--mappings", "-5"],
    ["monotonicity", "--slack", "nan", "--data", "x.csv"],
])
def test_a_real_process_prints_one_line_and_exits_2(argv):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "codesign", *argv], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert [l for l in lines if l.startswith("codesign: error: ")] == [lines[-1]]
    assert time.monotonic() - t0 < 60


def test_messages_say_what_is_wrong(capsys, tmp_path):
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps({"name": "tiny", "layers": [
        {"name": "c", "dims": {"K": 8, "C": 8, "P": 8, "Q": 8, "R": 3, "S": 3}}]}))
    assert "invalid choice: 'bogus'" in error_line(
        capsys, "search", "--workload", tiny, "--mapper", "bogus", "--budget", 2, "--out", tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert "a list of layers has no input resolution to change" in error_line(
        capsys, "evaluate", "--workload", tiny, "--resolution", 224, "--accelerator", "eyeriss")
    assert "/dev/zero: not a regular file" in error_line(capsys, "accelerators", "show", "/dev/zero")
