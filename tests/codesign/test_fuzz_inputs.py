"""Seeded bad inputs of every format through the CLI, and property tests of the
shared parsers. The fuzz run is marked ``fuzz`` (``-m "not fuzz"`` leaves it out)."""
import json
import math
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from codesign.bench import fuzz
from models.errors import CodesignError
from models.inputs import MAX_INT_DIGITS, decode_text, parse_json, parse_yaml, validate

FUZZ_CASES = 160
FUZZ_SEED = 16
FUZZ_TIMEOUT_S = 20.0


# ---- the generator and the verdicts (fast) ----

@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return fuzz.prepare_seeds(tmp_path_factory.mktemp("seeds"), run_dir=False)


def test_generator_is_seeded_and_covers_every_format(seeds):
    a = [c.to_dict() for c in fuzz.generate(60, 3, seeds)]
    b = [c.to_dict() for c in fuzz.generate(60, 3, seeds)]
    c = [c.to_dict() for c in fuzz.generate(60, 4, seeds)]
    assert a == b and a != c
    made = {r["format"] for r in a}
    assert made == {f for f, (_, _, need) in fuzz.GENERATORS.items() if need is None or getattr(seeds, need)}
    assert {r["expect"] for r in a} <= {"error", "either"}
    assert all(r["argv"] and "--json" in r["argv"] for r in a)


def test_generator_bounds_its_own_size(seeds):
    with pytest.raises(ValueError, match="cases: accepted 0 to"):
        fuzz.generate(fuzz.MAX_CASES + 1, 0, seeds)


def _case(expect="error", argv=("map", "--json")):
    return fuzz.Case("f", "m", list(argv), expect)


def _res(rc, stdout="", stderr="", timed_out=False):
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "seconds": 1.0, "timed_out": timed_out}


@pytest.mark.parametrize("case, res, category", [
    (_case(), _res(2, stderr="codesign: error: acc.yaml: size: must be > 0 (got -1)\n"), "ok"),
    (_case(), _res(2, stderr="usage: codesign map [-h]\n  --x\ncodesign map: error: argument --seed: bad\n"), "ok"),
    (_case("either"), _res(0, stdout='{"a": 1.5}'), "ok"),
    (_case(), _res(0, stdout='{"a": 1}'), "silently-accepted"),
    (_case("either"), _res(0, stdout='{"a": NaN}'), "bad-json"),
    (_case("either"), _res(0, stdout='{"a": Infinity}'), "bad-json"),
    (_case("either"), _res(0, stdout="not json"), "bad-json"),
    (_case(), _res(1, stderr="Traceback (most recent call last):\n  ...\nKeyError: 'x'\n"), "traceback"),
    (_case(), _res(-9), "traceback"),
    (_case(), _res(2, stderr="Traceback (most recent call last):\nX\ncodesign: error: x\n"), "traceback"),
    (_case(), _res(None, timed_out=True), "hang"),
    (_case(), _res(2, stderr="codesign: error: a\ncodesign: error: b\n"), "multi-line"),
    (_case(), _res(2, stderr="codesign: error: a\nmore detail\n"), "multi-line"),
    (_case(), _res(2, stderr="UserWarning: x\ncodesign: error: a\n"), "multi-line"),
    (_case(), _res(2, stderr=""), "multi-line"),
])
def test_verdicts(case, res, category):
    assert fuzz.classify(case, res)[0] == category


# Cases run in children forked from a fresh process: a pytest process that has already run a
# numba or torch kernel holds OpenMP threads, and a child forked from it may abort.
_RUN_CHILDREN = """
import json, sys
from pathlib import Path
from codesign.bench import fuzz
out = []
for argv, timeout in json.loads(sys.argv[1]):
    r = fuzz.run_child(argv, Path(sys.argv[2]), timeout=timeout)
    out.append({**{k: r[k] for k in ("rc", "timed_out", "seconds", "stdout", "stderr")},
                "verdict": {e: fuzz.classify(fuzz.Case("cli-args", "t", argv, e), r)[0] for e in ("error", "either")}})
print(json.dumps(out))
"""


def _run_children(cases, tmp_path):
    proc = subprocess.run([sys.executable, "-c", _RUN_CHILDREN, json.dumps(cases), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_forked_case_reports_what_a_user_sees(tmp_path):
    bad, good = _run_children([
        (["map", "--accelerator", "no-such-preset", "--layer", fuzz.TINY_LAYER, "--json"], 60),
        (["accelerators", "show", "eyeriss", "--json"], 60)], tmp_path)
    assert bad["rc"] == 2 and not bad["timed_out"] and bad["verdict"]["error"] == "ok"
    assert good["rc"] == 0 and json.loads(good["stdout"])["name"] == "eyeriss"
    assert good["verdict"] == {"error": "silently-accepted", "either": "ok"}


def test_a_case_past_its_time_bound_is_killed(tmp_path, seeds):
    (slow,) = _run_children([(["search", "--workload", str(seeds.dir / "tiny.json"), "--budget", "64",
                               "--workers", "1", "--out", str(tmp_path / "run"), "--quiet", "--json"], 1.0)], tmp_path)
    assert slow["timed_out"] and slow["rc"] is None and slow["seconds"] < 10
    assert slow["verdict"]["either"] == "hang"


def test_the_command_line_states_its_ranges(capsys):
    with pytest.raises(SystemExit) as e:
        fuzz.main(["--cases", "-1"])
    assert e.value.code == 2
    assert "accepted 0 to 100,000" in capsys.readouterr().err


# ---- the fuzz run ----

@pytest.fixture(scope="module")
def fuzz_result():
    """The benchmark as a user runs it, in its own process (see ``_RUN_CHILDREN``)."""
    proc = subprocess.run([sys.executable, "-m", "codesign.bench.fuzz", "--cases", str(FUZZ_CASES), "--seed",
                           str(FUZZ_SEED), "--timeout", str(FUZZ_TIMEOUT_S), "--jobs", "2", "--probes", "--json"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 1) and proc.stdout, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.fuzz
def test_fuzz_run_covers_every_format(fuzz_result):
    assert not [n for n in fuzz_result["notes"] if "skipped" in n or "preload" in n], fuzz_result["notes"]
    assert set(fuzz_result["summary"]["formats"]) == set(fuzz.GENERATORS)
    assert fuzz_result["summary"]["cases"] > FUZZ_CASES  # the known probes come first
    assert sum(r["mutation"].startswith("probe:") for r in fuzz_result["records"]) >= 40


@pytest.mark.fuzz
@pytest.mark.parametrize("category", fuzz.FAILURES)
def test_fuzz_no_failures(fuzz_result, category):
    bad = [r for r in fuzz_result["records"] if r["category"] == category]
    shown = fuzz.format_text({**fuzz_result, "records": bad, "show": 10})
    assert not bad, f"{len(bad)} {category} case(s):\n{shown}"


# ---- property tests of models/inputs ----

_json_scalars = (st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
                 | st.integers(min_value=-(10 ** MAX_INT_DIGITS) + 1, max_value=10 ** MAX_INT_DIGITS - 1)
                 | st.text(max_size=20))
_json_data = st.recursive(_json_scalars, lambda kids: st.lists(kids, max_size=5)
                          | st.dictionaries(st.text(max_size=8), kids, max_size=5), max_leaves=30)
_props = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# text made of the characters that give documents their structure finds more than random text
_structured = st.text(alphabet='[]{}:,-&*!|>?#%@` \n\t"\'\\ab1e.+', max_size=300)


@_props
@given(st.text(max_size=300) | _structured)
def test_parse_json_raises_only_codesign_errors(text):
    try:
        parse_json(text, "f.json")
    except CodesignError as e:
        assert "\n" not in str(e) and str(e).startswith("f.json")


@_props
@given(st.text(max_size=300) | _structured)
def test_parse_yaml_raises_only_codesign_errors(text):
    try:
        parse_yaml(text, "f.yaml")
    except CodesignError as e:
        assert "\n" not in str(e) and str(e).startswith("f.yaml")


@_props
@given(st.binary(max_size=300))
def test_decoding_bytes_raises_only_codesign_errors(data):
    try:
        text = decode_text(data, "f.yaml")
    except CodesignError as e:
        assert "\n" not in str(e) and str(e).startswith("f.yaml")
        return
    assert isinstance(text, str) and "\x00" not in text


@_props
@given(st.binary(max_size=200))
def test_bytes_through_both_parsers(data):
    for parse in (parse_json, parse_yaml):
        try:
            parse(decode_text(data, "f"), "f")
        except CodesignError:
            pass


@_props
@given(_json_data)
def test_parse_json_accepts_every_dump_of_finite_data(data):
    for indent in (None, 1):
        assert parse_json(json.dumps(data, indent=indent), "f.json") == data


@_props
@given(_json_data)
def test_parse_yaml_accepts_every_yaml_dump_of_finite_data(data):
    assert parse_yaml(yaml.safe_dump(data), "f.yaml") == data


class _Thing(BaseModel):
    model_config = {"extra": "forbid"}
    size: int = Field(ge=1, le=1024)
    scale: float = Field(gt=0, le=1e6, allow_inf_nan=False)
    name: str = "x"


@_props
@given(_json_data)
def test_validate_turns_any_data_into_one_error_line(data):
    for doc in (data, {"size": data, "scale": 1.0}, {"size": 4, "scale": data}):
        try:
            t = validate(_Thing, doc, "thing.yaml")
        except CodesignError as e:
            msg = str(e)
            assert "\n" not in msg and msg.startswith("thing.yaml")
        else:
            assert 1 <= t.size <= 1024 and 0 < t.scale <= 1e6 and math.isfinite(t.scale)
