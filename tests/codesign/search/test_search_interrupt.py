"""Ctrl-C during 'codesign search': exit code 130, a hint to resume, a journal without a torn
line, and a resumed run that ends where an uninterrupted one does."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from codesign.search.rundir import RunDir

BUDGET = 32


def _search(*args):
    return [sys.executable, "-m", "codesign", "search", *args]


def _ctrl_c_after_four_entries(p, journal) -> str:
    """Send SIGINT once the journal holds four entries; the search's stderr."""
    deadline = time.time() + 120
    while time.time() < deadline and not (journal.exists() and journal.read_text().count("\n") >= 4):
        if p.poll() is not None:
            pytest.fail(f"search ended before it could be interrupted: {p.stderr.read()[-500:]}")
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    return p.communicate(timeout=120)[1]


def test_ctrl_c_exits_130_and_resumes_to_the_same_result(tiny_workload, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = ["--workload", tiny_workload, "--budget", str(BUDGET), "--batch", "4", "--workers", "1", "--seed", "2",
            "--mapper", "heuristic", "--final-mapper", "heuristic", "--quiet"]
    run_dir = tmp_path / "interrupted"
    journal = run_dir / "journal.jsonl"
    p = subprocess.Popen(_search(*args, "--out", str(run_dir)), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    err = _ctrl_c_after_four_entries(p, journal)
    assert p.returncode == 130, err
    assert f"codesign search --resume {run_dir}" in err
    assert not (run_dir / "result.json").exists()

    text = journal.read_text()
    assert text.endswith("\n")
    lines = text.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is whole
    assert 4 <= len(entries) < BUDGET
    assert len({e["i"] for e in entries}) == len(entries)
    assert RunDir(run_dir).read_journal() == entries

    r = subprocess.run(_search("--resume", str(run_dir), "--quiet", "--json"), env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    idx = sorted(e["i"] for e in RunDir(run_dir).read_journal())
    assert idx == list(range(BUDGET)), "every candidate evaluated exactly once"
    resumed = json.loads((run_dir / "result.json").read_text())

    from codesign.cli import main
    assert main(_search(*args, "--out", str(tmp_path / "whole"))[3:]) == 0
    whole = json.loads((tmp_path / "whole" / "result.json").read_text())
    assert resumed["found"]["edp_geomean"] == whole["found"]["edp_geomean"]
    assert resumed["accelerator"] == whole["accelerator"]
    assert resumed["best_index"] == whole["best_index"]
    assert resumed["convergence"] == whole["convergence"]


def test_ctrl_c_works_when_started_with_sigint_ignored(tiny_workload, tmp_path):
    """A background job of a script inherits SIGINT ignored; the search still stops on it."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    run_dir = tmp_path / "bg"
    journal = run_dir / "journal.jsonl"
    p = subprocess.Popen(_search("--workload", tiny_workload, "--budget", str(BUDGET), "--batch", "4", "--workers", "1",
                                 "--mapper", "heuristic", "--final-mapper", "heuristic", "--quiet", "--out",
                                 str(run_dir)),
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    err = _ctrl_c_after_four_entries(p, journal)
    assert p.returncode == 130, err


@pytest.mark.parametrize("sig, rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_a_library_turned_into_another_error_is_still_an_interrupt(sig, rc):
    """numpy catches the KeyboardInterrupt raised inside a structured-array comparison and raises
    a TypeError instead; the search still exits as interrupted, and other errors stay errors."""
    from codesign.cli.search import _interrupted, _sigterm_interrupts

    with pytest.raises(TypeError) as err:
        with _sigterm_interrupts() as got:
            try:
                os.kill(os.getpid(), sig)
                time.sleep(5)  # the handler raises here
            except KeyboardInterrupt:
                raise TypeError("Cannot compare structured arrays unless they have a common dtype") from None
    assert got.signum == sig and _interrupted(err.value, got) == rc
    with _sigterm_interrupts() as quiet:
        pass
    assert _interrupted(TypeError("a real bug"), quiet) is None
