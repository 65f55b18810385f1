"""Differentiable sub-network search over OFA MobileNetV3 at a Note10 latency target."""
import json

import numpy as np
import pytest

from models.assets import have_asset

pytestmark = pytest.mark.skipif(
    not have_asset("ofa/acc_predictor.pth") or not have_asset("ofa/note10/224_lookup_table.yaml"),
    reason="needs the OFA predictor and Note10 tables: set CODESIGN_ASSETS to the shared data folder")

torch = pytest.importorskip("torch")

from codesign.search import differentiable as dz  # noqa: E402
from codesign.search.subnet_evolution import EvolutionConfig, InfeasibleError  # noqa: E402
from models.errors import CodesignError  # noqa: E402


@pytest.fixture(scope="module")
def lut():
    from codesign.validation.latency import get_backend

    return get_backend("lut:note10")


@pytest.fixture(scope="module")
def setup(lut):
    from models.predictors import load_predictor
    from models.spaces import get_space

    space = get_space("ofa-mbv3")
    return space, load_predictor("ofa-mbv3"), dz.lut_table(lut, space)


def onehots(space, table, archs):
    """The (kernel, expand, depth, resolution) one-hot probability tensors of arch dicts."""
    idx = [dz.to_indices(a, table) for a in archs]
    sizes = (len(dz.KS), len(dz.EXPAND), len(dz.DEPTHS), len(table.resolutions))
    return [torch.nn.functional.one_hot(torch.from_numpy(np.concatenate([i[g] for i in idx])), n).to(torch.float64)
            for g, n in enumerate(sizes)]


def sample(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_per_op_table_sums_to_the_lut_backend(setup, lut):
    space, _, table = setup
    archs = sample(space, 25) + [{"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224},
                                 {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}]
    for a in archs:
        assert table.latency(a) == pytest.approx(lut.measure(a, space="ofa-mbv3").ms, rel=1e-12, abs=1e-9)
    # the batched form agrees with the per-arch one
    K, E, D, R = (np.concatenate(x) for x in zip(*(dz.to_indices(a, table) for a in archs)))
    assert np.allclose(table.latency_idx(K, E, D, R), [table.latency(a) for a in archs], rtol=0, atol=1e-12)
    assert table.resolutions == (160, 176, 192, 208, 224) and table.source == "lut:note10"
    assert table.max_latency() == pytest.approx(lut.measure(archs[-2], space="ofa-mbv3").ms)


def test_smallest_latency_is_the_smallest(setup, lut):
    space, _, table = setup
    low, arch = table.min_latency()
    assert low == pytest.approx(lut.measure(arch, space="ofa-mbv3").ms)
    assert arch == {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}
    assert low < min(table.latency(a) for a in sample(space, 200, seed=3))


def test_expected_latency_of_one_hot_is_exact(setup):
    space, predictor, table = setup
    rel = dz.Relaxation(space, predictor, table)
    archs = sample(space, 16, seed=1)
    got = rel.expected_latency(*onehots(space, table, archs)).numpy()
    assert np.allclose(got, [table.latency(a) for a in archs], rtol=1e-12, atol=1e-9)


def test_expected_latency_of_a_mixture_is_the_average(setup):
    """Depth probabilities 1/2 on depth 2 and 4 of stage 0: E[lat] is the mean of both archs."""
    space, predictor, table = setup
    rel = dz.Relaxation(space, predictor, table)
    a = sample(space, 1, seed=2)[0]
    a2, a4 = dict(a, d=[2] + a["d"][1:]), dict(a, d=[4] + a["d"][1:])
    a4["ks"], a4["e"] = list(a["ks"]), list(a["e"])
    a4["ks"][2:4], a4["e"][2:4] = [7, 5], [6, 4]
    pk, pe, pd, pr = onehots(space, table, [a4])
    pd = pd.clone()
    pd[0, 0] = torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    got = float(rel.expected_latency(pk, pe, pd, pr)[0])
    assert got == pytest.approx(0.5 * table.latency(a2) + 0.5 * table.latency(a4), rel=1e-12)


def test_gradient_of_expected_latency_points_to_cheaper_choices(setup):
    space, predictor, table = setup
    rel = dz.Relaxation(space, predictor, table)
    logits = [torch.zeros(1, 20, 3, dtype=torch.float64, requires_grad=True),
              torch.zeros(1, 20, 3, dtype=torch.float64, requires_grad=True),
              torch.zeros(1, 5, 3, dtype=torch.float64, requires_grad=True),
              torch.zeros(1, len(table.resolutions), dtype=torch.float64, requires_grad=True)]
    rel.expected_latency(*[torch.softmax(x, -1) for x in logits]).sum().backward()
    gk, ge, gd, gr = (x.grad[0] for x in logits)
    # raising the logit of kernel 3 / expand 3 / depth 2 / the lowest resolution lowers E[lat]
    assert (gk[:, 0] < 0).all() and (gk[:, 2] > 0).all()
    assert (ge[:, 0] < 0).all() and (ge[:, 2] > 0).all()
    assert (gd[:, 0] < 0).all() and (gd[:, 2] > 0).all()
    assert gr[0] < 0 < gr[-1]
    # and a small step along the gradient of one kernel logit changes E[lat] as predicted
    with torch.no_grad():
        base = float(rel.expected_latency(*[torch.softmax(x, -1) for x in logits])[0])
        logits[0][0, 5, 0] += 1e-4
        moved = float(rel.expected_latency(*[torch.softmax(x, -1) for x in logits])[0])
    assert moved - base == pytest.approx(1e-4 * float(gk[5, 0]), rel=1e-3)


def test_relaxed_predictor_on_one_hot_is_the_predictor(setup):
    space, predictor, table = setup
    rel = dz.Relaxation(space, predictor, table)
    archs = sample(space, 32, seed=4)
    with torch.no_grad():
        got = rel.accuracy(*onehots(space, table, archs)).numpy()
    want = predictor.predict(archs)
    assert np.abs(got - want).max() < 2e-6
    assert np.ptp(want) > 0.01  # the archs differ: the check is not vacuous
    # and its accuracy has a gradient in every logit group
    ps = [p.clone().requires_grad_() for p in onehots(space, table, archs[:1])]
    rel.accuracy(*ps).sum().backward()
    assert all(float(p.grad.abs().sum()) > 0 for p in ps)


def test_search_meets_the_target_and_beats_random_feasible(setup, lut):
    space, predictor, table = setup
    target = 20.0
    res = dz.search_differentiable(space, predictor, table, target, seed=0, steps=20, restarts=8)
    assert res.latency_ms <= target
    assert res.latency_ms == pytest.approx(lut.measure(res.arch, space="ofa-mbv3").ms)
    assert res.accuracy == pytest.approx(float(predictor.predict([res.arch])[0]), abs=1e-12)
    assert space.validate(res.arch) == res.arch
    feasible = [a for a in sample(space, 400, seed=5) if table.latency(a) <= target]
    assert len(feasible) >= 20
    assert res.accuracy > float(predictor.predict(feasible[:20]).max())
    # the trajectory rises to the result, in time order, within the wall time
    t = [p[0] for p in res.trajectory]
    acc = [p[1] for p in res.trajectory]
    assert t == sorted(t) and acc == sorted(acc) and t[-1] <= res.seconds
    assert acc[-1] == pytest.approx(res.accuracy, abs=2e-6)
    assert res.time_to_reach(acc[0]) == t[0] and res.time_to_reach(1.0) is None
    assert res.evaluations >= 8 * 20


def test_search_is_deterministic_per_seed(setup):
    space, predictor, table = setup
    a = dz.search_differentiable(space, predictor, table, 25.0, seed=3, steps=10, restarts=4)
    b = dz.search_differentiable(space, predictor, table, 25.0, seed=3, steps=10, restarts=4)
    assert a.arch == b.arch and a.accuracy == b.accuracy
    g1 = dz.search_differentiable(space, predictor, table, 25.0, seed=3, steps=10, restarts=4, relax="gumbel")
    g2 = dz.search_differentiable(space, predictor, table, 25.0, seed=3, steps=10, restarts=4, relax="gumbel")
    assert g1.arch == g2.arch and g1.latency_ms <= 25.0


def test_time_limit_stops_the_rounds(setup):
    space, predictor, table = setup
    res = dz.search_differentiable(space, predictor, table, 30.0, seed=0, rounds=None, time_limit=0.5)
    assert 0.5 <= res.seconds < 1.5
    assert res.info["rounds"] >= 1 and res.latency_ms <= 30.0


def test_infeasible_target_names_the_smallest_latency(setup):
    space, predictor, table = setup
    low = table.min_latency()[0]
    with pytest.raises(CodesignError, match=f"{low:.3f} ms") as e:
        dz.search_differentiable(space, predictor, table, low * 0.99)
    assert isinstance(e.value, InfeasibleError) and e.value.closest["latency_ms"] == pytest.approx(low)
    with pytest.raises(InfeasibleError, match="smallest latency"):
        dz.search_evolution(space, predictor, table, low * 0.5)
    with pytest.raises(CodesignError, match="positive"):
        dz.search_differentiable(space, predictor, table, float("nan"))
    with pytest.raises(CodesignError, match="OFA MobileNetV3 spaces, not ofa-proxyless"):
        dz.search_differentiable("ofa-proxyless", predictor, table, 20.0)
    with pytest.raises(CodesignError, match="table is of space ofa-mbv3"):
        dz.search_evolution("ofa-mbv3-w1.0", predictor, table, 20.0)
    # just above the floor: only the smallest corner fits, and the search finds a member of it
    res = dz.search_differentiable(space, predictor, table, low * 1.01, steps=5, restarts=4)
    assert low <= res.latency_ms <= low * 1.01


def test_evolution_baseline_and_the_dict_api(setup):
    space, predictor, table = setup
    evo = dz.search_evolution(space, predictor, table, 20.0, cfg=EvolutionConfig(population=16, generations=3))
    assert evo.latency_ms <= 20.0 and evo.latency_ms == pytest.approx(table.latency(evo.arch))
    assert evo.accuracy == pytest.approx(float(predictor.predict([evo.arch])[0]))
    assert evo.trajectory[-1][1] == evo.accuracy and evo.evaluations >= 16
    d = dz.search(20.0, table, "differentiable", "ofa-mbv3", seed=0, steps=5, restarts=4)
    assert json.loads(json.dumps(d))["latency_ms"] <= 20.0 and d["strategy"] == "differentiable"
    assert dz.search(20.0, table, "evolution", cfg=EvolutionConfig(population=8, generations=1))["latency_ms"] <= 20
    with pytest.raises(CodesignError, match="unknown search strategy"):
        dz.search(20.0, table, "random")


def test_analytical_table_sums_to_the_cost_model(setup):
    """Per-slot costs from the analytical model (Eyeriss, one resolution, a small random mapper
    budget to keep it quick) add up to evaluate_network's total of a sub-network."""
    from mappings.evaluate import evaluate_network

    space, predictor, _ = setup
    table = dz.analytical_table("eyeriss", space, "latency", optimizer="random", budget=10, resolutions=(160,))
    assert table.unit == "ms" and table.source == "analytical:eyeriss:latency"
    for a in sample(space, 3, seed=6):
        a["r"] = 160
        total = evaluate_network(space.to_network(a), "eyeriss", optimizer="random", objective="latency",
                                 budget=10).total.latency_ms
        assert table.latency(a) == pytest.approx(total, rel=1e-12)
    target = table.min_latency()[0] * 1.5
    res = dz.search_differentiable(space, predictor, table, target, steps=10, restarts=4)
    assert res.arch["r"] == 160 and res.latency_ms <= target
    evo = dz.search_evolution(space, predictor, table, target, cfg=EvolutionConfig(population=8, generations=2))
    assert evo.arch["r"] == 160 and evo.latency_ms <= target
    with pytest.raises(CodesignError, match="no latency entries at resolution 224"):
        table.latency(dict(a, r=224))
    with pytest.raises(CodesignError, match="unknown cost metric"):
        dz.analytical_table("eyeriss", space, "edp")


# ---- codesign search --objective accuracy --max-latency MS [--strategy ...] ----------------
def _cli(capsys, *args):
    from codesign.cli import main

    rc = main(["search", *args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("strategy", ["differentiable", "evolution"])
def test_cli_latency_target(tmp_path, capsys, setup, lut, strategy):
    space, predictor, _ = setup
    d = tmp_path / strategy
    rc, out, err = _cli(capsys, "--space", "ofa-mbv3", "--objective", "accuracy", "--max-latency", "25",
                        "--strategy", strategy, "--population", "16", "--generations", "3", "--out", str(d),
                        "--json", "--quiet")
    assert rc == 0, err
    res = json.loads(out)
    b = res["best"]
    # the latency and accuracy of the chosen sub-network, from the backend and the predictor themselves
    assert b["latency_ms"] == pytest.approx(lut.measure(b["arch"], space="ofa-mbv3").ms, rel=1e-9)
    assert b["latency_ms"] <= 25
    assert b["accuracy"] == pytest.approx(float(predictor.predict([b["arch"]])[0]), abs=1e-6)
    assert res["kind"] == "subnet-latency" and res["strategy"] == strategy
    accs = [p["accuracy"] for p in res["trajectory"]]
    assert accs == sorted(accs) and accs[-1] == pytest.approx(b["accuracy"])
    # the front: within the target, each point's numbers its own, faster points less accurate
    front = res["front"]
    assert [p["latency_ms"] for p in front] == sorted(p["latency_ms"] for p in front)
    assert all(x["accuracy"] < y["accuracy"] for x, y in zip(front, front[1:]))
    for p in front[:: max(1, len(front) // 5)] + front[-1:]:
        assert p["latency_ms"] <= 25
        assert p["latency_ms"] == pytest.approx(lut.measure(p["arch"], space="ofa-mbv3").ms, rel=1e-9)
        assert p["accuracy"] == pytest.approx(float(predictor.predict([p["arch"]])[0]), abs=1e-5)
    assert front[-1]["accuracy"] == pytest.approx(b["accuracy"], abs=1e-5)
    # the report renders again from result.json alone
    (d / "report.md").unlink()
    from codesign.cli import main
    assert main(["report", str(d)]) == 0
    assert f"predicted accuracy {b['accuracy']:.4g}" in (d / "report.md").read_text()
    capsys.readouterr()
    # a resume keeps the target
    rc, out, err = _cli(capsys, "--resume", str(d), "--max-latency", "30")
    assert rc == 2 and "--max-latency 30.0 (the run has 25.0)" in err


@pytest.mark.parametrize("args, needle", [
    (["--max-latency", "5"], "below the smallest latency any ofa-mbv3 sub-network reaches on lut:note10: 9.890 ms"),
    (["--strategy", "differentiable"], "give --max-latency MS"),
    (["--max-latency", "20", "--max-sram", "300"], "cannot be combined with --max-sram"),
    (["--max-latency", "20", "--latency-source", "lut:pixel1"], "give lut:note10 or analytical:ACCELERATOR"),
])
def test_cli_latency_target_errors_are_one_line(tmp_path, capsys, args, needle):
    rc, out, err = _cli(capsys, "--space", "ofa-mbv3", "--objective", "accuracy", *args, "--out", str(tmp_path / "x"))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
