"""Accuracy predictors: the authors' test vectors, an independent torch forward, speed, encodings."""
import time

import numpy as np
import pytest

from models.assets import have_asset
from models.errors import AssetMissing, CodesignError
from models.predictors import load_predictor
from models.spaces import get_space

MBV3 = "ofa/acc_predictor.pth"
RESNET = "ofa/ofa_resnet50_acc_predictor.pth"
NEEDS = "set CODESIGN_ASSETS to the shared data directory (ofa/acc_predictor.pth, ofa/ofa_resnet50_acc_predictor.pth)"
needs_mbv3 = pytest.mark.skipif(not have_asset(MBV3), reason=NEEDS)
needs_resnet = pytest.mark.skipif(not have_asset(RESNET), reason=NEEDS)

LARGEST = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}
SMALLEST = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 160}


@needs_mbv3
def test_ofa_mbv3_test_vectors():
    """Values of the original predictor: largest sub-network at 224 -> 0.8359, smallest at 160 -> 0.7531."""
    acc = load_predictor("ofa-mbv3").predict([LARGEST, SMALLEST])
    assert acc == pytest.approx([0.8359, 0.7531], abs=5e-4)


def test_ofa_mbv3_encoding_by_hand():
    """Smallest arch at 160: slots 0,1 of every stage built with k=3 (col 0) and e=3 (col 0); r bin (160-112)/16=3."""
    x = get_space("ofa-mbv3").encode(SMALLEST)
    built = [s * 4 + j for s in range(5) for j in (0, 1)]
    expected = np.zeros(128)
    expected[[3 * i for i in built]] = 1
    expected[[60 + 3 * i for i in built]] = 1
    expected[120 + 3] = 1
    assert (x == expected).all()
    y = get_space("ofa-mbv3").encode(LARGEST)
    assert (np.flatnonzero(y[:60]) == np.arange(2, 60, 3)).all()  # k=7 is the third of {3,5,7}
    assert (np.flatnonzero(y[60:120]) == np.arange(2, 60, 3)).all()
    assert np.flatnonzero(y[120:]).tolist() == [7]  # 224


def test_off_grid_resolutions_use_the_lower_bin():
    s = get_space("ofa-mbv3")
    assert np.flatnonzero(s.encode({**SMALLEST, "r": 156})[120:]).tolist() == [2]  # 144 <= 156 < 160
    assert np.flatnonzero(s.encode({**SMALLEST, "r": 236})[120:]).tolist() == [7]  # 224 <= 236 < 240


def _torch_forward(path, x):
    """The predictor as the authors define it in torch (Linear/ReLU stack), for comparison."""
    import torch
    import torch.nn as nn
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if "base_acc" in sd:
        layers = [nn.Sequential(nn.Linear(82 if i == 0 else 400, 400), nn.ReLU()) for i in range(3)]
        model = nn.Module()
        model.layers = nn.Sequential(*layers, nn.Linear(400, 1, bias=False))
        model.base_acc = nn.Parameter(torch.zeros(1))
        model.load_state_dict(sd)
        with torch.no_grad():
            return (model.layers(torch.tensor(x)).squeeze(1) + model.base_acc).numpy()
    model = nn.Sequential(nn.Linear(128, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 400),
                          nn.ReLU(), nn.Linear(400, 1))
    model.load_state_dict(sd)
    with torch.no_grad():
        return model(torch.tensor(x)).squeeze(1).numpy()


@needs_mbv3
@needs_resnet
@pytest.mark.parametrize("space,asset", [("ofa-mbv3", MBV3), ("ofa-resnet50", RESNET)])
def test_numpy_forward_equals_torch_forward(space, asset):
    from models.assets import asset_path
    s = get_space(space)
    rng = np.random.default_rng(7)
    archs = [s.sample(rng) for _ in range(256)]
    ours = load_predictor(space).predict(archs)
    ref = _torch_forward(asset_path(asset), s.encode_batch(archs))
    assert np.abs(ours - ref).max() < 1e-5
    assert ((ours > 0.5) & (ours < 0.95)).all()


@needs_mbv3
def test_predictor_throughput():
    s, rng = get_space("ofa-mbv3"), np.random.default_rng(0)
    archs = [s.sample(rng) for _ in range(20_000)]
    pred = load_predictor("ofa-mbv3")
    pred.predict(archs[:100])  # warm-up
    t0 = time.perf_counter()
    acc = pred.predict(archs)
    rate = len(archs) / (time.perf_counter() - t0)
    assert acc.shape == (20_000,) and np.isfinite(acc).all()
    assert rate >= 10_000, f"{rate:.0f} archs/s"


@needs_mbv3
def test_bigger_subnets_predict_higher():
    """Sanity of the predictor's trend: more depth/width/kernel at the same resolution never hurts here."""
    acc = load_predictor("ofa-mbv3").predict([{**LARGEST, "r": 160}, SMALLEST, LARGEST])
    assert acc[0] > acc[1] and acc[2] > acc[0]


def test_ofa_resnet50_encoding_by_hand():
    """Layout of the authors' ResNet arch encoder: 8 r | 2 stem | 6x3 widths | 18x3 expand ratios = 82."""
    s = get_space("ofa-resnet50")
    arch = {"d": [2, 0, 1, 2, 0], "e": [0.35] * 18, "w": [0, 1, 2, 0, 1, 2], "r": 224}
    x = s.encode(arch)
    assert x.shape == (82,)
    on = np.flatnonzero(x).tolist()
    assert on[:2] == [5, 9]  # 224 is the 6th resolution; stem conv built -> second stem bit
    assert on[2:8] == [10 + 0, 13 + 1, 16 + 2, 19 + 0, 22 + 1, 25 + 2]
    # stage slots 4, 4, 6, 4 start at 0, 4, 8, 14; built 2, 3, 6, 2 blocks; e=0.35 is column 2
    slots = [0, 1] + [4, 5, 6] + [8, 9, 10, 11, 12, 13] + [14, 15]
    assert on[8:] == [28 + 3 * i + 2 for i in slots]


@needs_resnet
def test_ofa_resnet50_predictions_are_fractions():
    s, rng = get_space("ofa-resnet50"), np.random.default_rng(3)
    acc = load_predictor("ofa-resnet50").predict([s.sample(rng) for _ in range(100)])
    assert ((acc > 0.6) & (acc < 0.9)).all()


def test_missing_predictor_says_where_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_ASSETS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    load_predictor.cache_clear()
    try:
        with pytest.raises(AssetMissing, match="han-cai/files") as err:
            load_predictor("ofa-mbv3")
        assert "ofa/acc_predictor.pth" in str(err.value) and "codesign assets fetch" in str(err.value)
        (tmp_path / "ofa").mkdir()
        (tmp_path / "ofa" / "acc_predictor.pth").write_bytes(b"not a checkpoint")
        with pytest.raises(AssetMissing, match="not a readable predictor"):
            load_predictor("ofa-mbv3")
    finally:
        load_predictor.cache_clear()


def test_unknown_predictor_and_bad_features():
    with pytest.raises(CodesignError, match="no accuracy predictor"):
        load_predictor("nasbench201")
    if have_asset(MBV3):
        with pytest.raises(CodesignError, match="128 features"):
            load_predictor("ofa-mbv3").predict_features(np.zeros((2, 127)))
