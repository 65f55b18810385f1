"""AdaProxy: the Lasso kernel against its optimality conditions, recovery of a planted model,
the lambda choice, incremental adaptation, Pareto helpers and Algorithm 1 (by hand on small
cases; on the NAS-Bench-201 / Raspberry Pi 5 data against the exact front)."""
import numpy as np
import pytest

from codesign.validation.adaproxy import (AdaProxy, AdaptationError, Bagged, _cd_lasso, adapt_incremental, algorithm1, bag,
                               fit_best,
                               fit_linear_proxy, hypervolume, pareto_front, proxy_features)
from codesign.validation.monotonicity import srcc
from models.assets import have_asset

HW360 = "nasbench201/hw360_cifar100_pi5.csv.gz"


def planted(n=600, p=20, alpha=1.7, c=3.0, b_nz=((2, 3.0), (7, -1.2), (11, 4.0)), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 2.0, p)
    X = (rng.random((n, p)) < 0.5).astype(float)
    b = np.zeros(p)
    for j, v in b_nz:
        b[j] = v
    y = X @ ((alpha + b) * w) + c + noise * rng.standard_normal(n)
    return X * w, y, b


# ---------------------------------------------------------------- the kernel

def test_cd_lasso_diagonal_is_soft_thresholding():
    # G diagonal: b_j = S(q_j, t) / G_jj = (3 - 1) / 2, 0 (|-1| <= 1), (-5 + 1) / 4
    G = np.diag([2.0, 4.0, 4.0])
    b = _cd_lasso(G, np.array([3.0, -1.0, -5.0]), 1.0, np.zeros(3), 1e-12, 1000)
    assert b == pytest.approx([1.0, 0.0, -1.0])


def test_cd_lasso_coupled_case_by_hand():
    # signs (+, -): G b = q - t (1, -1) = (2.5, -0.5) -> b = (11/6, -7/6)
    G = np.array([[2.0, 1.0], [1.0, 2.0]])
    b = _cd_lasso(G, np.array([3.0, -1.0]), 0.5, np.zeros(2), 1e-13, 10000)
    assert b == pytest.approx([11 / 6, -7 / 6], abs=1e-9)
    # large t: zero is optimal (|q| <= t), from a warm start away from it
    assert _cd_lasso(G, np.array([3.0, -1.0]), 3.0, np.array([5.0, 5.0]), 1e-13, 10000) == pytest.approx([0, 0])


# ---------------------------------------------------------------- linear proxy

def test_fit_linear_proxy_hand_cases():
    X = np.array([[1, 0], [0, 1], [1, 1.0]])
    w, c = fit_linear_proxy(X, [1, 2, 3], intercept=False)
    assert w == pytest.approx([1, 2]) and c == 0
    # one-hot groups + constant bit: the shift of each group goes to the (negative) intercept,
    # the cheapest operator of each group to 0, and the fit is exact
    X = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 0, 1], [1, 0, 0, 1, 1], [0, 1, 0, 1, 1]], float)
    y = np.array([1.0, 3.0, 4.0, 6.0])         # slot A: 0 / 2, slot B: 0 / 3, base 1
    w, c = fit_linear_proxy(X, y - 5.0)          # base -4: the intercept must go negative
    assert w == pytest.approx([0, 2, 0, 3, 0], abs=1e-9) and c == pytest.approx(-4.0)
    phi, w2, c2 = proxy_features(X, y + np.array([0.5, 0, 0, -0.5]))
    assert phi.sum(axis=1) + c2 == pytest.approx(y + np.array([0.5, 0, 0, -0.5]))  # residual column
    assert phi.shape == (4, 3)                   # two non-zero operator columns + the residual


# ---------------------------------------------------------------- AdaProxy

def test_recovers_a_planted_model():
    W, y, b = planted()
    m = AdaProxy(seed=0).fit(W[:80], y[:80])
    assert m.alpha_ == pytest.approx(1.7, abs=0.05)
    assert m.c_ == pytest.approx(3.0, abs=0.3)
    assert set(np.argsort(-np.abs(m.b_))[:3]) == {2, 7, 11}
    # the L1 penalty shrinks b towards 0 (by about 10 % here), never flips or inflates it
    assert m.b_[[2, 7, 11]] == pytest.approx([3.0, -1.2, 4.0], rel=0.15)
    assert np.all(np.abs(m.b_[[2, 7, 11]]) <= [3.0, 1.2, 4.0])
    assert srcc(m.predict(W[80:]), y[80:]) > 0.999
    assert srcc(W[80:].sum(axis=1), y[80:]) < 0.995       # the proxy alone ranks worse
    assert m.weights(np.ones(20)) == pytest.approx(m.alpha_ + m.b_)


def test_lambda_grid_picks_the_largest_when_b_is_zero():
    W, y, _ = planted(b_nz=(), noise=0.3, seed=1)
    for seed in range(4):
        m = AdaProxy(seed=seed).fit(W[:100], y[:100])
        assert m.lambda_ratio_ == 1.0 and np.all(m.b_ == 0)
        assert m.alpha_ == pytest.approx(1.7, abs=0.05)
    # with a planted b the chosen lambda is smaller and b is used
    W, y, _ = planted(noise=0.3, seed=1)
    m = AdaProxy(seed=0).fit(W[:100], y[:100])
    assert m.lambda_ratio_ < 0.1 and np.count_nonzero(m.b_) >= 3


def test_without_validation_b_stays_zero_and_errors_are_clear():
    W, y, _ = planted()
    m = AdaProxy(folds=1, val_fraction=0.3).fit(W[:10], y[:10])   # 3 held-out < min_validation (15)
    assert np.isnan(m.val_srcc_) and np.all(m.b_ == 0) and m.lambda_ratio_ == 1.0
    # b = 0: the prediction is the proxy's ranking, rescaled
    assert srcc(m.predict(W), W.sum(axis=1)) == pytest.approx(1.0)
    with pytest.raises(AdaptationError, match="at least 2"):
        AdaProxy().fit(W[:1], y[:1])
    with pytest.raises(AdaptationError, match="expected 5"):
        AdaProxy().fit(W[:5], y[:4])
    with pytest.raises(AdaptationError, match="non-finite"):
        AdaProxy().fit(W[:5], [1, 2, np.nan, 4, 5])
    with pytest.raises(AdaptationError, match="fit"):
        AdaProxy().predict(W)


def test_studies_api_with_few_samples():
    W, y, _ = planted()
    pred = AdaProxy(seed=0).fit(W[:5], y[:5]).predict(W[5:])
    assert pred.shape == (len(W) - 5,) and np.isfinite(pred).all()


# ---------------------------------------------------------------- incremental adaptation

def test_incremental_stops_at_the_threshold():
    W, y, _ = planted()
    r = adapt_incremental(W, y, start=20, step=10, max_samples=50, seed=0)
    assert r.reached and r.samples_used == 20 and len(r.history) == 1
    assert r.rows_evaluated == len(W) - 20
    assert r.srcc_after > 0.99 > r.srcc_before
    # a target unrelated to the proxy: every step is taken and the threshold is not reached
    noise = np.random.default_rng(1).standard_normal(len(W))
    r = adapt_incremental(W, noise, start=10, step=5, max_samples=30, seed=0)
    assert not r.reached and r.samples_used == 30
    assert [k for k, _ in r.history] == [10, 15, 20, 25, 30]
    assert len(set(r.indices.tolist())) == 30
    with pytest.raises(AdaptationError, match="leave rows"):
        adapt_incremental(W[:40], y[:40], max_samples=40)


def test_confidence_bound_delays_the_stop():
    # a noisy target: the raw validation SRCC of 20 samples passes 0.9 by chance and the
    # adaptation stops with a poor model; its lower confidence bound does not (one fit, so
    # that the stop rule alone is tested)
    W, y, _ = planted(noise=2.0, seed=5)
    raw = adapt_incremental(W, y, start=20, step=10, max_samples=100, seed=0, confidence_z=0.0, bags=0)
    safe = adapt_incremental(W, y, start=20, step=10, max_samples=100, seed=0, bags=0)
    assert raw.samples_used == 20 and raw.history[-1][1] >= 0.9 and raw.srcc_after < 0.8
    assert safe.samples_used > 20 and safe.srcc_after > 0.9


def test_bag_of_one_on_all_samples_is_the_single_fit_and_members_average():
    W, y, _ = planted(noise=1.0, seed=2)
    idx = np.arange(40)
    one = bag(W, idx, y[idx], bags=1, fraction=1.0, seed=3)
    _, single = fit_best({None: W}, idx, y[idx], seed=3)
    assert one.predict(W[40:]) == pytest.approx(single.predict(W[40:]), rel=0, abs=1e-12)
    many = bag({"x": W}, idx, y[idx], bags=5, fraction=0.8, seed=3)
    assert len(many.members) == 5 and many.feature_counts() == {"x": 5}
    assert {m.n_samples_ for _, m in many.members} == {32}
    mean = np.mean([m.predict(W[40:]) for _, m in many.members], axis=0)
    assert many.predict({"x": W[40:]}) == pytest.approx(mean, rel=0, abs=1e-12)
    with pytest.raises(AdaptationError, match="no feature set named y"):
        Bagged([("y", single)]).predict({"x": W})
    for kw, msg in (({"bags": 0}, "bags must be"), ({"fraction": 0.0}, "fraction must"),
                    ({"fraction": 1.5}, "fraction must")):
        with pytest.raises(AdaptationError, match=msg):
            bag(W, idx, y[idx], **kw)


def test_bagging_steadies_a_fit_on_samples_with_outliers():
    # one cell in ten measured at half its latency (as on the Pixel 3 of the one-proxy data):
    # with 30 samples a single fit's lambda hangs on the few outliers it drew; the average of
    # 20 fits on 24-sample subsamples ranks the other 570 rows better, most on the worst draws
    W, y, _ = planted(noise=1.0, seed=5)
    y = np.where(np.random.default_rng(9).random(len(y)) < 0.1, 0.5 * y, y)
    one = [adapt_incremental(W, y, start=30, max_samples=30, seed=s, bags=0) for s in range(20)]
    avg = [adapt_incremental(W, y, start=30, max_samples=30, seed=s) for s in range(20)]
    assert all(a.bags == 20 and o.bags == 0 and len(a.predictor.members) == 20 for a, o in zip(avg, one))
    s1, s20 = np.array([o.srcc_after for o in one]), np.array([a.srcc_after for a in avg])
    assert s20.mean() > s1.mean() + 0.005 and s20.min() > s1.min() + 0.02 and (s20 > s1).sum() >= 12


def test_several_feature_sets_the_one_that_explains_the_target_wins():
    # set "b" carries the target's structure; set "a" is the same proxy total split into
    # unrelated random shares: only "b" can correct the per-feature costs
    Wb, y, _ = planted(noise=0.05, seed=3)
    rng = np.random.default_rng(4)
    share = rng.dirichlet(np.ones(8), len(Wb))
    Wa = share * Wb.sum(axis=1, keepdims=True)
    assert np.allclose(Wa.sum(1), Wb.sum(1))                     # same proxy ranking before adapting
    idx = np.arange(50)
    name, model = fit_best({"a": Wa, "b": Wb}, idx, y[idx], seed=0)
    assert name == "b" and model.val_srcc_ > 0.95
    other = AdaProxy(seed=0).fit(Wa[idx], y[idx])
    assert other.val_srcc_ < model.val_srcc_
    r = adapt_incremental({"a": Wa, "b": Wb}, y, start=30, max_samples=50, seed=0)
    assert r.features == "b" and r.to_dict()["features"] == "b" and r.srcc_after > 0.99 > r.srcc_before
    assert adapt_incremental(Wb, y, start=30, max_samples=50, seed=0).features is None
    # with too few samples to validate, the first set is kept
    assert fit_best({"a": Wa, "b": Wb}, idx[:8], y[:8])[0] == "a"
    with pytest.raises(AdaptationError, match="different row counts"):
        adapt_incremental({"a": Wa[:-1], "b": Wb}, y)
    with pytest.raises(AdaptationError, match="no feature sets"):
        adapt_incremental({}, y)


# ---------------------------------------------------------------- Pareto helpers

def test_pareto_front_and_hypervolume_by_hand():
    acc = [1, 2, 3, 3, 2, 0.5]
    lat = [1, 2, 3, 4, 3, 1]
    # (2,3) is dominated by (2,2); (3,4) by (3,3); (0.5,1) by (1,1)
    assert pareto_front(acc, lat).tolist() == [0, 1, 2]
    assert pareto_front([1, 1], [2, 2]).tolist() == [0, 1]            # exact duplicates both stay
    # slack 0.5: dropped only if another is as accurate and 1.5x faster: nothing here
    assert pareto_front(acc, lat, slack=0.5).tolist() == [0, 1, 2, 3, 4, 5]
    # (2,4): 2 * 1.5 = 3 < 4 dropped; (1,2.5): 3 < 2.5 false, stays (dominated without slack)
    assert pareto_front([2, 2, 1], [2, 4, 2.5], slack=0.5).tolist() == [0, 2]
    assert pareto_front([2, 2, 1], [2, 4, 2.5]).tolist() == [0]
    # predicted latencies can be negative: the band still only adds points
    assert pareto_front([2, 1], [-1.0, -0.98], slack=0.05).tolist() == [0, 1]
    rng = np.random.default_rng(0)
    a, t = rng.random(300).round(2), rng.standard_normal(300)
    assert set(pareto_front(a, t)) <= set(pareto_front(a, t, slack=0.1))
    # reference (0, 5): strips [0,1]x[1,5] + [1,2]x[2,5] + [2,3]x[3,5] = 4 + 3 + 2
    assert hypervolume(acc, lat, 0.0, 5.0) == pytest.approx(9.0)
    assert hypervolume([1], [6], 0.0, 5.0) == 0.0


def test_algorithm1_by_hand():
    acc = np.array([10, 20, 30, 40, 50, 15, 25, 35.0])
    proxy = np.array([1, 2, 3, 4, 5, 3, 4, 6.0])
    calls = []

    def measure(i):
        calls.append(i)
        return 2 * proxy[i]             # same ranking: SRCC 1, no adaptation

    r = algorithm1(acc, proxy[:, None], measure, check_samples=4, confidence_z=0.0)
    assert r.srcc_check == pytest.approx(1.0) and not r.adapted
    assert r.pareto.tolist() == [0, 1, 2, 3, 4]
    assert r.target_measurements == len(calls) == len(set(calls))       # nothing measured twice
    assert set(calls) == set(r.measured) and set(r.pareto) <= set(calls)
    assert r.candidates_measured == 5
    # reversed target ranking: the check fails, the proxy is adapted (alpha < 0)
    r = algorithm1(acc, np.c_[proxy, acc], lambda i: 100 - proxy[i], check_samples=6, max_samples=7,
                   confidence_z=0.0)
    assert r.adapted and r.srcc_check < 0


@pytest.mark.skipif(not have_asset(HW360), reason="needs the HW-NAS-Bench-360 Raspberry Pi 5 data: "
                    "set CODESIGN_ASSETS to the shared data folder")
def test_algorithm1_on_nasbench201_pi5():
    from codesign.validation.monotonicity import load_latency_csv
    from models.assets import asset_path

    t = load_latency_csv(asset_path(HW360))
    acc = t.column("accuracy")
    proxy, y = t.column("lat_ms_median_pi5_torchmobile"), t.column("lat_ms_median_pi5_onnx")
    W, _, _ = proxy_features(t.X, proxy)
    truth = pareto_front(acc, y)
    # the exact front by brute force on the candidates with a chance of being on it
    top = np.flatnonzero(acc >= np.sort(acc)[-3000])
    brute = [i for i in top if not np.any((acc >= acc[i]) & (y <= y[i]) & ((acc > acc[i]) | (y < y[i])))]
    assert set(brute) == set(truth[acc[truth] >= np.sort(acc)[-3000]])
    r = algorithm1(acc, W, lambda i: y[i], proxy=proxy, seed=0)
    assert r.adapted and r.srcc_check < 0.9 and r.samples_used == 50
    assert r.target_measurements == len(r.measured) <= 50 + r.candidates_measured
    m = np.array(sorted(r.measured))
    assert set(r.pareto) == set(m[pareto_front(acc[m], y[m])])
    for i in r.pareto:   # nothing measured dominates a member of the final set
        assert not np.any((acc[m] >= acc[i]) & (y[m] <= y[i]) & ((acc[m] > acc[i]) | (y[m] < y[i])))
    found = np.isin(r.pareto, truth).sum()
    assert len(truth) == 28 and found >= 9
    ref = (acc.min(), y.max())
    assert hypervolume(acc[r.pareto], y[r.pareto], *ref) / hypervolume(acc[truth], y[truth], *ref) > 0.98
    # the proxy's own Pareto set, measured (threshold -1: the check always passes) finds more
    # of this front with fewer measurements; with both sets measured nothing is lost
    reuse = algorithm1(acc, W, lambda i: y[i], proxy=proxy, seed=0, threshold=-1)
    both = algorithm1(acc, W, lambda i: y[i], proxy=proxy, seed=0, with_proxy_front=True)
    assert not reuse.adapted and np.isin(reuse.pareto, truth).sum() == 19 and reuse.target_measurements == 54
    assert np.isin(both.pareto, truth).sum() >= 19 and both.target_measurements <= 30 + 20 + 25 + 24


def test_noise_never_reverses_the_proxy_ranking():
    # three samples whose target happens to fall as the proxy rises: least squares with b = 0
    # (no validation possible on 3 samples) would give alpha < 0 and rank every other
    # architecture backwards; the proportional fallback keeps the proxy's order
    W = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # proxy latencies 2, 4, 6
    y = np.array([9.0, 8.0, 7.0])
    m = AdaProxy().fit(W, y)
    assert m.proportional_ and not np.any(m.b_)
    assert m.alpha_ == pytest.approx(24.0 / 12.0) and m.c_ == 0.0
    new = np.array([[0.5, 0.5], [4.0, 4.0], [1.5, 1.5]])
    assert np.argsort(m.predict(new)).tolist() == [0, 2, 1]
    assert m.predict(new) == pytest.approx([2.0, 16.0, 6.0])
