"""MeCo (Jiang et al., NeurIPS 2023) and MeCo_opt: the minimum eigenvalue of a feature map's
channel correlation matrix by hand and against numpy, which modules count, determinism, the
dead cell, and the command line."""
import math

import numpy as np
import pytest

from models.errors import CodesignError
from models.proxies import (DEFAULT_BATCH, MECO_OPT_CHANNELS, PROXIES, TORCH_PROXIES, min_corr_eig, score,
                            score_cells, score_network)

torch = pytest.importorskip("torch")
nn = torch.nn

ALL_NONE = {"ops": ["none"] * 6}
SMALL = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"       # cheap, connected


class Fixed(nn.Module):
    """Ignores its input and returns a fixed batch of feature maps."""

    def __init__(self, fmap):
        super().__init__()
        self.register_buffer("fmap", torch.as_tensor(fmap, dtype=torch.float32))

    def forward(self, x):
        return self.fmap


def test_two_channels_by_hand():
    # a = (1, -1, 1, -1), b = (1, -1, 1, 1): centred b = (.5, -1.5, .5, .5), a.b = 2,
    # |a| = 2, |b| = sqrt(3): r = 1/sqrt(3); [[1, r], [r, 1]] has eigenvalues 1 +- r
    fmap = torch.tensor([[[1.0, -1.0], [1.0, -1.0]], [[1.0, -1.0], [1.0, 1.0]]])
    assert min_corr_eig(fmap) == pytest.approx(1 - 1 / math.sqrt(3), abs=1e-12)
    # uncorrelated channels: the identity; a channel and its affine copy: rank one
    assert min_corr_eig(torch.tensor([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])) == pytest.approx(1.0)
    assert abs(min_corr_eig(torch.tensor([[1.0, 2.0, 4.0], [-3.0, -5.0, -9.0]]))) < 1e-12


def test_three_channels_against_numpy_and_a_constant_channel():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4, 4))
    x[2] += 0.8 * x[0]                                   # correlated, so the minimum is below 1
    ref = np.linalg.eigvalsh(np.corrcoef(x.reshape(3, -1)))[0]
    assert 0.05 < ref < 0.9
    assert min_corr_eig(torch.tensor(x)) == pytest.approx(ref, abs=1e-12)
    # a constant channel: its correlations are 0 / 0, set to 0 (the authors' NaN -> 0), so the
    # matrix has a zero row and column and the minimum eigenvalue is 0
    x[1] = 7.0
    assert min_corr_eig(torch.tensor(x)) == 0.0
    # one position (a pooled 1x1 map): every channel is constant
    assert min_corr_eig(torch.ones(5, 1, 1)) == 0.0


def test_meco_sums_every_module_with_a_feature_map():
    fmap = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]], [[1.0, -1.0], [1.0, 1.0]]]])   # 1 x 2 x 2 x 2
    one = 1 - 1 / math.sqrt(3)
    # the root module alone
    assert score_network(Fixed(fmap), "meco", resolution=4) == pytest.approx(one)
    # root, the Fixed child and an identity child each output the map: three terms; the
    # flattened output of the Flatten child is not a feature map and adds nothing
    model = nn.Sequential(Fixed(fmap), nn.Identity())
    assert score_network(model, "meco", resolution=4) == pytest.approx(3 * one)
    assert score_network(nn.Sequential(Fixed(fmap), nn.Flatten()), "meco", resolution=4) == pytest.approx(one)
    # a batch of two: the mean over the samples (the second sample's channels are uncorrelated)
    two = torch.cat([fmap, torch.tensor([[[[1.0, -1.0], [1.0, -1.0]], [[1.0, 1.0], [-1.0, -1.0]]]])])
    assert score_network(Fixed(two), "meco", resolution=4, batch_size=2) == pytest.approx((one + 1) / 2)


def test_meco_opt_scales_a_channel_sample():
    # with at most MECO_OPT_CHANNELS channels the sample is every channel: meco_opt = meco
    fmap = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    assert score_network(Fixed(fmap), "meco_opt", resolution=4) == pytest.approx(
        score_network(Fixed(fmap), "meco", resolution=4))
    # 16 orthogonal channels (rows of a Hadamard matrix but the constant one): every sample of
    # 8 is uncorrelated, eigenvalue 1, times 16 / 8
    from scipy.linalg import hadamard

    h = torch.tensor(hadamard(32)[1:17], dtype=torch.float32).reshape(1, 16, 4, 8)
    assert min_corr_eig(h[0]) == pytest.approx(1.0)
    assert MECO_OPT_CHANNELS == 8
    assert score_network(Fixed(h), "meco_opt", resolution=4) == pytest.approx(2.0)


def test_registered_with_batch_one():
    assert {"meco", "meco_opt"} <= set(TORCH_PROXIES) and {"meco", "meco_opt"} <= set(PROXIES)
    assert DEFAULT_BATCH["meco"] == DEFAULT_BATCH["meco_opt"] == 1


def test_same_seed_same_score():
    a = score_cells([SMALL], ["meco", "meco_opt"], seed=3)
    b = score_cells([SMALL], ["meco", "meco_opt"], seed=3)
    c = score_cells([SMALL], ["meco", "meco_opt"], seed=4)
    for name in ("meco", "meco_opt"):
        assert a[name][0] == b[name][0] and np.isfinite(a[name][0]) and a[name][0] != c[name][0], name
    # scored alone or among others: the same value (its own copy of the network, its own stream)
    assert score(SMALL, "meco", seed=3) == a["meco"][0]
    assert score_cells([SMALL], ["synflow", "meco_opt", "naswot"], seed=3)["meco_opt"][0] == a["meco_opt"][0]


def test_first_proxies_keep_their_streams():
    """Adding proxies leaves the generator seed of the first seven as it was (seed * 7 + i)."""
    from models.proxies import _stream_seed

    assert [_stream_seed(n, 5) for n in TORCH_PROXIES[:7]] == [35 + i for i in range(7)]
    assert _stream_seed("meco", 0) >= 7 * 2 ** 32 > _stream_seed("jacob_cov", 2 ** 32 - 1)
    assert _stream_seed("meco", 1) == _stream_seed("meco", 0) + 1 and _stream_seed("meco_opt", 0) == 8 * 2 ** 32


def test_dead_cell_is_finite_and_below_a_connected_cell():
    s = score_cells([ALL_NONE, SMALL], ["meco", "meco_opt"])
    for name in ("meco", "meco_opt"):
        assert np.isfinite(s[name]).all() and 0 < s[name][0] < s[name][1], name
    # the all-none network's only varying maps are the stem's conv, BN and their Sequential,
    # which share one correlation matrix (BN is a per-channel affine map)
    from models.nb201_torch import build_nb201

    net = build_nb201(ALL_NONE)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        stem = net.stem[0](x)[0]
    assert 0 < min_corr_eig(stem) < 1


def test_one_value_per_channel_is_a_typed_error():
    with pytest.raises(CodesignError, match="one value per channel"):
        score_cells([SMALL], ["meco"], resolution=4)   # the last stage is 1 x 1 with batch 1


def test_command_line_prints_the_score(capsys):
    from codesign.cli import main

    rc = main(["accuracy", "--space", "nasbench201", "--arch", SMALL, "--proxy", "meco,meco_opt"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    want = score_cells([SMALL], ["meco", "meco_opt"])
    lines = {l.split()[0]: l.split() for l in out.splitlines()[1:3]}
    assert float(lines["meco"][1]) == pytest.approx(want["meco"][0], rel=1e-5)
    assert lines["meco"][2:] == ["(batch", "1)"]
    assert float(lines["meco_opt"][1]) == pytest.approx(want["meco_opt"][0], rel=1e-5)
