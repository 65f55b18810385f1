"""NAS-Bench-201 as a co-search space: fronts and 2-D hypervolume against hand-computed areas,
the true front of a synthetic table, the evolution scored exactly, and the command line with
the measured accuracy table."""
import itertools
import json

import numpy as np
import pytest

from codesign.cli import main
from codesign.search.pareto import (crowding, front_indices, hypervolume, hypervolume_ratio, nondominated_ranks,
                                    reference_point)
from codesign.search.subnet_evolution import Candidate, EvolutionConfig, evolve, pareto_front
from models.assets import have_asset
from models.errors import CodesignError
from models.nb201_table import Hw360Table, TableAccuracy
from models.spaces.nasbench201 import EDGES, OPS, NasBench201Space, arch_to_string


# ---- hypervolume by hand ------------------------------------------------------------------
def test_hypervolume_of_hand_made_fronts():
    # (accuracy, cost): (0.5, 1) and (0.8, 3) against (0, 4): a 0.5 x (3 - 1) strip and a 0.8 x (4 - 3) strip
    assert hypervolume([0.5, 0.8], [1, 3], (0, 4)) == pytest.approx(0.5 * 2 + 0.8 * 1)
    # a dominated point, a duplicate and a point outside the box change nothing
    assert hypervolume([0.5, 0.8, 0.4, 0.8, 0.9], [1, 3, 2, 3, 5], (0, 4)) == pytest.approx(1.8)
    # one point: a rectangle; the reference accuracy is subtracted
    assert hypervolume([0.5], [1], (0.2, 4)) == pytest.approx(0.3 * 3)
    # three steps against (0.1, 10): 0.2 x 2 + 0.4 x 3 + 0.6 x 3
    assert hypervolume([0.3, 0.5, 0.7], [2, 4, 7], (0.1, 10)) == pytest.approx(0.4 + 1.2 + 1.8)
    assert hypervolume([], [], (0, 1)) == 0.0
    assert hypervolume([0.05], [0.5], (0.1, 1)) == 0.0  # below the reference accuracy


def test_ratio_and_reference_point():
    acc, cost = [0.3, 0.5, 0.7, 0.2, 0.6], [2, 4, 7, 9, 8]
    assert reference_point(acc, cost) == (0.2, 9)
    # true front: (0.3, 2), (0.5, 4), (0.7, 7); hypervolume against (0.2, 9): 0.1 x 2 + 0.3 x 3 + 0.5 x 2 = 2.1
    r = hypervolume_ratio([0.3, 0.7], [2, 7], acc, cost)
    # found (0.3, 2), (0.7, 7): 0.1 x 5 + 0.5 x 2 = 1.5
    assert r["true_hypervolume"] == pytest.approx(2.1) and r["hypervolume"] == pytest.approx(1.5)
    assert r["ratio"] == pytest.approx(1.5 / 2.1) and (r["true_front_size"], r["true_front_found"]) == (3, 2)
    assert hypervolume_ratio(acc, cost, acc, cost)["ratio"] == pytest.approx(1.0)
    with pytest.raises(CodesignError, match="no area"):
        hypervolume_ratio([0.3], [2], [0.3], [2])
    with pytest.raises(CodesignError, match="finite"):
        hypervolume([float("nan")], [1], (0, 2))


def test_front_ties_ranks_and_crowding():
    # equal cost: the more accurate; equal points: the first given
    assert front_indices([0.5, 0.6, 0.6, 0.4], [1, 1, 1, 0.5]).tolist() == [3, 1]
    cands = [Candidate({"i": i}, a, c) for i, (a, c) in enumerate([(0.5, 1), (0.6, 1), (0.6, 1), (0.4, 0.5)])]
    assert [c.arch["i"] for c in pareto_front(cands)] == [3, 1]
    assert nondominated_ranks([0.9, 0.5, 0.8, 0.4, 0.8], [3, 1, 3, 2, 4]).tolist() == [0, 0, 1, 1, 2]
    d = crowding([0.1, 0.2, 0.4], [1, 2, 4])
    assert np.isinf(d[0]) and np.isinf(d[2]) and d[1] == pytest.approx((0.4 - 0.1) / 0.3 + (4 - 1) / 3)


# ---- a synthetic table of every cell --------------------------------------------------------
def synthetic_table(cells=None) -> Hw360Table:
    """Accuracy grows with the convolutions, latency with their cost: 3x3 conv 3, 1x1 conv 1."""
    cells = cells if cells is not None else [list(c) for c in itertools.product(OPS, repeat=len(EDGES))]
    strs = tuple(arch_to_string(c) for c in cells)
    n3 = np.array([c.count("nor_conv_3x3") for c in cells])
    n1 = np.array([c.count("nor_conv_1x1") for c in cells])
    pools = np.array([c.count("avg_pool_3x3") for c in cells])
    acc = 0.1 + 0.1 * n3 + 0.04 * n1 + 0.01 * pools
    lat = 1.0 + 3.0 * n3 + 1.0 * n1 + 0.5 * pools
    return Hw360Table(arch_strs=strs, accuracy=acc, latency_ms={"onnx": lat}, energy_mj={"onnx": lat},
                      index={s: i for i, s in enumerate(strs)})


def test_true_front_of_a_small_table():
    cells = [["none"] * 6, ["nor_conv_1x1"] + ["none"] * 5, ["nor_conv_3x3"] + ["none"] * 5,
             ["avg_pool_3x3"] + ["none"] * 5, ["nor_conv_3x3", "nor_conv_1x1"] + ["none"] * 4]
    t = synthetic_table(cells)
    # (acc, latency): none (0.1, 1), 1x1 (0.14, 2), 3x3 (0.2, 4), pool (0.11, 1.5), 3x3+1x1 (0.24, 5)
    assert front_indices(t.accuracy, t.latency("onnx")).tolist() == [0, 3, 1, 2, 4]
    r = hypervolume_ratio(t.accuracy[[0, 2]], t.latency("onnx")[[0, 2]], t.accuracy, t.latency("onnx"))
    # reference (0.1, 5): true front area 0.01 x 0.5 + 0.04 x 2 + 0.1 x 1 = 0.185; found: 0.1 x 1 = 0.1
    assert r["true_hypervolume"] == pytest.approx(0.185) and r["ratio"] == pytest.approx(0.1 / 0.185)


def test_pareto_evolution_on_the_whole_synthetic_space_is_exact_and_reproducible():
    t = synthetic_table()
    lat = t.latency("onnx")
    cfg = EvolutionConfig(population=30, generations=1000, mutation_prob=0.3, seed=3, select="pareto",
                          max_evaluations=300)

    def run():
        return evolve(NasBench201Space(), TableAccuracy(t), lambda a: float(lat[t.row(a)]), 0.0, cfg)

    res = run()
    assert res.evaluated == 300 == len({json.dumps(c.arch) for c in res.candidates})
    rows = t.rows([c.arch for c in res.candidates])
    assert all(c.accuracy == t.accuracy[r] and c.cost == lat[r] for c, r in zip(res.candidates, rows))
    ratio = hypervolume_ratio(t.accuracy[rows], lat[rows], t.accuracy, lat)["ratio"]
    rnd = np.random.default_rng(3).choice(len(t), 300, replace=False)
    assert ratio > hypervolume_ratio(t.accuracy[rnd], lat[rnd], t.accuracy, lat)["ratio"]
    assert ratio > 0.95
    assert run().to_dict() == res.to_dict()


# ---- the command line ---------------------------------------------------------------------
needs_table = pytest.mark.skipif(not have_asset("nasbench201/hw360_cifar100_pi5.csv.gz"),
                                 reason="needs the HW-NAS-Bench-360 table: set CODESIGN_ASSETS")


@needs_table
def test_cli_co_search_with_the_measured_accuracy(tmp_path, capsys):
    from models.nb201_table import load_hw360

    d = tmp_path / "nb"
    rc = main(["search", "--space", "nasbench201", "--accuracy", "table", "--min-accuracy", "0.7", "--budget", "1",
               "--batch", "1", "--population", "2", "--generations", "0", "--final-mapper", "heuristic",
               "--workers", "1", "--out", str(d), "--json", "--quiet"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    res = json.loads(out.out)
    sub = res["found"]["subnet"]
    assert res["config"]["accuracy"] == "table" and sub["accuracy"] >= 0.7
    assert sub["accuracy"] == pytest.approx(load_hw360().accuracy[load_hw360().row(sub["arch"])])
    assert (d / "report.md").exists()


@needs_table
@pytest.mark.parametrize("args,needle", [
    (["--space", "nasbench201", "--min-accuracy", "0.6"], "no accuracy predictor for space 'nasbench201': give "
                                                          "--accuracy table"),
    (["--space", "ofa-mbv3", "--accuracy", "table", "--min-accuracy", "0.6"], "of nasbench201 cells, not of space"),
    (["--space", "nasbench201", "--accuracy", "table", "--min-accuracy", "0.8"],
     "no sub-network reaches accuracy 0.8 in 200 samples (the best: 0.7"),
    (["--space", "nasbench201", "--accuracy", "tabel", "--min-accuracy", "0.6"], "unknown accuracy source 'tabel'"),
    (["--accuracy", "table"], "--accuracy: option of the sub-network co-search: it needs --space"),
])
def test_cli_accuracy_errors(tmp_path, capsys, args, needle):
    assert main(["search", *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_cli_a_zero_cost_proxy_scores_the_search_alone(tmp_path, capsys):
    pytest.importorskip("models.proxies")
    from accelerators.memory import peak_memory

    rc = main(["search", "--space", "nasbench201", "--objective", "accuracy", "--accuracy", "params", "--max-sram",
               "40", "--population", "6", "--generations", "1", "--out", str(tmp_path / "p"), "--json", "--quiet"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    best = json.loads(out.out)["best"]
    net = NasBench201Space().to_network(best["arch"])
    assert best["accuracy"] == net.params and best["peak_sram_bytes"] == peak_memory(net).peak_sram_bytes <= 40 * 1024
    # a proxy's score is no accuracy fraction: no --min-accuracy, and not in the co-search
    for args, needle in ((["--objective", "accuracy", "--min-accuracy", "0.5"], "drop --min-accuracy"),
                         (["--min-accuracy", "0.5"], "--objective accuracy (the highest score")):
        assert main(["search", "--space", "nasbench201", "--accuracy", "params", *args,
                     "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
