"""Latency monotonicity: SRCC by hand, the matrix and heatmap, reading latency tables,
measuring a search space on backends, and ``codesign monotonicity`` end to end."""
import gzip
import json
import math

import numpy as np
import pytest

from codesign.cli import main
from codesign.validation.latency import LatencyResult, register
from codesign.validation.latency.base import LatencyBackend
from codesign.validation.monotonicity import (MonotonicityError, heatmap_png, load_latency_csv, measure_backends, srcc,
                                   srcc_lower_bound, srcc_matrix, srcc_rows)
from models.assets import have_asset

ONEPROXY = "nasbench201/oneproxy_latency.csv"
NEEDS = "needs the NAS-Bench-201 latency data: set CODESIGN_ASSETS to the shared data folder"


@register("unit-macs")
class _Macs(LatencyBackend):
    """MACs / 1e6 as 'latency' (test only)."""
    scheme = "unit-macs"

    def _measure(self, target):
        return LatencyResult(target.network.macs / 1e6, 0.0, 1, self.spec)


@register("unit-negmacs")
class _NegMacs(LatencyBackend):
    scheme = "unit-negmacs"

    def _measure(self, target):
        return LatencyResult(1e3 - target.network.macs / 1e6, 0.0, 1, self.spec)


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- SRCC

def test_srcc_by_hand():
    assert srcc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert srcc([1, 2, 3], [10, 20, 300]) == pytest.approx(1.0)
    # ties: ranks (1, 2.5, 2.5, 4) vs (1, 3, 2, 4): cov 4.5, var 4.5 and 5 -> sqrt(0.9)
    assert srcc([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))
    assert math.isnan(srcc([1, 1, 1], [1, 2, 3]))      # undefined for a constant input
    with pytest.raises(MonotonicityError, match="differ in length"):
        srcc([1, 2], [1, 2, 3])
    with pytest.raises(MonotonicityError, match="finite"):
        srcc([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(MonotonicityError, match="at least 2"):
        srcc([1], [1])


def test_srcc_rows_is_srcc_of_each_row():
    b = [1, 3, 2, 4]
    P = [[1, 2, 2, 3],          # ties: sqrt(0.9) as above
         [4, 3, 2, 1],          # ranks (4, 3, 2, 1) vs (1, 3, 2, 4): -0.8
         [5, 5, 5, 5],          # constant: undefined
         [1, np.inf, 2, 3]]     # non-finite: undefined (a prediction that overflowed)
    r = srcc_rows(P, b)
    assert r[:2] == pytest.approx([math.sqrt(0.9), -0.8]) and np.isnan(r[2:]).all()
    assert r[:2] == pytest.approx([srcc(p, b) for p in P[:2]], abs=1e-15)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 60).astype(float)
    Q = rng.integers(0, 5, (17, 60)).astype(float)
    assert srcc_rows(Q, y) == pytest.approx([srcc(q, y) for q in Q], abs=1e-12)
    assert np.isnan(srcc_rows(Q, np.ones(60))).all()
    with pytest.raises(MonotonicityError, match="4 columns"):
        srcc_rows([[1, 2, 3]], b)


def test_srcc_lower_bound_by_hand():
    # tanh(atanh(0.9) - 1.645 * 1.03 / sqrt(25)) = tanh(1.47222 - 0.33887) = tanh(1.13335)
    assert srcc_lower_bound(0.9, 28) == pytest.approx(0.81216, abs=1e-5)
    assert srcc_lower_bound(0.9, 28, z=0) == 0.9
    assert srcc_lower_bound(float("nan"), 28) == -1.0 and srcc_lower_bound(0.99, 3) == -1.0


def test_srcc_matrix_and_heatmap(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random(30)
    cols = {"a": a, "b": a ** 3, "c": -a + 0.3 * rng.random(30), "d": rng.random(30)}
    names, M = srcc_matrix(cols)
    assert names == ["a", "b", "c", "d"]
    assert np.allclose(M, M.T) and np.allclose(np.diag(M), 1.0)
    assert M[0, 1] == pytest.approx(1.0)                      # monotone transform
    assert M[0, 2] == pytest.approx(srcc(cols["a"], cols["c"])) and M[0, 2] < -0.8
    assert M[2, 3] == pytest.approx(srcc(cols["d"], cols["c"]))
    with pytest.raises(MonotonicityError, match="differ in length"):
        srcc_matrix({"a": [1, 2, 3], "b": [1, 2]})
    png = heatmap_png(names, M, tmp_path / "h.png", "test")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(MonotonicityError, match="does not match"):
        heatmap_png(names[:3], M, tmp_path / "x.png")


# ---------------------------------------------------------------- tables

ARCH_A = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
ARCH_B = "|none~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"


def onehot(arch: str) -> str:
    from models.spaces import get_space

    return "".join(str(int(v)) for v in get_space("nasbench201").encode(arch)) + "1"


def test_load_latency_csv_encoding_and_arch_str(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("arch,encoding,dev1,dev2,note\n"
                 f"0,{onehot(ARCH_A)},1.5,2.0,x\n1,{onehot(ARCH_B)},2.5,1.0,y\n")
    t = load_latency_csv(p)
    assert list(t.columns) == ["dev1", "dev2"] and len(t) == 2      # index and text columns left out
    assert t.arch_strs == [ARCH_A, ARCH_B] and t.X.shape == (2, 31)
    g = tmp_path / "t.csv.gz"
    g.write_bytes(gzip.compress(f"arch_idx,arch_str,acc\n7,{ARCH_A},50.0\n8,{ARCH_B},60.0\n".encode()))
    t2 = load_latency_csv(g)
    assert list(t2.columns) == ["acc"] and np.array_equal(t2.X, t.X)
    # ARCH_A: edge 0 (1<-0) is a conv and node 1 feeds nothing live -> none in the live encoding;
    # edge 2 (2<-1) none; the skip 3<-0 and the pool 3<-2 (node 2 is fed by nothing) -> none too
    live = t.encoding("live")
    assert live[0, 0:5].tolist() == [1, 0, 0, 0, 0] and live[0, 15:20].tolist() == [0, 1, 0, 0, 0]
    assert live[0, 25:30].tolist() == [1, 0, 0, 0, 0]
    # ARCH_B: the pool on 2<-1 reads node 1, which nothing feeds (1<-0 is none) -> none
    assert live[1, 10:15].tolist() == [1, 0, 0, 0, 0] and t.X[1, 10:15].tolist() == [0, 0, 0, 0, 1]
    assert np.array_equal(live[1, 15:], t.X[1, 15:]) and np.array_equal(live[1, :10], t.X[1, :10])
    # operator counts (none, skip, conv1x1, conv3x3, pool) over all edges, and over live edges
    counts, live_counts = t.encoding("counts"), t.encoding("live-counts")
    assert counts.tolist() == [[3, 1, 0, 1, 1], [3, 0, 1, 1, 1]]
    assert live_counts.tolist() == [[5, 1, 0, 0, 0], [4, 0, 1, 1, 0]]
    assert np.array_equal(t.encoding("counts+live"), np.hstack([counts, live_counts, live]))
    with pytest.raises(MonotonicityError, match="unknown encoding 'zeros'"):
        t.encoding("zeros")
    with pytest.raises(MonotonicityError, match="not found"):
        load_latency_csv(tmp_path / "missing.csv")
    with pytest.raises(MonotonicityError, match="no numeric column 'dev3'"):
        t.column("dev3")


def test_measure_backends_on_a_space():
    cols, archs = measure_backends("nasbench201", ["unit-macs", "unit-negmacs"], 12, seed=3, progress=False,
                                   return_archs=True)
    assert len(archs) == 12 and len({json.dumps(a) for a in archs}) == 12
    assert srcc(cols["unit-macs"], cols["unit-negmacs"]) == pytest.approx(-1.0)
    again = measure_backends("nasbench201", ["unit-macs"], 12, seed=3, progress=False)
    assert np.array_equal(again["unit-macs"], cols["unit-macs"])
    from models.errors import CodesignError
    with pytest.raises(CodesignError, match="unknown search space"):
        measure_backends("no-such-space", ["unit-macs"], 5)
    with pytest.raises(CodesignError, match="unknown latency backend"):
        measure_backends("nasbench201", ["nope:x"], 5)


def test_add_backend_columns_measures_the_table_cells(tmp_path):
    from codesign.validation.monotonicity import add_backend_columns
    from models.spaces import get_space

    t = load_latency_csv(synthetic_csv(tmp_path, n=30))
    t2 = add_backend_columns(t, ["unit-macs"], rows=10, seed=1, progress=False)
    assert len(t2) == 10 and list(t2.columns) == ["proxy", "target", "acc", "unit-macs"] and len(t) == 30
    sp = get_space("nasbench201")
    for i in (0, 9):
        row = t.arch_strs.index(t2.arch_strs[i])
        assert t2.column("proxy")[i] == t.column("proxy")[row]
        assert t2.column("unit-macs")[i] == pytest.approx(sp.to_network(t2.arch_strs[i]).macs / 1e6)
    with pytest.raises(MonotonicityError, match="clash"):
        add_backend_columns(t2, ["unit-macs"], progress=False)


# ---------------------------------------------------------------- CLI

def synthetic_csv(tmp_path, n=400, seed=0):
    """NB201 cells with a linear proxy and a target whose per-operator costs differ."""
    from models.spaces import get_space

    rng = np.random.default_rng(seed)
    sp = get_space("nasbench201")
    w_proxy = rng.uniform(0.2, 1.0, 30)
    w_target = w_proxy * np.where(rng.random(30) < 0.3, rng.uniform(0.2, 4.0, 30), 1.0)
    lines = ["arch,encoding,proxy,target,acc"]
    seen = set()
    while len(lines) <= n:
        a = sp.sample(rng)
        x = sp.encode(a).astype(float)
        code = "".join(str(int(v)) for v in x) + "1"
        if code in seen:
            continue
        seen.add(code)
        lines.append(f"{len(lines) - 1},{code},{x @ w_proxy + 1.0:.6f},{x @ w_target + 2.0:.6f},"
                     f"{50 + 10 * rng.random():.4f}")
    p = tmp_path / "syn.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_cli_pair_before_and_after(tmp_path, capsys):
    p = synthetic_csv(tmp_path)
    t = load_latency_csv(p)
    rc, out, err = run(capsys, "monotonicity", "--data", str(p), "--proxy", "proxy", "--target", "target",
                       "--samples", "40", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["srcc_before"] == pytest.approx(srcc(t.column("proxy"), t.column("target")))
    assert d["srcc_after"] is None and d["samples_used"] == 0 and d["rows_evaluated"] == 400
    assert d["check_samples"] == 40 and d["check_passes"] is False
    # the synthetic target costs each operator differently on each edge: the one-hot encoding
    # explains it, the operator counts cannot; offered both, the validation picks one-hot
    rc, out, err = run(capsys, "monotonicity", "--data", str(p), "--proxy", "proxy", "--target", "target",
                       "--samples", "40", "--adapt", "--seed", "1", "--encoding", "counts,onehot", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert set(d) >= {"srcc_before", "srcc_after", "samples_used", "lambda", "rows_evaluated"}
    assert d["samples_used"] in (30, 40) and d["rows_evaluated"] == 400 - d["samples_used"]
    assert d["srcc_before"] < 0.95 and d["srcc_after"] > 0.99
    assert d["lambda"] > 0 and d["encodings"] == "counts,onehot +residual" and d["features"] == "onehot"
    rc, out, err = run(capsys, "monotonicity", "--data", str(p), "--proxy", "proxy", "--target", "target",
                       "--samples", "40", "--adapt", "--seed", "1", "--encoding", "counts", "--json")
    assert json.loads(out)["srcc_after"] < 0.98
    rc, out, err = run(capsys, "monotonicity", "--data", str(p), "--proxy", "proxy", "--target", "target",
                       "--samples", "40", "--adapt", "--repeats", "3", "--encoding", "onehot,live", "--json")
    d = json.loads(out)
    assert d["seeds"] == [0, 1, 2] and len(d["runs"]) == 3
    assert d["srcc_after"] == pytest.approx(np.mean([r["srcc_after"] for r in d["runs"]]))
    assert sum(d["features"].values()) == 3 and set(d["features"]) <= {"onehot", "live"}


def test_cli_matrix_pareto_and_space(tmp_path, capsys):
    p = synthetic_csv(tmp_path)
    png = tmp_path / "m.png"
    rc, out, err = run(capsys, "monotonicity", "--data", str(p), "--heatmap", str(png), "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["columns"] == ["proxy", "target", "acc"] and d["rows"] == 400
    assert d["srcc"][0][0] == 1.0 and d["srcc"][0][1] == d["srcc"][1][0] and png.stat().st_size > 0
    rc, out, err = run(capsys, "monotonicity", "--data", str(p), "--proxy", "proxy", "--target", "target",
                       "--pareto", "acc", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["true_points_found"] <= d["true_front_points"] and d["pareto_size"] >= 1
    assert d["target_measurements"] >= d["candidates_measured"]
    rc, out, err = run(capsys, "monotonicity", "--data", str(p), "--backends", "unit-macs,unit-negmacs",
                       "--rows", "50", "--columns", "unit-macs,unit-negmacs,proxy", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["rows"] == 50 and d["srcc"][0][1] == pytest.approx(-1.0)
    rc, out, err = run(capsys, "monotonicity", "--space", "nasbench201", "--backends", "unit-macs,unit-negmacs",
                       "--samples", "8", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["backends"] == ["unit-macs", "unit-negmacs"] and d["samples"] == 8
    assert d["srcc"][0][1] == pytest.approx(-1.0) and d["srcc"][1][1] == 1.0


@pytest.mark.parametrize("argv, msg", [
    (["--data", "{csv}", "--proxy", "proxy", "--target", "nope"], "no numeric column 'nope'"),
    (["--data", "{dir}/missing.csv"], "not found"),
    (["--space", "no-such-space", "--backends", "unit-macs,unit-negmacs"], "unknown search space"),
    (["--space", "nasbench201", "--backends", "unit-macs"], "at least two"),
    (["--data", "{csv}", "--proxy", "proxy"], "both --proxy"),
    (["--data", "{csv}", "--proxy", "proxy", "--target", "target", "--samples", "400"], "no rows"),
    (["--data", "{plain}", "--proxy", "a", "--target", "b", "--adapt", "--samples", "10"],
     "no architecture column"),
    (["--data", "{csv}", "--proxy", "proxy", "--target", "target", "--adapt", "--encoding", "onehot,hex"],
     "--encoding: unknown hex"),
    ([], "either --data"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, msg):
    csv_path = synthetic_csv(tmp_path, n=60)
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n" + "".join(f"{i},{i * i % 7}\n" for i in range(30)))
    argv = [a.format(csv=csv_path, dir=tmp_path, plain=plain) for a in argv]
    rc, out, err = run(capsys, "monotonicity", *argv, "--json")
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and msg in err


@pytest.mark.skipif(not have_asset(ONEPROXY), reason=NEEDS)
def test_cli_oneproxy_adaptation(capsys):
    from models.assets import asset_path

    path = str(asset_path(ONEPROXY))
    rc, out, err = run(capsys, "monotonicity", "--data", path, "--proxy", "true_vpu", "--target", "rice_eyeriss",
                       "--samples", "50", "--adapt", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["srcc_before"] < 0.7 and d["srcc_after"] >= 0.95 and d["samples_used"] <= 50
    assert d["rows_evaluated"] == 1999 - d["samples_used"]
    assert d["features"] == "counts"     # the simulator costs every operator, dead or live
    def ten_seeds(target, *opts):
        rc, out, err = run(capsys, "monotonicity", "--data", path, "--proxy", "true_vpu", "--target", target,
                           "--samples", "50", "--adapt", "--repeats", "10", *opts, "--json")
        assert rc == 0, err
        return json.loads(out)

    # Pixel 3, the device the VPU ranks worst (13.6 % outlier cells): the average of 20
    # subsample fits reaches 0.9 on average, above one fit on all samples (over 50 seeds one
    # fit ends below 0.9, see docs/monotonicity.md)
    res = {bags: ten_seeds("rice_pixel3", "--bags", bags) for bags in ("0", "20")}
    assert res["20"]["bags"] == 20 and res["0"]["bags"] == 0
    assert res["20"]["srcc_before"] < 0.62 and res["20"]["samples_used"] <= 50
    assert 0.85 <= res["0"]["srcc_after"] < res["20"]["srcc_after"] < 0.95 and res["20"]["srcc_after"] >= 0.9
    # GTX GPU: per-edge one-hot features miss 0.9 with 50 samples; the operator counts plus the
    # live edges (one of the default's three encodings) reach it on average
    res = {enc: ten_seeds("eagle_gtx", "--encoding", enc) for enc in ("onehot", "counts,live-counts,counts+live")}
    assert res["onehot"]["srcc_before"] < 0.7
    assert res["onehot"]["srcc_after"] < 0.89 and res["counts,live-counts,counts+live"]["srcc_after"] >= 0.9
    assert res["counts,live-counts,counts+live"]["features"] == {"counts+live": 10}
