"""The OFA MobileNetV3 search space (Cai et al., ICLR 2020) as a layer generator.

Structure (width multiplier ``w``, channels rounded with ``make_divisible(c * w, 8)``):
first conv 3x3/2 (16w, h-swish); a fixed first block (depthwise 3x3, no expansion, ReLU);
five elastic stages of up to four MBConv blocks with widths 24, 40, 80, 112, 160 (times w),
first-block strides 2, 2, 2, 1, 2, activations ReLU, ReLU, h-swish, h-swish, h-swish and
squeeze-and-excitation in stages 2, 4 and 5; then final expand 1x1 (960w), global pool,
feature mix 1x1 (1280w) and the classifier.

An architecture is ``{"ks": [20], "e": [20], "d": [5], "r": int}``: kernel size
{3, 5, 7} and expand ratio {3, 4, 6} of each of the 20 block slots (four per stage),
depth {2, 3, 4} of each stage, input resolution. Only the first ``d[s]`` slots of stage
``s`` are built; the canonical form stores the smallest choice in the other slots, so two
dicts describe the same network exactly when their canonical forms are equal. ``r`` is
sampled from {160, 176, 192, 208, 224}; any integer with 112 <= r < 240 is accepted (the
range of the accuracy predictor's eight 16-pixel resolution bins, which the OFA authors'
specialized networks at 156 and 236 fall into).

``encode`` is exactly the input of the OFA authors' accuracy predictor (128 values): 60
one-hot kernel sizes (20 slots x {3, 5, 7}), 60 one-hot expand ratios (20 x {3, 4, 6}),
all-zero for slots beyond a stage's depth, and 8 one-hot resolution bins
``(r - 112) // 16`` for {112, 128, ..., 224}.
"""
from __future__ import annotations

import numpy as np

from ..errors import WorkloadError
from ..netconfig import network_from_net_config
from ..network import Network
from ..zoo._builder import make_divisible
from .base import SearchSpace, check_keys, check_prob, choose, int_list, short

KS = (3, 5, 7)
EXPAND = (3, 4, 6)
DEPTHS = (2, 3, 4)
MAX_DEPTH = max(DEPTHS)
SAMPLE_RESOLUTIONS = (160, 176, 192, 208, 224)
RES_BIN_START, RES_BIN_WIDTH, RES_BINS = 112, 16, 8
R_MIN, R_MAX = RES_BIN_START, RES_BIN_START + RES_BIN_WIDTH * RES_BINS - 1  # 112 .. 239


def conv_layer_config(c_in, c_out, k, stride=1, act=None, use_bn=True, bias=False) -> dict:
    """An OFA ``ConvLayer`` entry of a net.config."""
    return {"name": "ConvLayer", "kernel_size": k, "stride": stride, "dilation": 1, "groups": 1,
            "bias": bias, "has_shuffle": False, "in_channels": c_in, "out_channels": c_out,
            "use_bn": use_bn, "act_func": act, "dropout_rate": 0, "ops_order": "weight_bn_act"}


def mb_block_config(c_in, c_out, k, stride, e, act, se, mid=None) -> dict:
    """An OFA ``MobileInvertedResidualBlock`` entry (identity shortcut when the shape is kept)."""
    conv = {"name": "MBInvertedConvLayer", "in_channels": c_in, "out_channels": c_out, "kernel_size": k,
            "stride": stride, "expand_ratio": e, "mid_channels": mid, "act_func": act, "use_se": se}
    shortcut = None
    if stride == 1 and c_in == c_out:
        shortcut = {"name": "IdentityLayer", "in_channels": [c_in], "out_channels": [c_out], "use_bn": False,
                    "act_func": None, "dropout_rate": 0, "ops_order": "weight_bn_act"}
    return {"name": "MobileInvertedResidualBlock", "mobile_inverted_conv": conv, "shortcut": shortcut}


def _genes(block) -> tuple:
    """(kernel size, expand ratio) of a validated net.config block (``None`` where absent)."""
    body = block.body
    if body is None:
        return None, None
    e = body.expand_ratio
    return body.kernel_size, int(e) if e is not None and float(e).is_integer() else e


class ElasticMBConvSpace(SearchSpace):
    """Stages of up to four elastic MBConv blocks (kernel, expand ratio, depth) and a resolution.

    Subclasses give the fixed parts: stem, stage table, optional fixed-depth tail blocks, head.
    """

    n_stages = 5
    n_tail = 0  # fixed-depth elastic blocks after the stages (ProxylessNAS has one)
    family = "elastic-mbconv"

    def __init__(self, name: str, width_mult: float):
        self.name = name
        self.width_mult = width_mult
        self.n_blocks = self.n_stages * MAX_DEPTH + self.n_tail

    # ---- structure supplied by subclasses ---------------------------------------------------
    def stem(self) -> tuple[list[dict], dict, int]:
        """(first conv, first block, channels after them)."""
        raise NotImplementedError

    def stages(self) -> list[tuple[int, int, str, bool]]:
        """(width, first stride, activation, SE) per elastic stage (then per tail block)."""
        raise NotImplementedError

    def head(self, c_in: int) -> dict:
        """The net.config keys after the blocks."""
        raise NotImplementedError

    def width(self, base: int) -> int:
        return make_divisible(base * self.width_mult, 8)

    # ---- validation -------------------------------------------------------------------------
    def active(self, d) -> list[bool]:
        """Which of the block slots are built for stage depths ``d``."""
        out = [i % MAX_DEPTH < d[i // MAX_DEPTH] for i in range(self.n_stages * MAX_DEPTH)]
        return out + [True] * self.n_tail

    def canonical(self, ks, e, d, r) -> dict:
        act = self.active(d)
        ks = [k if a else KS[0] for k, a in zip(ks, act)]
        e = [x if a else EXPAND[0] for x, a in zip(e, act)]
        return {"ks": ks, "e": e, "d": list(d), "r": r}

    def validate(self, arch) -> dict:
        check_keys(arch, ("ks", "e", "d", "r"), self.name)
        ks = int_list(arch, "ks", self.n_blocks, KS, self.name)
        e = int_list(arch, "e", self.n_blocks, EXPAND, self.name)
        d = int_list(arch, "d", self.n_stages, DEPTHS, self.name)
        r = raw = arch["r"]
        if isinstance(r, (float, np.floating)) and float(r).is_integer() and R_MIN <= r <= R_MAX:
            r = int(r)
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not R_MIN <= r <= R_MAX:
            raise WorkloadError(f"{self.name}: arch['r']={short(raw)} must be an integer in [{R_MIN}, {R_MAX}]")
        return self.canonical(ks, e, d, int(r))

    # ---- stochastic operators ---------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict:
        ks = [choose(rng, KS) for _ in range(self.n_blocks)]
        e = [choose(rng, EXPAND) for _ in range(self.n_blocks)]
        d = [choose(rng, DEPTHS) for _ in range(self.n_stages)]
        return self.canonical(ks, e, d, choose(rng, SAMPLE_RESOLUTIONS))

    def mutate(self, arch: dict, rng: np.random.Generator, prob: float) -> dict:
        a = self.validate(arch)
        prob = check_prob(prob)
        was = self.active(a["d"])
        d = [choose(rng, DEPTHS) if rng.random() < prob else x for x in a["d"]]
        now = self.active(d)
        ks, e = list(a["ks"]), list(a["e"])
        for i in range(self.n_blocks):
            if now[i] and not was[i]:  # a newly built slot gets fresh genes, not the canonical filler
                ks[i], e[i] = choose(rng, KS), choose(rng, EXPAND)
            if rng.random() < prob:
                ks[i] = choose(rng, KS)
            if rng.random() < prob:
                e[i] = choose(rng, EXPAND)
        r = choose(rng, SAMPLE_RESOLUTIONS) if rng.random() < prob else a["r"]
        return self.canonical(ks, e, d, r)

    def crossover(self, a: dict, b: dict, rng: np.random.Generator) -> dict:
        a, b = self.validate(a), self.validate(b)
        d = [x if rng.random() < 0.5 else y for x, y in zip(a["d"], b["d"])]
        act_a, act_b, now = self.active(a["d"]), self.active(b["d"]), self.active(d)
        ks, e = [], []
        for i in range(self.n_blocks):
            donors = [p for p, act in ((a, act_a), (b, act_b)) if act[i]] if now[i] else [a]
            if not donors:  # built in the child but in neither parent
                ks.append(choose(rng, KS))
                e.append(choose(rng, EXPAND))
                continue
            ks.append(donors[int(rng.integers(len(donors)))]["ks"][i])
            e.append(donors[int(rng.integers(len(donors)))]["e"][i])
        r = a["r"] if rng.random() < 0.5 else b["r"]
        return self.canonical(ks, e, d, r)

    # ---- encoding ---------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return self.n_blocks * (len(KS) + len(EXPAND)) + RES_BINS

    def encode(self, arch: dict) -> np.ndarray:
        return self.encode_batch([arch])[0]

    def encode_batch(self, archs) -> np.ndarray:
        """Stacked ``encode`` of many archs, vectorized (the predictor's batch input)."""
        archs = list(archs)
        n, nb = len(archs), self.n_blocks
        try:
            genes = [np.array([a[k] for a in archs], dtype=np.float64).reshape(n, m)
                     for k, m in (("ks", nb), ("e", nb), ("d", self.n_stages), ("r", 1))]
            ok = (all(isinstance(a, dict) and len(a) == 4 for a in archs)
                  and all((g == np.round(g)).all() for g in genes))
            ks, e, d, r = (g.astype(np.int64) for g in genes)
            r = r[:, 0]
            ok = ok and (np.isin(ks, KS).all() and np.isin(e, EXPAND).all() and np.isin(d, DEPTHS).all()
                         and ((r >= R_MIN) & (r <= R_MAX)).all())
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:  # find the offending arch and report it precisely
            for a in archs:
                self.validate(a)
            raise WorkloadError(f"{self.name}: malformed architecture batch")
        pos = np.arange(self.n_stages * MAX_DEPTH)
        act = pos[None, :] % MAX_DEPTH < d[:, pos // MAX_DEPTH]
        act = np.concatenate([act, np.ones((n, self.n_tail), bool)], axis=1)
        X = np.zeros((n, self.n_features), np.float32)
        rows, cols = np.nonzero(act)
        X[rows, cols * len(KS) + np.searchsorted(KS, ks[rows, cols])] = 1.0
        X[rows, nb * len(KS) + cols * len(EXPAND) + np.searchsorted(EXPAND, e[rows, cols])] = 1.0
        X[np.arange(n), nb * (len(KS) + len(EXPAND)) + (r - RES_BIN_START) // RES_BIN_WIDTH] = 1.0
        return X

    def decode(self, vec) -> dict:
        """Arch of a feature vector; ``r`` is the lower edge of the resolution bin."""
        v = np.asarray(vec, dtype=np.float64).reshape(-1)
        if v.size != self.n_features or not np.isin(v, (0.0, 1.0)).all():
            raise WorkloadError(f"{self.name}: a feature vector has {self.n_features} values in {{0, 1}}")
        nb = self.n_blocks
        k_part = v[: nb * len(KS)].reshape(nb, len(KS))
        e_part = v[nb * len(KS): nb * (len(KS) + len(EXPAND))].reshape(nb, len(EXPAND))
        r_part = v[nb * (len(KS) + len(EXPAND)):]
        k_on, e_on = k_part.sum(1), e_part.sum(1)
        if (k_on > 1).any() or (e_on > 1).any() or (k_on != e_on).any() or r_part.sum() != 1:
            raise WorkloadError(f"{self.name}: feature vector is not a valid one-hot encoding")
        built = k_on.astype(bool)
        d = []
        for s in range(self.n_stages):
            slots = built[s * MAX_DEPTH:(s + 1) * MAX_DEPTH]
            depth = int(slots.sum())
            if depth not in DEPTHS or not slots[:depth].all():
                raise WorkloadError(f"{self.name}: stage {s} of the feature vector has no valid depth")
            d.append(depth)
        if not built[self.n_stages * MAX_DEPTH:].all():
            raise WorkloadError(f"{self.name}: feature vector leaves a fixed block empty")
        ks = [KS[int(np.argmax(row))] for row in k_part]
        e = [EXPAND[int(np.argmax(row))] for row in e_part]
        r = RES_BIN_START + RES_BIN_WIDTH * int(np.argmax(r_part))
        return self.canonical(ks, e, d, r)

    def size(self) -> int:
        per_stage = sum((len(KS) * len(EXPAND)) ** depth for depth in DEPTHS)
        tail = (len(KS) * len(EXPAND)) ** self.n_tail
        return per_stage ** self.n_stages * tail * len(SAMPLE_RESOLUTIONS)

    # ---- networks ---------------------------------------------------------------------------
    def to_net_config(self, arch: dict) -> dict:
        """The sub-network as an OFA-format ``net.config`` dict (resolution not included)."""
        a = self.validate(arch)
        first_conv, first_block, c = self.stem()
        blocks = [first_block]
        stages = self.stages()
        for s, (width, stride, act, se) in enumerate(stages[: self.n_stages]):
            for j in range(a["d"][s]):
                i = s * MAX_DEPTH + j
                mid = make_divisible(round(c * a["e"][i]), 8)
                blocks.append(mb_block_config(c, width, a["ks"][i], stride if j == 0 else 1, a["e"][i], act, se, mid))
                c = width
        for t, (width, stride, act, se) in enumerate(stages[self.n_stages:]):
            i = self.n_stages * MAX_DEPTH + t
            mid = make_divisible(round(c * a["e"][i]), 8)
            blocks.append(mb_block_config(c, width, a["ks"][i], stride, a["e"][i], act, se, mid))
            c = width
        return {"name": self.config_name, "bn": {"momentum": 0.1, "eps": self.bn_eps},
                "first_conv": first_conv, "blocks": blocks, **self.head(c)}

    def to_network(self, arch: dict) -> Network:
        a = self.validate(arch)
        return network_from_net_config(self.to_net_config(a), a["r"], name=self.name)

    def from_net_config(self, cfg: dict, resolution: int | None = None) -> dict:
        """The arch whose sub-network ``cfg`` is; ``WorkloadError`` if it is not one of this space."""
        from ..netconfig import parse_net_config
        if not isinstance(cfg, dict) or not isinstance(cfg.get("blocks"), list) or len(cfg["blocks"]) < 2:
            raise WorkloadError(f"{self.name}: not a net.config with blocks")
        spec = parse_net_config(cfg)
        ks, e, d = [KS[0]] * self.n_blocks, [EXPAND[0]] * self.n_blocks, []
        body = spec.blocks[1:]  # the first block is fixed
        n_body = len(body) - self.n_tail
        for b in body[:n_body]:
            if not d or b.shortcut is None:  # a block without shortcut opens a stage
                d.append(0)
            if len(d) > self.n_stages or d[-1] >= MAX_DEPTH:
                raise WorkloadError(f"{self.name}: the net.config has more than {self.n_stages} stages or more "
                                    f"than {MAX_DEPTH} blocks in a stage")
            i = (len(d) - 1) * MAX_DEPTH + d[-1]
            ks[i], e[i] = _genes(b)
            d[-1] += 1
        if len(d) != self.n_stages:
            raise WorkloadError(f"{self.name}: the net.config has {len(d)} stages, not {self.n_stages}")
        for t, b in enumerate(body[n_body:]):
            ks[self.n_stages * MAX_DEPTH + t], e[self.n_stages * MAX_DEPTH + t] = _genes(b)
        r = 224 if resolution is None else resolution
        arch = self.validate({"ks": ks, "e": e, "d": d, "r": r})
        mine = self.to_network(arch)
        theirs = network_from_net_config(spec, r, name=self.name)
        if [(l.name, l.shape_key) for l in mine] != [(l.name, l.shape_key) for l in theirs]:
            raise WorkloadError(f"{self.name}: the net.config's layers differ from this space's sub-network "
                                f"(wrong width multiplier or not an OFA sub-network)")
        return arch


class OfaMbv3Space(ElasticMBConvSpace):
    """OFA MobileNetV3 (``ofa_mbv3_d234_e346_k357_w1.0`` / ``_w1.2``)."""

    config_name = "MobileNetV3"
    bn_eps = 1e-5
    BASE_WIDTHS = (24, 40, 80, 112, 160)
    STRIDES = (2, 2, 2, 1, 2)
    ACTS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
    SE = (False, True, False, True, True)

    def __init__(self, width_mult: float = 1.2, name: str | None = None):
        super().__init__(name or f"ofa-mbv3-w{width_mult:g}", width_mult)

    def stem(self):
        c0 = self.width(16)
        first_conv = conv_layer_config(3, c0, 3, 2, "h_swish")
        first_block = mb_block_config(c0, c0, 3, 1, 1, "relu", False)
        return first_conv, first_block, c0

    def stages(self):
        return [(self.width(w), s, a, se) for w, s, a, se in zip(self.BASE_WIDTHS, self.STRIDES, self.ACTS, self.SE)]

    def head(self, c_in):
        expand, last = self.width(960), self.width(1280)
        return {"final_expand_layer": conv_layer_config(c_in, expand, 1, 1, "h_swish"),
                "feature_mix_layer": conv_layer_config(expand, last, 1, 1, "h_swish", use_bn=False),
                "classifier": {"name": "LinearLayer", "in_features": last, "out_features": 1000, "bias": True,
                               "use_bn": False, "act_func": None, "dropout_rate": 0.1,
                               "ops_order": "weight_bn_act"}}


WIDTHS = (1.0, 1.2)


def detect_width_mult(cfg: dict) -> float:
    """Width multiplier (1.0 or 1.2) of an OFA MobileNetV3 net.config, from its channel counts."""
    try:
        stem = cfg["first_conv"]["out_channels"]
        expand = cfg["final_expand_layer"]["out_channels"]
    except (KeyError, TypeError):
        raise WorkloadError("net.config is not an OFA MobileNetV3 (no first_conv / final_expand_layer)") from None
    for w in WIDTHS:
        if stem == make_divisible(16 * w, 8) and expand == make_divisible(960 * w, 8):
            return w
    raise WorkloadError(f"net.config channels (stem {stem}, final expand {expand}) match no OFA MobileNetV3 "
                        f"width multiplier {list(WIDTHS)}")


def arch_from_net_config(cfg: dict, resolution: int | None = None) -> dict:
    """(ks, e, d, r) of an OFA MobileNetV3 sub-network given as a net.config (width detected)."""
    return OfaMbv3Space(detect_width_mult(cfg)).from_net_config(cfg, resolution)
