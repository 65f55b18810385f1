"""NAAS outer loop: envelope-respecting decode, determinism, executors, kill-and-resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from accelerators import envelope_of
from codesign.search.executors import SerialExecutor, make_executor
from codesign.search.hardware_space import HardwareSpace
from codesign.search.rundir import RunDir


def test_decode_respects_the_envelope():
    space = HardwareSpace.from_envelope("eyeriss")
    env = envelope_of("eyeriss")
    rng = np.random.default_rng(0)
    decoded = 0
    for _ in range(2000):
        acc = space.decode(rng.random(space.dimension))
        if acc is None:
            continue
        decoded += 1
        assert env.fits(acc)
        assert all(d.size % 2 == 0 for d in acc.array)
        assert acc.rf.capacity_bytes % 16 == 0 and acc.glb.capacity_bytes % 16 == 0
        loops = [l for d in acc.array for l in d.loops]
        assert len(loops) == 2 * len(acc.array) == len(set(loops))  # distinct parallel dims
    assert decoded > 1500  # rejections are the exception, not the rule


@pytest.mark.parametrize("env", ["eyeriss", "nvdla-256", "shidiannao", "edgetpu"])
def test_the_baseline_is_in_the_space(env):
    # the search starts from the envelope's own preset: encode() must land (nearly) on it
    space = HardwareSpace.from_envelope(env)
    base = space.base
    acc = space.decode(space.encode(base))
    assert [d.size for d in acc.array] == [d.size for d in base.array]
    assert all(set(b.loops) <= set(a.loops) for a, b in zip(acc.array, base.array))
    assert base.rf.capacity_bytes <= acc.rf.capacity_bytes < base.rf.capacity_bytes + 16
    assert 0.98 < acc.glb.capacity_bytes / base.glb.capacity_bytes <= 1.0
    assert acc.dram.bw_words_per_cycle == base.dram.bw_words_per_cycle


def _cfg(workload, **kw):
    from codesign.search.outer_loop import SearchConfig
    base = dict(workloads=[workload], envelope="eyeriss", budget=12, batch=4, seed=3, optimizer="NGOpt",
                mapper="heuristic")
    base.update(kw)
    return SearchConfig(**base)


def _run(cfg, path, executor):
    from codesign.search.outer_loop import run_search
    run = RunDir(path)
    run.write_config(cfg.to_dict())
    return run_search(cfg, run, executor, progress=False)


def _strip(entries):
    return [(e["i"], e["status"], e["loss"]) for e in entries]


def test_same_seed_same_result_on_every_executor(tiny_workload, tmp_path):
    cfg = _cfg(tiny_workload)
    serial = _run(cfg, tmp_path / "serial", SerialExecutor())
    again = _run(cfg, tmp_path / "again", SerialExecutor())
    assert _strip(serial) == _strip(again)
    with make_executor(workers=2) as ex:
        procs = _run(cfg, tmp_path / "procs", ex)
    assert _strip(procs) == _strip(serial)
    pytest.importorskip("distributed")
    with make_executor(workers=2, dask_address="local") as ex:
        dask = _run(cfg, tmp_path / "dask", ex)
    assert _strip(dask) == _strip(serial)
    assert any(e["status"] == "ok" for e in serial)
    other = _run(_cfg(tiny_workload, seed=4), tmp_path / "other", SerialExecutor())
    assert _strip(other) != _strip(serial)


def test_killed_run_resumes_without_redoing_work(tiny_workload, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = ["--workload", tiny_workload, "--budget", "24", "--batch", "4", "--seed", "5", "--quiet",
            "--mapper", "heuristic"]
    run_dir = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-m", "codesign", "search", *args, "--out", str(run_dir)],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    journal = run_dir / "journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 8:
            break
        if p.poll() is not None:
            pytest.fail(f"search ended before it could be killed: {p.stderr.read().decode()[-500:]}")
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    n_before = len(RunDir(run_dir).read_journal())
    assert 8 <= n_before < 24
    r = subprocess.run([sys.executable, "-m", "codesign", "search", "--resume", str(run_dir), "--quiet", "--json"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    entries = RunDir(run_dir).read_journal()
    idx = [e["i"] for e in entries]
    assert sorted(idx) == list(range(24)), "every evaluation exactly once"
    resumed = json.loads(r.stdout)
    # the same search without interruption
    r2 = subprocess.run([sys.executable, "-m", "codesign", "search", *args, "--out", str(tmp_path / "whole"), "--json"],
                        env=env, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr
    whole = json.loads(r2.stdout)
    assert resumed["accelerator"] == whole["accelerator"]
    assert resumed["convergence"] == whole["convergence"]
    assert resumed["edp_improvement_geomean"] == whole["edp_improvement_geomean"]
    for f in ("result.json", "report.md", "accelerator.yaml", "convergence.png"):
        assert (run_dir / f).stat().st_size > 0


def test_search_errors_are_one_line(tiny_workload, tmp_path, capsys):
    from codesign.cli import main
    assert main(["search", "--workload", tiny_workload, "--optimizer", "NoSuchOpt", "--out", str(tmp_path / "a")]) == 2
    assert "unknown nevergrad optimizer" in capsys.readouterr().err
    assert main(["search", "--envelope", "nosuch", "--out", str(tmp_path / "b")]) == 2
    assert "unknown accelerator" in capsys.readouterr().err
    assert main(["search", "--resume", str(tmp_path / "missing")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    assert main(["search", "--workload", "no_such_net", "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_atomic_write_leaves_files_readable_by_the_umask(tmp_path):
    import os
    import stat

    from codesign.search.rundir import atomic_write
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "result.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "result.json").st_mode) == 0o644
    assert (tmp_path / "result.json").read_text() == "{}\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_resume_of_a_run_written_by_the_previous_layout(tmp_path, monkeypatch, capsys):
    """A run directory saved before the cost model's version was recorded (complete journal, no
    result yet) is still read by today's schemas, but a resume refuses it: its evaluations were
    ranked by another cost model and must not be mixed with new ones. Nothing is written."""
    import shutil

    from codesign.cli import main
    from mappings.cache import MAPPER_VERSION

    src = Path(__file__).parent / "data" / "previous_layout_run"
    expected = json.loads((src / "expected.json").read_text())
    shutil.copytree(src, tmp_path / "old")
    monkeypatch.chdir(tmp_path / "old")  # the config names its workload relative to here
    run = RunDir("run", create=False)
    journal = run.journal_path.read_bytes()
    entries = run.load_journal(dimension=16, budget=6)
    assert {str(e["i"]): e["x"] for e in entries} == expected["journal_x"]
    assert "mapper_version" not in run.read_config()

    assert main(["search", "--resume", "run", "--workers", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("codesign: error: run: ")
    assert "before the cost model's version was recorded" in err and f"version {MAPPER_VERSION}" in err
    assert "start a new run with --out" in err
    assert run.journal_path.read_bytes() == journal
    assert sorted(p.name for p in Path("run").iterdir() if p.name != ".lock") == ["config.yaml", "journal.jsonl"]
