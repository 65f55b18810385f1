"""studies.nb201_latency_sources in --quick mode: it writes its report, figure and data, and its
numbers pass checks computed here from the tables themselves."""
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.assets import have_asset

ROOT = Path(__file__).resolve().parents[2]
QUICK_LIMIT_S = 60 * (2 if os.environ.get("PYTEST_XDIST_WORKER") else 1)  # it takes about 5-10 s


@pytest.mark.skipif(not (have_asset("nasbench201/hw360_cifar100_pi5.csv.gz")
                         and have_asset("nasbench201/oneproxy_latency.csv")),
                    reason="needs the HW-NAS-Bench-360 table and the One Proxy Device latency set: set "
                           "CODESIGN_ASSETS to the shared data folder")
def test_nb201_latency_sources_quick(tmp_path):
    from codesign.validation.monotonicity import srcc
    from models.nb201_table import load_hw360

    out = tmp_path / "ls"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "studies.nb201_latency_sources", "--quick", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=4 * QUICK_LIMIT_S)
    assert r.returncode == 0, r.stderr[-3000:]
    assert time.perf_counter() - t0 < QUICK_LIMIT_S
    report = (out / "report.md").read_text()
    assert report.startswith("# ") and "--quick" in report and "](nb201_latency_sources.png)" in report
    assert (out / "nb201_latency_sources.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    s = json.loads((out / "summary.json").read_text())
    table = load_hw360()
    acc = table.accuracy
    for o in s["optima"]:  # the exact optimum within each target, by a plain loop
        lat = table.latency(o["runtime"])
        assert o["accuracy"] == max(a for a, t in zip(acc.tolist(), lat.tolist()) if t <= o["target_ms"])
    with open(out / "runs.csv") as f:
        runs = [x for x in csv.DictReader(f) if x["infeasible"] == "False"]
    for x in runs:
        lat = table.latency(x["runtime"])
        opt = next(o for o in s["optima"] if o["runtime"] == x["runtime"] and str(o["quantile"]) == x["quantile"])
        true_ms, target = float(x["true_latency_ms"]), float(x["target_ms"])
        assert true_ms in set(lat.tolist())
        assert (x["violates"] == "True") == (true_ms > target)
        assert float(x["gap"]) == pytest.approx(opt["accuracy"] - float(x["accuracy"]), abs=1e-12)
        if x["violates"] == "False":
            assert float(x["gap"]) >= 0  # nothing within the target beats the optimum
        if x["method"] == "measured":
            assert x["violates"] == "False" and float(x["exact_gap"]) == 0
            # verification (codesign.search.nb201_latency.verify) keeps the measured search's own pick
            assert float(x["verified_gap"]) == float(x["gap"])
        if x["verified_gap"] != "":  # the kept cell truly meets the target: it cannot beat the optimum
            assert float(x["verified_gap"]) >= 0
    # the measured source ranks perfectly; the rescaled proxy ranks as the proxy's own latency model
    for e in s["srcc"]:
        if e["method"] == "measured":
            assert e["srcc"] == 1.0
    import numpy as np

    from codesign.validation.nb201_latency import LATENCY_FLOOR_MS, proxy_features, scaled_proxy
    one = next(e for e in s["srcc"] if e["method"] == "scaled")
    own = proxy_features(one["proxy"])[1]
    fit = scaled_proxy(one["runtime"], one["proxy"], one["samples"], one["seed"]).info
    pred = np.maximum(fit["alpha"] * own + fit["c"], LATENCY_FLOOR_MS)  # the floor ties the cells predicted below it
    assert one["srcc"] == pytest.approx(srcc(pred, table.latency(one["runtime"])), abs=1e-12)
