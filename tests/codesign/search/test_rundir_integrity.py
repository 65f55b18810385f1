"""Run directories lose nothing: a torn last journal line is set aside and the run resumes to
the uninterrupted result; a damaged line before it, a malformed config.yaml or result.json, a
locked directory, or resume options that contradict the saved run stop with one error line and
change nothing."""
import fcntl
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.cli import main
from codesign.search.run_schema import RunDirError
from codesign.search.rundir import RunDir

ARGS = ["--budget", "4", "--batch", "2", "--seed", "1", "--workers", "1", "--mapper", "heuristic",
        "--final-mapper", "heuristic", "--quiet"]


@pytest.fixture(scope="module")
def whole(two_layer, tmp_path_factory):
    """An uninterrupted run: its directory (journal, config, result)."""
    d = tmp_path_factory.mktemp("whole") / "run"
    assert main(["search", "--workload", two_layer, *ARGS, "--out", str(d)]) == 0
    assert len((d / "journal.jsonl").read_text().splitlines()) == 4
    return d


def _unfinished(whole, tmp_path) -> Path:
    """A copy of the whole run as it was before its result: the same journal, no result."""
    d = tmp_path / "run"
    d.mkdir()
    for name in ("config.yaml", "journal.jsonl"):
        shutil.copy(whole / name, d / name)
    return d


def _lines(d) -> list[bytes]:
    return (d / "journal.jsonl").read_bytes().splitlines(keepends=True)


def _result(d) -> dict:
    return json.loads((d / "result.json").read_text())


def _same_result(a: dict, b: dict) -> None:
    for key in ("accelerator", "best_index", "convergence", "evaluations", "edp_improvement_geomean"):
        assert a[key] == b[key], key
    assert a["found"]["edp_geomean"] == b["found"]["edp_geomean"]


def _one_error_line(capsys, *needles) -> str:
    err = capsys.readouterr().err
    assert err.startswith("codesign: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    return err


# ---- a torn or malformed last line: set aside, resumed to the same result -------------------

@pytest.mark.parametrize("damage", ["cut", "garbage", "empty-object", "nul-bytes"])
def test_a_bad_last_line_is_set_aside_and_the_run_resumes_to_the_same_result(whole, tmp_path, capsys, damage):
    d = _unfinished(whole, tmp_path)
    lines = _lines(d)
    last = {"cut": lines[-1][: len(lines[-1]) // 2],           # killed mid-write: no newline
            "garbage": b'{"i": 3, "x": [0.1, \n',                # a complete line, not JSON
            "empty-object": b"{}\n",                              # JSON, not an entry
            "nul-bytes": b"\x00" * 40}[damage]                  # a crash that extended the file
    (d / "journal.jsonl").write_bytes(b"".join(lines[:-1]) + last)
    assert main(["search", "--resume", str(d), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "codesign: warning:" in err and "journal.jsonl line 4" in err and "journal.jsonl.torn" in err
    assert (d / "journal.jsonl.torn").read_bytes().rstrip(b"\n") == last.rstrip(b"\n")  # nothing lost
    entries = RunDir(d).read_journal()
    assert sorted(e["i"] for e in entries) == [0, 1, 2, 3]  # nothing redone, nothing lost
    _same_result(_result(d), _result(whole))


def test_a_torn_line_after_a_complete_journal_redoes_nothing(whole, tmp_path, capsys):
    d = _unfinished(whole, tmp_path)
    before = _lines(d)
    (d / "journal.jsonl").write_bytes(b"".join(before) + b'{"i":4,"x":[0.')
    assert main(["search", "--resume", str(d), "--quiet"]) == 0
    assert _lines(d) == before
    _same_result(_result(d), _result(whole))


# ---- a damaged line before the last: one error, nothing rewritten ---------------------------

def _middle_cases(line: dict, first_i: int) -> dict:
    def without(k):
        return json.dumps({key: v for key, v in line.items() if key != k}).encode()
    return {
        "null": b"null", "number": b"42", "list": b"[1, 2]", "empty-object": b"{}",
        "no-x": without("x"), "no-loss": without("loss"), "no-status": without("status"),
        "short-x": json.dumps({**line, "x": line["x"][:3]}).encode(),
        "string-x": json.dumps({**line, "x": [str(v) for v in line["x"]]}).encode(),
        "bad-status": json.dumps({**line, "status": "done"}).encode(),
        "i-beyond-budget": json.dumps({**line, "i": 99}).encode(),
        "binary-prefix": b"\x00\x01" + json.dumps(line).encode(),
        "latin-1": b"\xe9" + json.dumps(line).encode(),
        "nan-loss": json.dumps(line).replace('"loss":', '"loss": NaN, "l":').encode(),
        "duplicate-i": json.dumps({**line, "i": first_i}).encode(),
    }


MIDDLE = ["null", "number", "list", "empty-object", "no-x", "no-loss", "no-status", "short-x", "string-x",
          "bad-status", "i-beyond-budget", "binary-prefix", "latin-1", "nan-loss", "duplicate-i"]


@pytest.mark.parametrize("case", MIDDLE)
def test_a_damaged_line_before_the_last_stops_the_resume(whole, tmp_path, capsys, case):
    d = _unfinished(whole, tmp_path)
    lines = _lines(d)
    second = json.loads(lines[1])
    lines[1] = _middle_cases(second, json.loads(lines[0])["i"])[case] + b"\n"
    damaged = b"".join(lines)
    (d / "journal.jsonl").write_bytes(damaged)
    for _ in range(2):  # a second resume neither redoes nor appends anything (was 4 -> 8 -> 11 lines)
        assert main(["search", "--resume", str(d), "--quiet"]) == 2
        _one_error_line(capsys, "journal.jsonl line 2")
        assert (d / "journal.jsonl").read_bytes() == damaged
    assert not (d / "result.json").exists() and not (d / "journal.jsonl.torn").exists()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(middle=st.binary(max_size=200).filter(lambda b: b"\n" not in b),
       value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                          lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                          max_leaves=8))
def test_no_damaged_middle_line_is_read_or_crashes(whole, tmp_path, middle, value):
    """Any bytes, or any JSON value, in place of an entry before the last: one RunDirError naming
    the line, the journal unchanged."""
    lines = _lines(whole)
    d = tmp_path / "prop"
    d.mkdir(exist_ok=True)
    for bad in (middle, json.dumps(value).encode()):
        text = lines[0] + bad + b"\n" + b"".join(lines[2:])
        (d / "journal.jsonl").write_bytes(text)
        with pytest.raises(RunDirError, match="journal.jsonl line 2"):
            RunDir(d).load_journal(dimension=len(json.loads(lines[0])["x"]), budget=4, recover=True)
        assert (d / "journal.jsonl").read_bytes() == text


# ---- config.yaml and result.json --------------------------------------------------------------

CONFIGS = {
    "empty": (b"", "an empty file"),
    "list": (b"- 1\n- 2\n", "got list"),
    "scalar": (b"42\n", "got int"),
    "budget-string": (None, "budget"),
    "budget-fraction": (None, "budget"),
    "budget-negative": (None, "budget"),
    "seed-negative": (None, "seed"),
    "unknown-key": (None, "bugdet"),
    "malformed": (b"budget: [4\n", "malformed YAML"),
    "utf-16": ("budget: 4\n".encode("utf-16"), "UTF-16"),
    "alias-bomb": (b"a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,"
                   b"*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: "
                   b"[*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n", "expands to more than"),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_a_malformed_config_stops_the_resume(whole, tmp_path, capsys, case):
    import yaml
    d = _unfinished(whole, tmp_path)
    text, needle = CONFIGS[case]
    if text is None:
        cfg = yaml.safe_load((whole / "config.yaml").read_text())
        key, value = {"budget-string": ("budget", "4"), "budget-fraction": ("budget", 4.5),
                      "budget-negative": ("budget", -1), "seed-negative": ("seed", -1),
                      "unknown-key": ("bugdet", 4)}[case]
        cfg[key] = value
        text = yaml.safe_dump(cfg).encode()
    (d / "config.yaml").write_bytes(text)
    journal = (d / "journal.jsonl").read_bytes()
    assert main(["search", "--resume", str(d), "--quiet"]) == 2
    _one_error_line(capsys, "config.yaml", needle)
    assert (d / "journal.jsonl").read_bytes() == journal and (d / "config.yaml").read_bytes() == text
    assert not (d / "result.json").exists()


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["budget", "batch", "seed", "population", "generations", "resolution"]),
       value=st.integers(-2 ** 40, 2 ** 40) | st.floats() | st.text(max_size=5) | st.none() | st.booleans())
def test_config_numbers_are_checked_against_their_range(key, value):
    from codesign.search import run_schema as rs
    from codesign.search.outer_loop import SearchConfig

    lo, hi = {"budget": (1, rs.MAX_BUDGET), "batch": (1, rs.MAX_BATCH), "seed": (0, rs.MAX_SEED),
              "population": (1, rs.MAX_POPULATION), "generations": (0, rs.MAX_GENERATIONS),
              "resolution": (1, rs.MAX_RESOLUTION)}[key]
    d = {**SearchConfig(workloads=["w.json"]).to_dict(), key: value}
    ok = (type(value) is int and lo <= value <= hi) or (key == "resolution" and value is None)
    if ok:
        assert getattr(SearchConfig.from_dict(d, "config.yaml"), key) == value
    else:
        with pytest.raises(RunDirError, match=f"^config.yaml: {key}: "):
            SearchConfig.from_dict(d, "config.yaml")


@pytest.mark.parametrize("text,needle", [
    ("null", "got null"), ("42", "got 42"), ('"done"', 'got "done"'), ("[]", "got []"), ("", "malformed JSON"),
    ("{}", "config: Field required"), ('{"kind": "fpga"}', "config: Field required"),
    ('{"a": 1, "a": 2}', "duplicate key"), ("\xff", "not UTF-8")])
def test_a_malformed_result_stops_the_report(whole, tmp_path, capsys, text, needle):
    d = tmp_path / "run"
    shutil.copytree(whole, d)
    (d / "result.json").write_bytes(text.encode("latin-1"))
    assert main(["report", str(d)]) == 2
    _one_error_line(capsys, "result.json", needle)


def test_a_result_missing_a_field_names_it(whole, tmp_path, capsys):
    d = tmp_path / "run"
    shutil.copytree(whole, d)
    res = _result(whole)
    w = next(iter(res["found"]["workloads"]))
    del res["found"]["workloads"][w]["layers"][0]["mapping"]
    (d / "result.json").write_text(json.dumps(res))
    assert main(["report", str(d)]) == 2
    _one_error_line(capsys, f"found.workloads.{w}.layers[0].mapping: Field required")


# ---- the lock ---------------------------------------------------------------------------------

def test_a_locked_run_directory_is_refused_at_once(whole, tmp_path, capsys):
    d = _unfinished(whole, tmp_path)
    with open(d / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another search writing to it
        f.write("12345\n")
        f.flush()
        journal = (d / "journal.jsonl").read_bytes()
        assert main(["search", "--resume", str(d), "--quiet"]) == 2
        _one_error_line(capsys, "another search is writing to this run directory", "12345")
        assert (d / "journal.jsonl").read_bytes() == journal
    assert main(["search", "--resume", str(d), "--quiet"]) == 0  # released: resumes
    _same_result(_result(d), _result(whole))


# ---- resume options -------------------------------------------------------------------------

@pytest.mark.parametrize("extra,needle", [
    (["--seed", "2"], "--seed 2 (the run has 1)"),
    (["--budget", "8"], "--budget 8 (the run has 4)"),
    (["--batch", "4"], "--batch 4 (the run has 2)"),
    (["--envelope", "nvdla-256"], "--envelope 'nvdla-256' (the run has 'eyeriss')"),
    (["--workload", "mobilenet_v2"], "--workload ['mobilenet_v2']"),
    (["--objective", "energy"], "--objective 'energy'"),
    (["--out", "elsewhere"], "not both"),
])
def test_resume_options_that_contradict_the_saved_run_are_refused(whole, tmp_path, capsys, extra, needle):
    d = _unfinished(whole, tmp_path)
    journal = (d / "journal.jsonl").read_bytes()
    assert main(["search", "--resume", str(d), *extra, "--quiet"]) == 2
    _one_error_line(capsys, needle)
    assert (d / "journal.jsonl").read_bytes() == journal and not (d / "result.json").exists()


def test_resume_options_equal_to_the_saved_ones_are_accepted(whole, two_layer, tmp_path):
    d = _unfinished(whole, tmp_path)
    (d / "journal.jsonl").write_bytes(b"".join(_lines(d)[:2]))
    assert main(["search", "--resume", str(d), "--seed", "1", "--budget", "4", "--workload", two_layer,
                 "--workers", "1", "--quiet"]) == 0
    _same_result(_result(d), _result(whole))


def test_a_workload_file_edited_since_the_run_started_is_refused(two_layer, tmp_path, capsys):
    wl = tmp_path / "w.json"
    shutil.copy(two_layer, wl)
    d = tmp_path / "run"
    assert main(["search", "--workload", str(wl), *ARGS[2:], "--budget", "2", "--out", str(d)]) == 0
    net = json.loads(wl.read_text())
    net["layers"][0]["dims"]["K"] = 16
    wl.write_text(json.dumps(net))
    assert main(["search", "--resume", str(d), "--quiet"]) == 2
    _one_error_line(capsys, str(wl), "changed since the run started")


def test_a_run_of_another_cost_model_version_is_refused(whole, tmp_path, capsys):
    import yaml
    d = _unfinished(whole, tmp_path)
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["mapper_version"] -= 1
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["search", "--resume", str(d), "--quiet"]) == 2
    _one_error_line(capsys, f"cost model version {cfg['mapper_version']}", "start a new run with --out")
    assert not (d / "result.json").exists()


# ---- option bounds ----------------------------------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["--seed", "-1"], "--seed: -1 is out of range: accepted 0 to 4,294,967,295"),
    (["--budget", "0"], "--budget: 0 is out of range: accepted 1 to 100,000"),
    (["--budget", "-1"], "--budget: -1 is out of range"),
    (["--optimizer", "auto", "--budget", "0"], "--budget: 0 is out of range"),
    (["--budget", "1e9"], "--budget: expected an integer"),
    (["--batch", "0"], "--batch: 0 is out of range: accepted 1 to 1,024"),
    (["--workers", "0"], "--workers: 0 is out of range: accepted 1 to 64"),
    (["--population", "100000"], "--population: 100000 is out of range"),
    (["--generations", "-2"], "--generations: -2 is out of range"),
    (["--min-accuracy", "nan"], "--min-accuracy: expected a number > 0"),
    (["--min-accuracy", "1"], "--min-accuracy: expected a number > 0 and < 1"),
    (["--min-accuracy", "0"], "--min-accuracy: expected a number > 0"),
    (["--resolution", "100000"], "--resolution: 100000 is out of range"),
    (["--seed", "1", "--seed", "2"], "--seed: given twice"),
    (["--workload", "a.json", "--workload", "a.json"], "--workload: 'a.json' given twice"),
])
def test_search_numbers_are_bounded(tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as e:
        main(["search", *args, "--out", str(tmp_path / "r")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args,needle", [
    (["--population", "4"], "--population: option of the sub-network co-search: it needs --space"),
    (["--min-accuracy", "0.7", "--constraint", "soft"], "--min-accuracy, --constraint"),
    (["--optimizer", "auto"], "unknown nevergrad optimizer 'auto'"),
])
def test_contradictory_or_unknown_search_options(two_layer, tmp_path, capsys, args, needle):
    assert main(["search", "--workload", two_layer, *args, "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, needle)
    assert not (tmp_path / "r").exists()


def test_list_optimizers_json(capsys):
    assert main(["search", "--list-optimizers", "--json"]) == 0
    names = json.loads(capsys.readouterr().out)
    assert isinstance(names, list) and "NGOpt" in names and all(isinstance(n, str) for n in names)


# ---- never a NaN or infinity in a journal or a result ---------------------------------------

def test_a_non_finite_score_is_refused_not_journaled(two_layer, tmp_path, monkeypatch):
    from codesign.search import outer_loop
    from codesign.search.executors import SerialExecutor
    from models.errors import CodesignError

    real = outer_loop.evaluate_candidate

    def broken(x, cfg_dict):
        r = real(x, cfg_dict)
        return {**r, "loss": float("inf"), "edp": float("inf")} if r["status"] == "ok" else r

    monkeypatch.setattr(outer_loop, "evaluate_candidate", broken)
    cfg = outer_loop.SearchConfig(workloads=[two_layer], budget=4, batch=2, seed=1, mapper="heuristic")
    run = RunDir(tmp_path / "run")
    run.write_config(cfg.to_dict())
    with pytest.raises(CodesignError, match="non-finite score"):
        outer_loop.run_search(cfg, run, SerialExecutor(), progress=False)
    assert all(e["status"] != "ok" for e in run.read_journal())


@pytest.mark.parametrize("score", [0.0, -1.0, float("inf"), float("nan")])
def test_a_score_that_is_not_finite_and_positive_is_an_error(score):
    from codesign.search.outer_loop import _loss
    from models.errors import CodesignError

    with pytest.raises(CodesignError, match="not a finite positive number"):
        _loss(score, [0.5, 0.25])


def test_a_non_finite_result_is_not_written(tmp_path):
    run = RunDir(tmp_path / "run")
    with pytest.raises(RunDirError, match=r"found\.workloads\[0\]\.edp is inf"):
        run.write_json("result.json", {"found": {"workloads": [{"edp": float("inf")}]}})
    assert not (tmp_path / "run" / "result.json").exists()
