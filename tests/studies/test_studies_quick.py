"""Every study runs in --quick mode (what CI runs) and writes a report, figures and data whose
numbers pass checks computed here independently."""
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.assets import have_asset

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# the promise of --quick, on a machine of its own; beside another test process (pytest -n) on two
# cores a study gets half of them
QUICK_LIMIT_S = 120 * (2 if os.environ.get("PYTEST_XDIST_WORKER") else 1)


def run_study(name: str, out: Path, workers: int = 1) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    # a study's result does not depend on its workers; two pay off where its work splits evenly
    r = subprocess.run([sys.executable, "-m", f"studies.{name}", "--quick", "--workers", str(workers), "--out", str(out)],
                       cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=2 * QUICK_LIMIT_S)
    secs = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert report.startswith("# ") and "--quick" in report
    pngs = sorted(out.glob("*.png"))
    assert pngs, "a study writes at least one figure"
    for p in pngs:
        b = p.read_bytes()
        assert b.startswith(PNG_MAGIC) and len(b) > 5_000, p
        assert f"]({p.name})" in report  # every figure is shown in the report
    return secs


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def ranks(xs):
    """Average ranks (1-based), written out here as an independent check of the studies' SRCC."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def test_naas_vs_baselines_quick(tmp_path):
    from accelerators import accelerator_from_dict, envelope_of

    out = tmp_path / "naas"
    assert run_study("naas_vs_baselines", out) < QUICK_LIMIT_S
    rows = read_csv(out / "per_network.csv")
    assert {r["envelope"] for r in rows} == {"edgetpu", "nvdla-1024", "eyeriss", "nvdla-256", "shidiannao"}
    for r in rows:
        f = lambda k: float(r[k])  # noqa: E731
        assert f("speedup") == pytest.approx(f("baseline_latency_ms") / f("found_latency_ms"), rel=1e-9)
        assert f("energy_saving") == pytest.approx(f("baseline_energy_pj") / f("found_energy_pj"), rel=1e-9)
        # EDP = energy x latency, so the EDP ratio is the product of the other two
        assert f("edp_improvement") == pytest.approx(f("speedup") * f("energy_saving"), rel=1e-9)
        # the searched accelerator respects the baseline's envelope
        res = json.loads((out / "runs-quick" / r["envelope"] / "result.json").read_text())
        env = envelope_of(r["envelope"])
        acc = accelerator_from_dict(res["accelerator"])
        assert env.fits(acc), env.violations(acc)
        assert acc.num_pes <= math.prod(d["size"] for d in res["baseline"]["accelerator"]["array"])
    summary = json.loads((out / "summary.json").read_text())
    for s in summary["summary"]:
        sel = [float(r["speedup"]) for r in rows if r["envelope"] == s["envelope"]]
        assert s["speedup_geomean"] == pytest.approx(math.prod(sel) ** (1 / len(sel)))


def test_mapping_matters_quick(tmp_path):
    from accelerators import load_accelerator
    from mappings import optimize
    from models.zoo import get_network

    out = tmp_path / "mm"
    assert run_study("mapping_matters", out) < QUICK_LIMIT_S
    cases = json.loads((out / "cases.json").read_text())
    assert cases
    for c in cases:
        assert c["best_edp"] <= c["p10_edp"] <= c["median_edp"] <= c["p90_edp"] <= c["worst_edp"]
        for o in c["optimizers"].values():
            assert o["edp"] >= c["best_edp"] * (1 - 1e-12)
            assert o["ratio_to_best"] == pytest.approx(o["edp"] / c["best_edp"])
    # the study's exact distribution and the project's exhaustive optimizer agree on the optimum
    small = min((c for c in cases if c["distribution"] == "exhaustive"), key=lambda c: c["valid_mappings"])
    layer = next(l for l in get_network(small["network"]).layers if l.name == small["layer"])
    res = optimize(layer, load_accelerator(small["accelerator"]), optimizer="exhaustive")
    assert res.cost.edp == pytest.approx(small["best_edp"], rel=1e-9)
    assert res.evaluated >= small["valid_mappings"]


def test_flops_vs_latency_quick(tmp_path):
    from accelerators import load_accelerator

    out = tmp_path / "fl"
    assert run_study("flops_vs_latency", out) < QUICK_LIMIT_S
    rows = read_csv(out / "networks.csv")
    summary = json.loads((out / "summary.json").read_text())
    for r in rows:
        d, w = int(r["depth"]), int(r["width"])
        assert int(r["macs"]) == d * 9 * w * w * 14 * 14 == 9 * 14 * 14 * int(r["family"])  # by hand
        # no accelerator beats its peak: latency >= MACs / #PEs / clock
        for a in ("eyeriss", "nvdla-256", "shidiannao"):
            acc = load_accelerator(a)
            assert float(r[f"sim:{a}"]) >= int(r["macs"]) / acc.num_pes / (acc.clock_mhz * 1e3) * (1 - 1e-9)
    macs = [int(r["macs"]) for r in rows]
    for b, v in summary["srcc"].items():
        assert v == pytest.approx(pearson(ranks(macs), ranks([float(r[b]) for r in rows])), abs=1e-9)
    # equal MACs do not mean equal CPU latency
    fam = [float(r["cpu:torch"]) for r in rows if r["family"] == rows[0]["family"]]
    assert max(fam) / min(fam) > 1.3


@pytest.mark.skipif(not have_asset("ofa/acc_predictor.pth") or not have_asset("ofa/note10/224_lookup_table.yaml"),
                    reason="needs the OFA data: set CODESIGN_ASSETS to the shared data folder")
def test_latency_monotonicity_quick(tmp_path):
    out = tmp_path / "lm"
    assert run_study("latency_monotonicity", out, workers=2) < QUICK_LIMIT_S
    summary = json.loads((out / "summary.json").read_text())
    lat = read_csv(out / "latencies.csv")
    sources = summary["sources"]
    for a in sources:
        for b in sources:
            want = pearson(ranks([float(r[a]) for r in lat]), ranks([float(r[b]) for r in lat]))
            assert summary["srcc"][a][b] == pytest.approx(want, abs=1e-9)
        assert summary["srcc"][a][a] == pytest.approx(1.0)


@pytest.mark.skipif(not have_asset("nasbench201/oneproxy_latency.csv"),
                    reason="needs the NAS-Bench-201 latency set: set CODESIGN_ASSETS to the shared data folder")
def test_oneproxy_nb201_quick(tmp_path):
    from models.assets import asset_path

    out = tmp_path / "op"
    assert run_study("oneproxy_nb201", out, workers=2) < QUICK_LIMIT_S
    summary = json.loads((out / "summary.json").read_text())
    rows = read_csv(asset_path("nasbench201/oneproxy_latency.csv"))
    devices = summary["devices"]
    assert len(devices) == 8 and len(summary["pairs"]) == 8 * 7
    # the raw SRCC matrix, recomputed here from the data file
    for i in (0, 3):
        for j in (1, 5):
            want = pearson(ranks([float(r[devices[i]]) for r in rows]), ranks([float(r[devices[j]]) for r in rows]))
            assert summary["srcc_before"][i][j] == pytest.approx(want, abs=1e-9)
    for p in summary["pairs"]:
        assert [r["k"] for r in p["after"]] == summary["samples"]
        for r in p["after"]:
            assert -1.0 <= r["srcc_before_heldout"] <= 1.0
            assert r["srcc_mean"] is None or r["srcc_min"] <= r["srcc_mean"] <= 1.0


def test_depth_first_quick(tmp_path):
    from mappings.evaluate import evaluate_network
    from models.zoo import get_network

    out = tmp_path / "df"
    assert run_study("depth_first", out, workers=2) < QUICK_LIMIT_S
    summary = json.loads((out / "summary.json").read_text())
    res = summary["resolution"]
    for r in summary["pairs"]:
        # the layer-by-layer side is what evaluate_network gives with the same mapper
        ref = evaluate_network(get_network(r["network"], resolution=res), r["preset"], optimizer="heuristic")
        assert r["edp_lbl"] == pytest.approx(ref.total.edp, rel=1e-12)
        assert r["edp_gain"] == pytest.approx(r["edp_lbl"] / r["edp_fused"]) and r["edp_gain"] >= 1
        assert r["dram_fused"] < r["dram_lbl"]  # the inverted-residual blocks fuse on every preset
    m = next(m for m in summary["memory"] if m["network"] == "mobilenet_v2")
    # by hand: features.2's expand, (res/2)^2 x (16 + 96) bytes at int8
    assert m["peak_lbl_kb"] * 1024 == (res // 2) ** 2 * (16 + 96)
    assert m["reduction"] > 2


@pytest.mark.skipif(not have_asset("ofa/acc_predictor.pth"),
                    reason="needs the OFA accuracy predictor: set CODESIGN_ASSETS to the shared data folder")
def test_mcu_fit_quick(tmp_path):
    from accelerators.memory import peak_memory
    from models.predictors import load_predictor
    from models.spaces import get_space

    out = tmp_path / "mcu"
    assert run_study("mcu_fit", out) < QUICK_LIMIT_S
    summary = json.loads((out / "summary.json").read_text())
    space, pred = get_space("ofa-mbv3"), load_predictor("ofa-mbv3")
    fitted = [r for r in summary["best"] + summary["flash"] if r["fits"]]
    assert fitted
    for r in fitted:
        # the reported peak, Flash and accuracy are what the memory model and the predictor give
        pm = peak_memory(space.to_network(r["arch"]), r["schedule"])
        assert r["peak_kb"] == pm.peak_sram_bytes / 1024 <= r["sram_kb"]
        assert r["flash_kb"] == pm.flash_bytes / 1024
        assert r["flash_bound_kb"] is None or r["flash_kb"] <= r["flash_bound_kb"]
        assert r["arch"]["r"] == r["resolution"]
        assert r["accuracy"] == pytest.approx(float(pred.predict([r["arch"]])[0]), abs=1e-6)
    # at 112 px the smallest layer-by-layer peak is 294 kB (counted by hand in the memory tests):
    # 256 kB fits only patch-based
    lbl = next(r for r in summary["best"] if r["resolution"] == 112 and r["schedule"] == "layer" and r["sram_kb"] == 256)
    assert not lbl["fits"] and lbl["smallest_peak_kb"] == 294.0


@pytest.mark.skipif(not have_asset("nasbench201/hw360_cifar100_pi5.csv.gz"),
                    reason="needs the HW-NAS-Bench-360 table: set CODESIGN_ASSETS to the shared data folder")
def test_nb201_cosearch_quick(tmp_path):
    from models.nb201_table import load_hw360

    out = tmp_path / "nb"
    assert run_study("nb201_cosearch", out) < QUICK_LIMIT_S
    summary = json.loads((out / "summary.json").read_text())
    table = load_hw360()
    for s in summary["summary"]:
        acc, lat = table.accuracy, table.latency(s["runtime"])
        assert s["reference"] == {"accuracy": pytest.approx(acc.min()), "cost": pytest.approx(lat.max())}
        # the true front, counted here: sweep by latency, keep what is more accurate than all faster cells
        front, best = 0, -1.0
        for i in sorted(range(len(acc)), key=lambda i: (lat[i], -acc[i])):
            if acc[i] > best:
                front, best = front + 1, acc[i]
        assert s["true_front_size"] == front
        runs = [r for r in summary["runs"] if r["runtime"] == s["runtime"] and r["method"] == s["method"]]
        assert all(0 < r["ratio"] <= 1 and r["evaluated"] == 500 for r in runs if "evaluated" in r)
        assert s["ratio_mean"] == pytest.approx(sum(r["ratio"] for r in runs) / len(runs))
        assert s["ratio_min"] == min(r["ratio"] for r in runs)
    evo = next(s for s in summary["summary"] if s["method"] == "evolution")
    rnd = next(s for s in summary["summary"] if s["method"] == "random")
    assert evo["ratio_min"] > rnd["ratio_mean"]  # 500 evolved cells cover more of the front than 500 random ones


@pytest.mark.skipif(not have_asset("ofa/acc_predictor.pth") or not have_asset("ofa/note10/160_lookup_table.yaml"),
                    reason="needs the OFA predictor and Note10 tables: set CODESIGN_ASSETS to the shared data folder")
def test_differentiable_vs_evolution_quick(tmp_path):
    from codesign.validation.latency import get_backend

    out = tmp_path / "dz"
    assert run_study("differentiable_vs_evolution", out) < QUICK_LIMIT_S
    s = json.loads((out / "summary.json").read_text())
    lut = get_backend("lut:note10")
    smallest = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}
    largest = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}
    assert s["latency_range_ms"] == [pytest.approx(lut.measure(smallest, space="ofa-mbv3").ms),
                                     pytest.approx(lut.measure(largest, space="ofa-mbv3").ms)]
    for r in s["rows"]:
        assert r["evo_latency_ms"] <= r["target_ms"] and r["diff_latency_ms"] <= r["target_ms"]
        assert r["eq_latency_ms"] <= r["target_ms"]
        if r["reach_seconds"] is not None:
            assert r["reach_ratio"] == pytest.approx(r["reach_seconds"] / r["evo_seconds"])
    reached = [r for r in s["rows"] if r["reach_seconds"] is not None]
    assert s["note10"]["runs"] == len(s["rows"]) and s["note10"]["reached"] == len(reached)
    assert s["note10"]["within_ratio"] == sum(r["reach_ratio"] <= s["target_ratio"] for r in reached)
