"""The DeFiNES comparison (studies/defines_check.py) in --quick mode: the trends docs/defines.md
states, checked on the study's own output, with the recompute overhead counted here by hand."""
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# about 25 s of CPU alone; beside another test process (pytest -n) on two cores it gets half
QUICK_LIMIT_S = 120 * (2 if os.environ.get("PYTEST_XDIST_WORKER") else 1)


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        out = []
        for r in csv.DictReader(f):
            d = dict(r)
            for k, v in r.items():
                if v in ("True", "False"):
                    d[k] = v == "True"
                else:
                    try:
                        d[k] = float(v)
                    except ValueError:
                        pass
            out.append(d)
        return out


def run_study(out: Path) -> Path:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "studies.defines_check", "--quick", "--out", str(out)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=2 * QUICK_LIMIT_S)
    secs = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    assert secs < QUICK_LIMIT_S
    return out


def _report_and_figure(study):
    report = (study / "report.md").read_text()
    assert report.startswith("# ") and "--quick" in report
    png = (study / "defines_check.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 5_000
    assert "](defines_check.png)" in report


def _tile_sweep_trends(study):
    grid = _rows(study / "grid.csv")
    summary = json.loads((study / "summary.json").read_text())
    lbl = next(r for r in grid if r["policy"] == "layer")
    tiled = [r for r in grid if r["policy"] != "layer" and r["fits"] and not r.get("whole_map")]
    assert tiled
    # fully cached (ours: cache) is never worse than fully recompute on the same tile, and
    # computes no more MACs
    for c in (r for r in tiled if r["policy"] == "cache"):
        rc = next((r for r in tiled if r["policy"] == "recompute" and (r["tx"], r["ty"]) == (c["tx"], c["ty"])), None)
        if rc is not None:
            assert c["energy_pj"] <= rc["energy_pj"] * (1 + 1e-9)
            assert c["mac_ratio"] <= rc["mac_ratio"] + 1e-9
    # the best tiled schedule beats layer by layer, and the optimum is interior: neither the
    # smallest tile (recomputed or re-read halos) nor the whole map (intermediates through DRAM)
    smallest = (min(summary["tiles_tx"]), min(summary["tiles_ty"]))
    for pol in ("recompute", "cache"):
        mine = [r for r in tiled if r["policy"] == pol]
        b = min(mine, key=lambda r: r["energy_pj"])
        assert b["energy_pj"] < lbl["energy_pj"]
        assert (b["tx"], b["ty"]) != smallest
        small = next(r for r in mine if (r["tx"], r["ty"]) == smallest)
        assert small["energy_pj"] > 2 * b["energy_pj"]
    assert summary["best_energy"]["policy"] == "cache"


def _recompute_macs_by_hand(study):
    """1 x 1 output tiles under recompute: every layer computes the receptive field of one output
    pixel, ``(t - 1) * stride + R`` back through the unpadded windows, counted here by hand."""
    grid = _rows(study / "grid.csv")
    summary = json.loads((study / "summary.json").read_text())
    oh, ow = summary["out"]
    # FSRCNN as DeFiNES models it: (kernel, in channels, out channels), in order
    layers = [(5, 1, 56), (1, 56, 12)] + [(3, 12, 12)] * 4 + [(1, 12, 56), (3, 56, 16)]
    sizes, h, w = [], oh + 14, ow + 14
    for k, _, _ in layers:
        h, w = h - k + 1, w - k + 1
        sizes.append((h, w))
    assert sizes[-1] == (oh, ow)
    total = sum(p * q * k * k * c * m for (p, q), (k, c, m) in zip(sizes, layers))
    t, per_pixel = 1, 0
    for k, c, m in reversed(layers):
        per_pixel += t * t * k * k * c * m
        t = t - 1 + k
    r = next(r for r in grid if r["policy"] == "recompute" and (r["tx"], r["ty"]) == (1, 1))
    assert r["mac_ratio"] == pytest.approx(per_pixel * oh * ow / total, rel=1e-9)
    assert r["mac_ratio"] > 10


def _activation_dominant_gains_more(study):
    gains = {g["network"]: g for g in _rows(study / "gains.csv")}
    assert set(gains) == {"fsrcnn", "mobilenet_v1", "resnet18"}
    for g in gains.values():
        gain = g["energy_lbl_pj"] / g["energy_df_pj"]
        assert gain == pytest.approx(g["energy_gain"], rel=1e-9)
        assert gain >= 1 - 1e-9  # layer by layer is among the searched candidates
        assert g["dram_df"] <= g["dram_lbl"] * (1 + 1e-9)
    fs = gains["fsrcnn"]
    for other in ("mobilenet_v1", "resnet18"):
        o = gains[other]
        assert fs["weight_share"] < 0.1 < o["weight_share"]
        assert fs["energy_lbl_pj"] / fs["energy_df_pj"] > 1.5 * (o["energy_lbl_pj"] / o["energy_df_pj"])
        assert fs["dram_lbl"] / fs["dram_df"] > 1.5 * (o["dram_lbl"] / o["dram_df"])


def _memory_sweep(study):
    mem = _rows(study / "memory.csv")
    for pol in ("recompute", "cache"):
        rows = sorted((m for m in mem if m["policy"] == pol), key=lambda m: m["glb_kb"])
        assert len(rows) >= 2
        fits = [m["largest_fitting_tile"] for m in rows]
        assert fits == sorted(fits)  # a larger buffer holds every tile a smaller one does


def test_defines_check_quick(tmp_path):
    """One run of the study (not one per check: under pytest -n a module fixture would run once
    per worker), then every check on its output."""
    study = run_study(tmp_path / "defines")
    _report_and_figure(study)
    _tile_sweep_trends(study)
    _recompute_macs_by_hand(study)
    _activation_dominant_gains_more(study)
    _memory_sweep(study)
