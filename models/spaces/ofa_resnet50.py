"""The OFA ResNet-50 search space (``ofa_resnet50_d0-1-2_e0.2-0.25-0.35_w0.65-0.8-1.0``).

Structure: input stem of three 3x3 convs (the middle one, with an identity shortcut, can be
skipped), 3x3/2 max pool, four stages of bottleneck blocks (1x1 -> 3x3 with the stride ->
1x1, residual add; the shortcut is the identity or, where shape changes, avg-pool(stride,
ceil) + 1x1 conv), global pool, classifier. Base depths 2, 2, 4, 2 plus 0-2 extra blocks
per stage; stage widths 256, 512, 1024, 2048 and stem widths 64 (32 in the middle) scaled
by 0.65 / 0.8 / 1.0 (``make_divisible(c * w, 8)``); bottleneck width
``make_divisible(round(out * e), 8)`` with e in {0.2, 0.25, 0.35}.

An architecture is ``{"d": [5], "e": [18], "w": [6], "r": int}``:

- ``d[0]`` in {0, 2}: 0 skips the middle stem conv; ``d[1..4]`` in {0, 1, 2}: extra blocks
  per stage over the base depth;
- ``e``: expand ratio of each of the 18 block slots (4, 4, 6, 4 slots per stage; slots
  beyond a stage's depth hold 0.2 in the canonical form);
- ``w``: width index (0, 1, 2 for 0.65, 0.8, 1.0) of the first two stem convs, the last
  stem conv, and the four stages;
- ``r``: one of the resolutions the OFA ResNet-50 accuracy predictor knows.

``encode`` is the predictor's 82-value input, in the order of the OFA authors' ResNet arch
encoder: 8 one-hot resolutions, 2 one-hot stem flags (index 1 when the middle stem conv is
built), 6 x 3 one-hot width indices, 18 x 3 one-hot expand ratios (zero beyond a stage's
depth).
"""
from __future__ import annotations

import numpy as np

from ..errors import WorkloadError
from ..network import Network
from ..zoo._builder import NetBuilder, make_divisible
from .base import SearchSpace, check_keys, check_prob, choose, int_list, short

EXPAND = (0.2, 0.25, 0.35)
DEPTHS = (0, 1, 2)
STEM_DEPTHS = (0, 2)
WIDTH_MULTS = (0.65, 0.8, 1.0)
WIDTH_IDX = (0, 1, 2)
BASE_DEPTHS = (2, 2, 4, 2)
STAGE_WIDTHS = (256, 512, 1024, 2048)
STAGE_STRIDES = (1, 2, 2, 2)
RESOLUTIONS = (128, 144, 160, 176, 192, 224, 240, 256)
MAX_EXTRA = max(DEPTHS)
SLOTS = tuple(b + MAX_EXTRA for b in BASE_DEPTHS)  # block slots per stage: 4, 4, 6, 4
N_BLOCKS = sum(SLOTS)
N_WIDTHS = len(BASE_DEPTHS) + 2


def _slot_start(stage: int) -> int:
    return sum(SLOTS[:stage])


class OfaResNet50Space(SearchSpace):
    """OFA ResNet-50: elastic depth, bottleneck expand ratio and width; resolution."""

    n_features = len(RESOLUTIONS) + 2 + N_WIDTHS * len(WIDTH_IDX) + N_BLOCKS * len(EXPAND)

    def __init__(self, num_classes: int = 1000, name: str = "ofa-resnet50"):
        self.name = name
        self.num_classes = num_classes

    # ---- validation -------------------------------------------------------------------------
    @staticmethod
    def active(d) -> list[bool]:
        out = []
        for s, base in enumerate(BASE_DEPTHS):
            out += [j < base + d[s + 1] for j in range(SLOTS[s])]
        return out

    def canonical(self, d, e, w, r) -> dict:
        e = [x if a else EXPAND[0] for x, a in zip(e, self.active(d))]
        return {"d": list(d), "e": list(e), "w": list(w), "r": r}

    def validate(self, arch) -> dict:
        check_keys(arch, ("d", "e", "w", "r"), self.name)
        d = int_list(arch, "d", 1 + len(BASE_DEPTHS), DEPTHS, self.name)
        if d[0] not in STEM_DEPTHS:
            raise WorkloadError(f"{self.name}: arch['d'][0]={d[0]!r} (input stem) must be one of {list(STEM_DEPTHS)}")
        e = int_list(arch, "e", N_BLOCKS, EXPAND, self.name)
        w = int_list(arch, "w", N_WIDTHS, WIDTH_IDX, self.name)
        r = arch["r"]
        if isinstance(r, bool) or not isinstance(r, (int, float, np.integer, np.floating)) or r not in RESOLUTIONS:
            raise WorkloadError(f"{self.name}: arch['r']={short(r)} must be one of {list(RESOLUTIONS)}")
        return self.canonical(d, e, w, int(r))

    # ---- stochastic operators ---------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict:
        d = [choose(rng, STEM_DEPTHS)] + [choose(rng, DEPTHS) for _ in BASE_DEPTHS]
        e = [choose(rng, EXPAND) for _ in range(N_BLOCKS)]
        w = [choose(rng, WIDTH_IDX) for _ in range(N_WIDTHS)]
        return self.canonical(d, e, w, choose(rng, RESOLUTIONS))

    def mutate(self, arch: dict, rng: np.random.Generator, prob: float) -> dict:
        a = self.validate(arch)
        prob = check_prob(prob)
        was = self.active(a["d"])
        d = [choose(rng, STEM_DEPTHS if i == 0 else DEPTHS) if rng.random() < prob else x
             for i, x in enumerate(a["d"])]
        now = self.active(d)
        e = [choose(rng, EXPAND) if (now[i] and not was[i]) or rng.random() < prob else x
             for i, x in enumerate(a["e"])]
        w = [choose(rng, WIDTH_IDX) if rng.random() < prob else x for x in a["w"]]
        r = choose(rng, RESOLUTIONS) if rng.random() < prob else a["r"]
        return self.canonical(d, e, w, r)

    def crossover(self, a: dict, b: dict, rng: np.random.Generator) -> dict:
        a, b = self.validate(a), self.validate(b)
        pick = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
        d = [pick(x, y) for x, y in zip(a["d"], b["d"])]
        act_a, act_b, now = self.active(a["d"]), self.active(b["d"]), self.active(d)
        e = []
        for i in range(N_BLOCKS):
            donors = [p["e"][i] for p, act in ((a, act_a), (b, act_b)) if act[i]] if now[i] else [EXPAND[0]]
            e.append(donors[int(rng.integers(len(donors)))] if donors else choose(rng, EXPAND))
        w = [pick(x, y) for x, y in zip(a["w"], b["w"])]
        return self.canonical(d, e, w, pick(a["r"], b["r"]))

    # ---- encoding ---------------------------------------------------------------------------
    def encode(self, arch: dict) -> np.ndarray:
        a = self.validate(arch)
        x = np.zeros(self.n_features, np.float32)
        x[RESOLUTIONS.index(a["r"])] = 1
        off = len(RESOLUTIONS)
        x[off + (1 if a["d"][0] > 0 else 0)] = 1
        off += 2
        for i, wi in enumerate(a["w"]):
            x[off + i * len(WIDTH_IDX) + wi] = 1
        off += N_WIDTHS * len(WIDTH_IDX)
        for i, (ei, act) in enumerate(zip(a["e"], self.active(a["d"]))):
            if act:
                x[off + i * len(EXPAND) + EXPAND.index(ei)] = 1
        return x

    def decode(self, vec) -> dict:
        v = np.asarray(vec, dtype=np.float64).reshape(-1)
        if v.size != self.n_features or not np.isin(v, (0.0, 1.0)).all():
            raise WorkloadError(f"{self.name}: a feature vector has {self.n_features} values in {{0, 1}}")
        parts, off = [], 0
        for n, k in ((1, len(RESOLUTIONS)), (1, 2), (N_WIDTHS, len(WIDTH_IDX)), (N_BLOCKS, len(EXPAND))):
            parts.append(v[off: off + n * k].reshape(n, k))
            off += n * k
        r_part, stem_part, w_part, e_part = parts
        if (r_part.sum(1) != 1).any() or (stem_part.sum(1) != 1).any() or (w_part.sum(1) != 1).any() \
                or (e_part.sum(1) > 1).any():
            raise WorkloadError(f"{self.name}: feature vector is not a valid one-hot encoding")
        built = e_part.sum(1).astype(bool)
        d = [STEM_DEPTHS[int(np.argmax(stem_part[0]))]]
        for s, base in enumerate(BASE_DEPTHS):
            slots = built[_slot_start(s): _slot_start(s) + SLOTS[s]]
            n = int(slots.sum())
            if n - base not in DEPTHS or not slots[:n].all():
                raise WorkloadError(f"{self.name}: stage {s} of the feature vector has no valid depth")
            d.append(n - base)
        e = [EXPAND[int(np.argmax(row))] for row in e_part]
        w = [WIDTH_IDX[int(np.argmax(row))] for row in w_part]
        return self.canonical(d, e, w, RESOLUTIONS[int(np.argmax(r_part[0]))])

    def size(self) -> int:
        per_stage = [len(WIDTH_IDX) * sum(len(EXPAND) ** (b + x) for x in DEPTHS) for b in BASE_DEPTHS]
        return (len(STEM_DEPTHS) * len(WIDTH_IDX) ** 2 * int(np.prod(per_stage, dtype=object))
                * len(RESOLUTIONS))

    # ---- networks ---------------------------------------------------------------------------
    @staticmethod
    def widths(w) -> tuple[int, int, list[int]]:
        """(stem width, stem output width, stage widths) for width indices ``w``."""
        stem_out = make_divisible(64 * WIDTH_MULTS[w[1]], 8)
        stem_mid = make_divisible(make_divisible(64 * WIDTH_MULTS[w[0]], 8) // 2, 8)
        stages = [make_divisible(c * WIDTH_MULTS[wi], 8) for c, wi in zip(STAGE_WIDTHS, w[2:])]
        return stem_mid, stem_out, stages

    def to_network(self, arch: dict) -> Network:
        a = self.validate(arch)
        stem_mid, stem_out, stage_widths = self.widths(a["w"])
        b = NetBuilder(self.name, 3, a["r"])
        b.conv("input_stem.0", stem_mid, 3, stride=2)
        if a["d"][0] > 0:
            entry = b.state()
            b.conv("input_stem.1", stem_mid, 3)
            b.add("input_stem.1.add", entry)
        b.conv("input_stem.2", stem_out, 3)
        b.pool("max_pooling", 3, stride=2, padding=1)
        idx = 0
        for s, base in enumerate(BASE_DEPTHS):
            out = stage_widths[s]
            for j in range(base + a["d"][s + 1]):
                stride = STAGE_STRIDES[s] if j == 0 else 1
                mid = make_divisible(round(out * a["e"][_slot_start(s) + j]), 8)
                p = f"blocks.{idx}"
                entry = b.state()
                if not (stride == 1 and entry[0] == out):  # projection shortcut, computed first as OFA does
                    if stride > 1:
                        b.pool(f"{p}.downsample.avg_pool", stride, stride=stride, ceil_mode=True)
                    b.conv(f"{p}.downsample.conv", out, 1)
                    shortcut_state = b.state()
                    b.restore(entry)
                else:
                    shortcut_state = entry
                b.conv(f"{p}.conv1", mid, 1)
                b.conv(f"{p}.conv2", mid, 3, stride=stride)
                b.conv(f"{p}.conv3", out, 1)
                if b.state()[:3] != shortcut_state[:3]:
                    raise WorkloadError(f"{self.name}: block {idx} shortcut shape {shortcut_state[:3]} "
                                        f"!= {b.state()[:3]} at resolution {a['r']}")
                b.add(f"{p}.add", shortcut_state)
                idx += 1
        b.adaptive_pool("global_avg_pool", 1)
        b.fc("classifier", self.num_classes)
        return b.build(a["r"], arch=a)
