"""Zero-cost (training-free) accuracy proxies for NAS-Bench-201 cells.

Each proxy scores a cell from its randomly initialised network (``models.nb201_torch``) on the
CPU, without data: inputs are Gaussian (``N(0, 1)``, 3 x ``resolution`` x ``resolution``) and,
where a loss is needed, labels are uniform random classes (cross-entropy). Weights, inputs and
labels are drawn from ``seed`` alone, so the same seed gives the same score. Higher is better
for every proxy.

======== ============================================================================ =======
name     what it computes                                                              batch
======== ============================================================================ =======
params   conv + linear weights and the classifier bias of the analytical ``Network``   -
         (BN's two values per channel left out)
macs     multiply-accumulates of one 32x32 image, analytical ``Network``               -
synflow  ``log(1 + S)``, ``S = sum |theta * dR/dtheta|`` over conv / linear weights,   1
         ``R = sum(f(1))`` with every parameter replaced by ``|theta|``, an all-ones
         input, float64, BN in eval mode (Tanaka et al., NeurIPS 2020; as applied by
         Abdelfattah et al., ICLR 2021)
zen      ``log E|f(x) - f(x + 0.01 e)|_1 + sum_BN log sigma_BN`` on the pre-GAP          16
         features, ``N(0, 1)`` conv / linear weights, BN in train mode, ``sigma_BN`` the
         root of the mean batch variance of each BN (Lin et al., Zen-NAS, ICCV 2021)
naswot   ``log det K``, ``K_ij`` = number of ReLUs on which samples ``i`` and ``j``     16
         agree (``N_A - Hamming`` of the binary codes), BN in train mode (Mellor et
         al., ICML 2021)
grad_norm sum over conv / linear layers of ``||dL/dW||_2`` (Abdelfattah et al.)          16
snip     ``sum |W * dL/dW|`` over conv / linear weights (Lee et al., ICLR 2019)           16
fisher   ``sum 0.5 * mean_n (sum_hw a * dL/da)^2`` over the outputs ``a`` of conv /       16
         linear layers (Theis et al. 2018; Turner et al., ICLR 2020)
jacob_cov ``-sum_i log(v_i + k) + 1 / (v_i + k)``, ``v`` the eigenvalues of the          16
         correlation matrix of the input Jacobians ``d sum f(x_n) / dx_n``, ``k = 1e-5``
         (Mellor et al., NASWOT v1)
meco     sum over the 4-D outputs of every module (``model.modules()``, the network    1
         itself included) of the minimum eigenvalue of the C x C Pearson correlation
         matrix of the channels over the H x W positions of the sample; a constant
         channel's row and column are 0 (where the correlation is 0 / 0); one forward
         pass, BN in train mode (Jiang et al., MeCo, NeurIPS 2023); with a batch above
         1, the mean over the samples
meco_opt ``meco`` on ``MECO_OPT_CHANNELS = 8`` channels of each output drawn at random  1
         (without replacement, from the seed), times ``C / 8`` (the paper's MeCo_opt)
rank     mean rank (average ranks for ties) of ``RANK_PROXIES`` among the scored cells  -
======== ============================================================================ =======

BN runs in train mode (batch statistics) for every proxy but synflow, as in the reference
implementations; synflow runs it in eval mode, where a fresh BN is the identity up to
``1 / sqrt(1 + eps)``.

``rank`` compares cells with each other, so it needs a population: it is the only entry that
is meaningless for a single cell (every cell of a one-cell population has rank 1).

A cell whose output cannot depend on its input (no path of non-``none`` edges from node 0 to
node 3, e.g. all ``none``) is *dead*: its network output is a constant. The proxies return
finite values there, never a NaN or an infinity, and (in the 1,000-cell study) below every
connected cell's: 0 for
synflow, grad_norm and snip (sums of terms that are all 0); the score of a rank-one
correlation matrix for jacob_cov (its minimum, ``jacob_cov_floor``); ``ZEN_DEAD = -1000`` for
zen (``log 0``); for fisher the classifier's term alone (its output is its bias and the loss
still has a gradient), a small positive number. naswot reads the ReLUs inside the network, and
an operator on node 0 whose result a dead cell drops still sees the input, so a dead cell
gets an ordinary naswot score; where no ReLU sees the input (all ``none``) ``K`` is a
singular integer Gram matrix and naswot is 0 (a non-singular one has ``det K >= 1``). BN
layers whose input is identically zero (an operator fed only by dead nodes) are left out of
zen's ``sum log sigma``.

Every scoring entry point runs torch on one thread (``torch.set_num_threads(1)``, restored
afterwards). ``score_cells`` builds each cell's network once and gives every torch proxy its
own copy, so proxies never see each other's changes to the weights.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from typing import Callable

import numpy as np

from .errors import CodesignError

TORCH_PROXIES = ("synflow", "zen", "naswot", "grad_norm", "snip", "fisher", "jacob_cov", "meco", "meco_opt")
ANALYTIC_PROXIES = ("params", "macs")
RANK_PROXIES = ("synflow", "jacob_cov", "snip")  # the voting set of Abdelfattah et al. (ICLR 2021)
DEFAULT_BATCH = {"synflow": 1, "zen": 16, "naswot": 16, "grad_norm": 16, "snip": 16, "fisher": 16,
                 "jacob_cov": 16, "meco": 1, "meco_opt": 1}
DEFAULT_SEED = 0
DEFAULT_RESOLUTION = 32
MIN_RESOLUTION, MAX_RESOLUTION = 4, 128   # two stride-2 reductions need 4 pixels; 128 bounds the work
MAX_BATCH = 256
MAX_CELLS = 15_625                        # the whole space
ZEN_PERTURBATION = 1e-2                   # Zen-NAS's mixup gamma
ZEN_DEAD = -1000.0
JACOB_K = 1e-5
MECO_OPT_CHANNELS = 8                     # channels sampled per feature map by meco_opt (the authors' 8)


# ---------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def one_thread():
    """Run torch on one thread inside the block (the previous count is restored)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_options(seed, batch_size, resolution, num_classes) -> None:
    from .schema import MAX_SEED

    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        raise CodesignError(f"proxy seed must be an integer from 0 to {MAX_SEED:,}, got {seed!r}")
    if batch_size is not None and (type(batch_size) is not int or not 1 <= batch_size <= MAX_BATCH):
        raise CodesignError(f"proxy batch size must be an integer from 1 to {MAX_BATCH}, got {batch_size!r}")
    if type(resolution) is not int or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise CodesignError(f"proxy resolution must be an integer from {MIN_RESOLUTION} to {MAX_RESOLUTION}, "
                            f"got {resolution!r}")
    if type(num_classes) is not int or not 2 <= num_classes <= 100_000:
        raise CodesignError(f"proxy num_classes must be an integer from 2 to 100,000, got {num_classes!r}")


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)


def _inputs(gen, batch: int, resolution: int, dtype=None):
    import torch

    return torch.randn(batch, 3, resolution, resolution, generator=gen, dtype=dtype or torch.float32)


def _mac_modules(model):
    from .nb201_torch import mac_layers

    return list(mac_layers(model).values())


def _finite(x: float, name: str) -> float:
    if not math.isfinite(x):
        raise CodesignError(f"proxy {name} is not a finite number ({x}) for this cell")
    return float(x)


# ---------------------------------------------------------------------------- per-network scores
def _synflow(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    import torch

    model.eval()   # BN uses its running statistics (mean 0, variance 1): a fixed affine map
    model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    x = torch.ones(batch, 3, resolution, resolution, dtype=torch.float64)
    model(x).sum().backward()
    s = 0.0
    for m in _mac_modules(model):
        if m.weight.grad is not None:
            s += float((m.weight.detach() * m.weight.grad).abs().sum())
    return _finite(math.log1p(s), "synflow")


def _zen(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    import torch
    import torch.nn as nn

    model.train()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.momentum = 1.0   # running_var = the variance of the last batch
                m.reset_running_stats()
        x = _inputs(gen, batch, resolution)
        e = _inputs(gen, batch, resolution)
        f0 = model.forward_pre_gap(x)
        f1 = model.forward_pre_gap(x + ZEN_PERTURBATION * e)
        delta = float((f0 - f1).abs().flatten(1).sum(1).mean())
        if not delta > 0.0:
            return ZEN_DEAD
        log_sigma = 0.0
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                v = float(m.running_var.double().mean())
                if v > 0.0:
                    log_sigma += 0.5 * math.log(v)
    return _finite(math.log(delta) + log_sigma, "zen")


def _naswot(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    import torch
    import torch.nn as nn

    model.train()
    K = torch.zeros(batch, batch, dtype=torch.float64)

    def hook(module, inp, out):
        c = (inp[0].detach().flatten(1) > 0).float()
        K.add_((c @ c.t()).double() + ((1.0 - c) @ (1.0 - c).t()).double())

    _hooked_forward(model, [m for m in model.modules() if isinstance(m, nn.ReLU)], hook, gen, batch, resolution)
    sign, logdet = torch.linalg.slogdet(K)
    if float(sign) <= 0.0 or not math.isfinite(float(logdet)):
        return 0.0
    return max(float(logdet), 0.0)   # K is an integer matrix: non-singular means det K >= 1


def _hooked_forward(model, modules, hook, gen, batch: int, resolution: int) -> None:
    """One gradient-free forward pass on Gaussian inputs with ``hook`` on ``modules``."""
    import torch

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.no_grad():
            model(_inputs(gen, batch, resolution))
    finally:
        for h in handles:
            h.remove()


def _loss_backward(model, batch: int, resolution: int, gen, num_classes: int) -> None:
    import torch
    import torch.nn.functional as F

    model.train()
    x = _inputs(gen, batch, resolution)
    y = torch.randint(0, num_classes, (batch,), generator=gen)
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def _grad_norm(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    _loss_backward(model, batch, resolution, gen, num_classes)
    s = sum(float(m.weight.grad.norm()) for m in _mac_modules(model) if m.weight.grad is not None)
    return _finite(s, "grad_norm")


def _snip(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    _loss_backward(model, batch, resolution, gen, num_classes)
    s = sum(float((m.weight.detach() * m.weight.grad).abs().sum())
            for m in _mac_modules(model) if m.weight.grad is not None)
    return _finite(s, "snip")


def _fisher(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    acts: list = []

    def keep(module, inp, out):
        if out.requires_grad:
            out.retain_grad()
            acts.append(out)

    handles = [m.register_forward_hook(keep) for m in _mac_modules(model)]
    try:
        _loss_backward(model, batch, resolution, gen, num_classes)
    finally:
        for h in handles:
            h.remove()
    s = 0.0
    for a in acts:
        if a.grad is None:
            continue
        ag = (a.detach() * a.grad).double()
        if ag.dim() == 4:
            ag = ag.sum((2, 3))
        s += float(0.5 * ag.pow(2).mean(0).sum())
    return _finite(s, "fisher")


def jacob_cov_floor(batch: int) -> float:
    """jacob_cov of a rank-one correlation matrix of ``batch`` samples: the proxy's minimum."""
    return -(math.log(batch + JACOB_K) + 1.0 / (batch + JACOB_K)) - (batch - 1) * (math.log(JACOB_K) + 1.0 / JACOB_K)


def _jacob_cov(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    model.train()
    x = _inputs(gen, batch, resolution).requires_grad_(True)
    model.zero_grad(set_to_none=True)
    y = model(x)
    y.sum().backward()
    if x.grad is None or batch < 2:
        return jacob_cov_floor(batch)
    J = x.grad.detach().double().reshape(batch, -1).numpy()
    J = J - J.mean(1, keepdims=True)
    norms = np.linalg.norm(J, axis=1)
    if (norms == 0).any():
        return jacob_cov_floor(batch)
    C = (J / norms[:, None]) @ (J / norms[:, None]).T
    v = np.clip(np.linalg.eigvalsh(C), 0.0, None)
    return _finite(float(-np.sum(np.log(v + JACOB_K) + 1.0 / (v + JACOB_K))), "jacob_cov")


def min_corr_eig(fmap) -> float:
    """Minimum eigenvalue of the C x C Pearson correlation matrix of the channels of one feature
    map ``fmap`` (C x H x W, or C x N), correlating over its H x W positions, in float64. A
    constant channel (a 0 / 0 correlation) has a zero row and column, so any constant channel
    makes the result 0; so does ``C`` above ``H * W - 1`` (the matrix is singular, the result
    is 0 up to rounding, |x| < 1e-12)."""
    import torch

    x = fmap.detach().reshape(fmap.shape[0], -1).double()
    if x.shape[0] == 0:
        return 0.0
    const = x.amax(1) == x.amin(1)
    xc = x - x.mean(1, keepdim=True)
    xc[const] = 0.0
    norm = xc.norm(dim=1, keepdim=True)
    norm[const] = 1.0
    z = xc / norm
    return float(torch.linalg.eigvalsh(z @ z.t())[0])


def _meco_terms(model, batch: int, resolution: int, gen, sample_channels: int | None) -> list[float]:
    import torch

    model.train()
    terms: list[float] = []

    def hook(module, inp, out):
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            return   # logits and pooled vectors: the authors' 0 / 0 correlation, a term of 0
        c = out.shape[1]
        if sample_channels is None:
            terms.append(sum(min_corr_eig(out[n]) for n in range(out.shape[0])) / out.shape[0])
            return
        k = min(sample_channels, c)
        idx = torch.randperm(c, generator=gen)[:k]
        terms.append(c / k * sum(min_corr_eig(out[n, idx]) for n in range(out.shape[0])) / out.shape[0])

    _hooked_forward(model, list(model.modules()), hook, gen, batch, resolution)
    return terms


def _meco(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    return _finite(sum(_meco_terms(model, batch, resolution, gen, None)), "meco")


def _meco_opt(model, batch: int, resolution: int, gen, num_classes: int) -> float:
    return _finite(sum(_meco_terms(model, batch, resolution, gen, MECO_OPT_CHANNELS)), "meco_opt")


_NETWORK_SCORES = {"synflow": _synflow, "zen": _zen, "naswot": _naswot, "grad_norm": _grad_norm,
                   "snip": _snip, "fisher": _fisher, "jacob_cov": _jacob_cov, "meco": _meco,
                   "meco_opt": _meco_opt}
# Each proxy draws from its own stream, so adding a proxy changes no other score. The first
# seven keep the generator seed ``seed * 7 + stream`` of the published study; a proxy added
# later (stream >= 7) uses ``stream * 2**32 + seed``, beyond every seed of the first seven.
_STREAM = {name: i for i, name in enumerate(TORCH_PROXIES)}
_FIRST_STREAMS = 7


def _stream_seed(name: str, seed: int) -> int:
    i = _STREAM[name]
    return seed * _FIRST_STREAMS + i if i < _FIRST_STREAMS else i * 2 ** 32 + seed


def score_network(model, name: str, *, seed: int = DEFAULT_SEED, batch_size: int | None = None,
                  resolution: int = DEFAULT_RESOLUTION, num_classes: int = 100) -> float:
    """Score of a torch proxy ``name`` for a built network ``model`` (changed in place: copy it
    first to keep it). The network must have ``forward_pre_gap`` for ``zen``."""
    if name not in _NETWORK_SCORES:
        raise CodesignError(f"unknown network proxy {name!r} (known: {', '.join(TORCH_PROXIES)})")
    _check_options(seed, batch_size, resolution, num_classes)
    batch = DEFAULT_BATCH[name] if batch_size is None else batch_size
    with one_thread():
        gen = _generator(_stream_seed(name, seed))
        try:
            return _NETWORK_SCORES[name](model, batch, resolution, gen, num_classes)
        except ValueError as e:
            if "more than 1 value per channel" not in str(e):
                raise
            raise CodesignError(f"proxy {name}: batch {batch} at resolution {resolution} leaves one value per "
                                f"channel for a BN layer in train mode; use a larger batch or resolution") from None


# ---------------------------------------------------------------------------- cells
def _cells(archs) -> list[dict]:
    from .spaces.nasbench201 import NasBench201Space

    if isinstance(archs, (str, dict)):
        raise CodesignError("proxies score a list of cells; wrap a single cell in a list (or use score())")
    space = NasBench201Space()
    cells = [space.validate(a) for a in archs]
    if len(cells) > MAX_CELLS:
        raise CodesignError(f"{len(cells):,} cells to score; at most {MAX_CELLS:,} are accepted")
    return cells


def _analytic(name: str):
    def fn(archs, *, seed: int = DEFAULT_SEED, batch_size: int | None = None,
           resolution: int = DEFAULT_RESOLUTION, num_classes: int = 100) -> np.ndarray:
        from .spaces.nasbench201 import NasBench201Space

        _check_options(seed, batch_size, resolution, num_classes)
        space = NasBench201Space(num_classes=num_classes, resolution=resolution)
        return np.array([float(getattr(space.to_network(a), name)) for a in _cells(archs)])
    fn.__name__ = name
    fn.__doc__ = (f"Analytical {'parameter count' if name == 'params' else 'MACs per image'} of each cell's "
                  f"network (``NasBench201Space.to_network``); seed and batch size are ignored.")
    return fn


def _torch_proxy(name: str):
    def fn(archs, *, seed: int = DEFAULT_SEED, batch_size: int | None = None,
           resolution: int = DEFAULT_RESOLUTION, num_classes: int = 100) -> np.ndarray:
        return score_cells(archs, [name], seed=seed, batch_size=batch_size, resolution=resolution,
                           num_classes=num_classes)[name]
    fn.__name__ = name
    fn.__doc__ = (f"The {name} score of each cell (see the module docstring); batch default "
                  f"{DEFAULT_BATCH[name]}, seed default {DEFAULT_SEED}.")
    return fn


def mean_rank(scores: dict, names=RANK_PROXIES) -> np.ndarray:
    """Mean over ``names`` of each cell's rank (1 = lowest score, average ranks for ties) in
    ``scores`` (``{proxy: array over the same cells}``)."""
    from scipy.stats import rankdata

    names = list(names)
    if not names:
        raise CodesignError("rank needs at least one proxy to aggregate")
    missing = [n for n in names if n not in scores]
    if missing:
        raise CodesignError(f"rank: no scores for {', '.join(missing)}")
    return np.mean([rankdata(np.asarray(scores[n], dtype=float)) for n in names], axis=0)


def rank(archs, *, seed: int = DEFAULT_SEED, batch_size: int | None = None,
         resolution: int = DEFAULT_RESOLUTION, num_classes: int = 100, proxies=RANK_PROXIES) -> np.ndarray:
    """Mean rank of each cell among ``archs`` over ``proxies`` (default ``RANK_PROXIES``)."""
    unknown = [p for p in proxies if p not in PROXIES or p == "rank"]
    if unknown:
        raise CodesignError(f"rank: cannot aggregate {', '.join(map(repr, unknown))} "
                            f"(known: {', '.join(n for n in PROXIES if n != 'rank')})")
    s = score_cells(archs, list(proxies), seed=seed, batch_size=batch_size, resolution=resolution,
                    num_classes=num_classes)
    return mean_rank(s, proxies)


PROXIES: dict[str, Callable] = {
    "params": _analytic("params"),
    "macs": _analytic("macs"),
    **{name: _torch_proxy(name) for name in TORCH_PROXIES},
    "rank": rank,
}


def get_proxy(name: str) -> Callable:
    """The registry function of proxy ``name``; ``CodesignError`` listing the known ones."""
    if not isinstance(name, str) or name not in PROXIES:
        raise CodesignError(f"unknown proxy {name!r} (known: {', '.join(PROXIES)})")
    return PROXIES[name]


def parse_proxies(text: str) -> list[str]:
    """``"synflow,naswot"`` -> ``["synflow", "naswot"]``; unknown, empty or repeated names are errors."""
    names = [t.strip().lower() for t in str(text).split(",")]
    if not any(names) or not all(names):
        raise CodesignError(f"--proxy: expected NAME[,NAME...] from {', '.join(PROXIES)}, got {text!r}")
    for n in names:
        if n not in PROXIES:
            raise CodesignError(f"--proxy: unknown proxy {n!r} (known: {', '.join(PROXIES)})")
    seen = set()
    for n in names:
        if n in seen:
            raise CodesignError(f"--proxy: {n} given twice")
        seen.add(n)
    return names


def score_cells(archs, names, *, seed: int = DEFAULT_SEED, batch_size: int | None = None,
                resolution: int = DEFAULT_RESOLUTION, num_classes: int = 100, timings: dict | None = None,
                progress: bool = False) -> dict[str, np.ndarray]:
    """Scores ``{proxy: array}`` of every cell in ``archs`` (arch strings or ``{"ops": [...]}``)
    for every proxy in ``names`` (``rank`` aggregates ``RANK_PROXIES``, scored as well).

    Each cell's network is built once from ``seed``; every torch proxy works on its own copy.
    ``batch_size`` (default: ``DEFAULT_BATCH`` per proxy) applies to every data-driven proxy.
    Pass a dict as ``timings`` to receive, per proxy and for ``"build"`` (building the network
    once), an array of the seconds spent on each cell.
    """
    for n in names:
        get_proxy(n)
    _check_options(seed, batch_size, resolution, num_classes)
    cells = _cells(archs)
    want = list(dict.fromkeys(names))
    needed = list(dict.fromkeys([n for n in want if n != "rank"]
                                + (list(RANK_PROXIES) if "rank" in want else [])))
    torch_names = [n for n in needed if n in TORCH_PROXIES]
    out = {n: np.zeros(len(cells)) for n in needed}
    secs = {n: np.zeros(len(cells)) for n in needed + (["build"] if torch_names else [])}
    from .nb201_torch import build_nb201
    from .spaces.nasbench201 import NasBench201Space

    space = NasBench201Space(num_classes=num_classes, resolution=resolution)
    it = range(len(cells))
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="proxies", unit="cell")
    with one_thread():
        for i in it:
            a = cells[i]
            for n in needed:
                if n in ANALYTIC_PROXIES:
                    t0 = time.perf_counter()
                    out[n][i] = float(getattr(space.to_network(a), n))
                    secs[n][i] = time.perf_counter() - t0
            if not torch_names:
                continue
            t0 = time.perf_counter()
            net = build_nb201(a, num_classes=num_classes, seed=seed)
            secs["build"][i] = time.perf_counter() - t0
            for n in torch_names:
                t0 = time.perf_counter()
                out[n][i] = score_network(copy.deepcopy(net), n, seed=seed, batch_size=batch_size,
                                          resolution=resolution, num_classes=num_classes)
                secs[n][i] = time.perf_counter() - t0
    if "rank" in want:
        out["rank"] = mean_rank(out, RANK_PROXIES)
        secs["rank"] = sum(secs[n] for n in RANK_PROXIES)
    if timings is not None:
        timings.update({k: v for k, v in secs.items() if k in want or k == "build"})
    return {n: out[n] for n in want}


def score(arch, name: str, **options) -> float:
    """Score of one cell under proxy ``name`` (options as in ``score_cells``; not ``rank``,
    which compares cells with each other)."""
    get_proxy(name)
    if name == "rank":
        raise CodesignError("rank compares cells with each other: score a list of cells with score_cells()")
    return float(score_cells([arch], [name], **options)[name][0])
