"""SIGTERM and SIGKILL of 'codesign search --workers 2': no worker or helper process outlives the
search, and nothing keeps the caller's stderr pipe open. SIGTERM is handled like Ctrl-C."""
import os
import signal
import subprocess
import sys
import time

import pytest

from codesign.search.rundir import RunDir

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="scans /proc")


def _group(pgid: int) -> list[str]:
    """Live (not zombie) processes of process group ``pgid``, by command line."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip())
        except (OSError, ValueError):
            continue  # ended while we looked
    return out


def _wait_gone(pgid: int, seconds: float = 15.0) -> list[str]:
    deadline = time.time() + seconds
    while time.time() < deadline:
        left = _group(pgid)
        if not left:
            return []
        time.sleep(0.1)
    return _group(pgid)


def _start(two_layer, run_dir):
    """A search far too long to finish, on 2 worker processes, in its own process group; returns
    once the workers have journaled evaluations."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "codesign", "search", "--workload", two_layer, "--budget", "2000",
                          "--batch", "4", "--workers", "2", "--seed", "1", "--mapper", "heuristic", "--quiet",
                          "--out", str(run_dir)],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    journal = run_dir / "journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if journal.exists() and sum(1 for line in journal.read_text().splitlines() if '"ok"' in line) >= 2:
            break
        if p.poll() is not None:
            pytest.fail(f"search ended early: {p.stderr.read().decode()[-500:]}")
        time.sleep(0.05)
    else:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail("no evaluation journaled in 120 s")
    assert len(_group(p.pid)) >= 3, "the parent and its two workers"
    return p


def _stderr_closes(p, seconds: float = 30.0) -> str:
    """Everything on the search's stderr, read to EOF: EOF comes only when no process holds the pipe."""
    try:
        _, err = p.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail(f"stderr still open {seconds} s after the signal: {_group(p.pid)}")
    return err.decode()


def test_sigterm_stops_workers_and_exits_like_ctrl_c(two_layer, tmp_path, capsys):
    from codesign.cli import main

    run_dir = tmp_path / "run"
    p = _start(two_layer, run_dir)
    # while it runs, a second search on the directory is refused at once
    assert main(["search", "--resume", str(run_dir), "--quiet"]) == 2
    assert f"another search is writing to this run directory (process {p.pid})" in capsys.readouterr().err
    p.send_signal(signal.SIGTERM)
    err = _stderr_closes(p)
    assert p.returncode == 143, err
    assert f"interrupted; finished evaluations are in {run_dir / 'journal.jsonl'}" in err
    assert f"continue with: codesign search --resume {run_dir}" in err
    assert "Traceback" not in err
    assert _wait_gone(p.pid) == []
    text = (run_dir / "journal.jsonl").read_text()
    assert text.endswith("\n")
    assert len(RunDir(run_dir).read_journal()) == len(text.splitlines()) >= 2  # every line whole
    assert not (run_dir / "result.json").exists()


def test_sigkill_of_the_parent_takes_the_workers_with_it(two_layer, tmp_path):
    p = _start(two_layer, tmp_path / "run")
    os.kill(p.pid, signal.SIGKILL)  # the parent alone: its workers get no signal from us
    _stderr_closes(p)
    assert p.returncode == -signal.SIGKILL
    assert _wait_gone(p.pid) == []


CHILD = """
import sys, time
from codesign.search.executors import die_with_parent
sys.platform = "other"  # no prctl: the polling fallback
die_with_parent(int(sys.argv[1]))
print("armed", flush=True)
time.sleep(60)
"""

PARENT = """
import os, subprocess, sys
c = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())], stdout=subprocess.PIPE)
assert c.stdout.readline().strip() == b"armed"
print(c.pid, flush=True)
os._exit(0)
"""


def test_the_polling_fallback_ends_an_orphaned_worker():
    out = subprocess.run([sys.executable, "-c", PARENT, CHILD], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    child = int(out.stdout.strip())
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            state = open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return  # gone
        if state == "Z":
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the orphaned worker outlived its parent")
