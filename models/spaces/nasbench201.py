"""NAS-Bench-201 cells (Dong & Yang, ICLR 2020) as a layer generator.

A cell is a 4-node DAG; each of the 6 edges ``j<-i`` (i < j) carries one of five operators
(``OPS``, the benchmark's own order). Arch strings use the benchmark's notation, edges in
the order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

An architecture dict is ``{"ops": [six operator names in that edge order]}``.

The network is the benchmark's macro skeleton on 32x32 inputs: 3x3 stem conv (16 channels),
three stages of five cells (16, 32, 64 channels) joined by residual reduction blocks
(3x3/2 conv, 3x3 conv, shortcut 2x2/2 avg pool + 1x1 conv), global pool, classifier.
``nor_conv_kxk`` is ReLU-conv-BN (a conv layer here), ``avg_pool_3x3`` (stride 1, pad 1)
and the node sums are ``AuxOp``; ``skip_connect`` costs nothing and ``none`` edges carry no
operator. With ``prune_dead=True`` the edges whose result cannot reach the cell output, or
whose input is always zero, are left out too, as inference runtimes do.

``nasbench201_from_onehot`` reads the 31-bit ``encoding`` column of the "One Proxy Device Is
Enough" latency data (``nasbench201/oneproxy_latency.csv``). What the file does not say
was inferred from its 1,999 rows:

- bits 0-29 are 6 groups of 5 (each group has exactly one bit set in every row); bit 30 is
  1 in every row (a constant, e.g. a bias column for linear latency models);
- operator order within a group = ``OPS``: a linear fit of the analytical FPGA and Eyeriss
  latencies (R^2 = 1.000) gives zero cost to positions 0 and 1, most to position 3
  (3x3 conv); on measured devices position 0 is the cheapest (a ``none`` edge lets the
  runtime drop work); and matching decoded strings to the HW-NAS-Bench-360 Raspberry Pi 5
  latencies ranks this order first of all 120 (mean Spearman 0.85 against 0.79 for the next);
- edge order = the arch-string order above: a latency model in which ``none`` edges remove
  the work they disconnect fits the measured devices best with this order (mean R^2 0.933
  against at most 0.907 for any other of the 720 orders, except its mirror image
  j<-i -> (3-i)<-(3-j), which fits identically because the cost model is symmetric;
  the arch-string order is the natural reading and is taken).
"""
from __future__ import annotations

import numpy as np

from ..errors import WorkloadError
from ..network import Network
from ..zoo._builder import NetBuilder
from .base import SearchSpace, check_prob, choose, short

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), arch-string order
N_NODES = 4
CELLS_PER_STAGE = 5
STAGE_CHANNELS = (16, 32, 64)
ONEHOT_BITS = len(EDGES) * len(OPS) + 1


def arch_to_string(ops) -> str:
    """``["nor_conv_3x3", ...]`` (6 ops, edge order) -> NAS-Bench-201 arch string."""
    op = dict(zip(EDGES, ops))
    return "+".join("|" + "|".join(f"{op[(j, i)]}~{i}" for i in range(j)) + "|" for j in range(1, N_NODES))


def arch_from_string(text: str) -> dict:
    """NAS-Bench-201 arch string -> ``{"ops": [...]}`` (``WorkloadError`` if malformed)."""
    if not isinstance(text, str):
        raise WorkloadError(f"nasbench201: an arch string is text, got {type(text).__name__}")
    nodes = text.strip().split("+")
    if len(nodes) != N_NODES - 1:
        raise WorkloadError(f"nasbench201: arch string must have {N_NODES - 1} '+'-separated nodes, "
                            f"like {arch_to_string(['none'] * len(EDGES))!r}: {short(text)}")
    found = {}
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise WorkloadError(f"nasbench201: node {j} of {short(text)} must look like |op~i|...|")
        tokens = node[1:-1].split("|")
        if len(tokens) != j:
            raise WorkloadError(f"nasbench201: node {j} of {short(text)} must have {j} inputs, got {len(tokens)}")
        for i, tok in enumerate(tokens):
            op, sep, src = tok.partition("~")
            if not sep or src != str(i):
                raise WorkloadError(f"nasbench201: token {short(tok)} in node {j} must be 'op~{i}'")
            if op not in OPS:
                raise WorkloadError(f"nasbench201: unknown operator {short(op)} in node {j} (known: {', '.join(OPS)})")
            found[(j, i)] = op
    return {"ops": [found[e] for e in EDGES]}


def nasbench201_from_onehot(bits) -> str:
    """Arch string of a 31-bit (or 30-bit, without the constant) one-hot encoding.

    Accepts a string of '0'/'1' or a sequence of 0/1 values; see the module docstring for
    the bit layout.
    """
    if isinstance(bits, str):
        if set(bits.strip()) - {"0", "1"}:
            raise WorkloadError(f"nasbench201: one-hot encoding must contain only 0 and 1: {bits!r}")
        v = np.array([int(c) for c in bits.strip()])
    else:
        try:
            v = np.asarray(bits, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise WorkloadError("nasbench201: one-hot encoding must be a sequence of 0/1 values") from None
        if not np.isin(v, (0, 1)).all():
            raise WorkloadError("nasbench201: one-hot encoding must contain only 0 and 1")
    if v.size not in (ONEHOT_BITS, ONEHOT_BITS - 1):
        raise WorkloadError(f"nasbench201: one-hot encoding has {ONEHOT_BITS} (or {ONEHOT_BITS - 1}) bits, "
                            f"got {v.size}")
    if v.size == ONEHOT_BITS and v[-1] != 1:
        raise WorkloadError("nasbench201: the last bit of a 31-bit encoding is the constant 1")
    groups = v[: len(EDGES) * len(OPS)].reshape(len(EDGES), len(OPS))
    if (groups.sum(1) != 1).any():
        raise WorkloadError("nasbench201: each of the 6 groups of 5 bits must have exactly one bit set")
    return arch_to_string([OPS[int(np.argmax(g))] for g in groups])


def live_edges(ops) -> list[bool]:
    """Edges whose input can be non-zero and whose output reaches the cell output."""
    op = dict(zip(EDGES, ops))
    fed = {0}
    for j in range(1, N_NODES):
        if any(op[(j, i)] != "none" and i in fed for i in range(j)):
            fed.add(j)
    used = {N_NODES - 1}
    for i in range(N_NODES - 2, -1, -1):
        if any(op[(j, i)] != "none" and j in used for j in range(i + 1, N_NODES)):
            used.add(i)
    return [op[(j, i)] != "none" and i in fed and j in used for j, i in EDGES]


class NasBench201Space(SearchSpace):
    """The 15,625 NAS-Bench-201 cells in the benchmark's CIFAR skeleton."""

    def __init__(self, num_classes: int = 100, resolution: int = 32, prune_dead: bool = False,
                 name: str = "nasbench201"):
        self.name = name
        self.num_classes = num_classes
        self.resolution = resolution
        self.prune_dead = prune_dead

    def validate(self, arch) -> dict:
        if isinstance(arch, str):
            return arch_from_string(arch)
        if not isinstance(arch, dict) or set(arch) != {"ops"}:
            raise WorkloadError(f"{self.name}: an architecture is an arch string or {{'ops': [6 operators]}}, "
                                f"got {short(arch)}")
        ops = arch["ops"]
        if not isinstance(ops, (list, tuple)) or len(ops) != len(EDGES):
            raise WorkloadError(f"{self.name}: arch['ops'] must list {len(EDGES)} operators from {', '.join(OPS)}, "
                                f"got {short(ops)}")
        for i, o in enumerate(ops):
            if not isinstance(o, str) or o not in OPS:
                raise WorkloadError(f"{self.name}: arch['ops'][{i}]={short(o)} is not one of {', '.join(OPS)}")
        return {"ops": list(ops)}

    @staticmethod
    def to_string(arch) -> str:
        return arch_to_string(NasBench201Space().validate(arch)["ops"])

    def sample(self, rng: np.random.Generator) -> dict:
        return {"ops": [choose(rng, OPS) for _ in EDGES]}

    def mutate(self, arch, rng: np.random.Generator, prob: float) -> dict:
        a = self.validate(arch)
        prob = check_prob(prob)
        return {"ops": [choose(rng, OPS) if rng.random() < prob else o for o in a["ops"]]}

    def crossover(self, a, b, rng: np.random.Generator) -> dict:
        a, b = self.validate(a), self.validate(b)
        return {"ops": [x if rng.random() < 0.5 else y for x, y in zip(a["ops"], b["ops"])]}

    def encode(self, arch) -> np.ndarray:
        """30 values: one-hot operator (``OPS`` order) per edge, edges in arch-string order."""
        a = self.validate(arch)
        x = np.zeros(len(EDGES) * len(OPS), np.float32)
        for e, op in enumerate(a["ops"]):
            x[e * len(OPS) + OPS.index(op)] = 1
        return x

    def decode(self, vec) -> dict:
        return arch_from_string(nasbench201_from_onehot(vec))

    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    def to_network(self, arch) -> Network:
        a = self.validate(arch)
        ops = a["ops"]
        live = live_edges(ops) if self.prune_dead else [o != "none" for o in ops]
        b = NetBuilder(f"{self.name}:{arch_to_string(ops)}", 3, self.resolution)
        b.conv("stem.conv", STAGE_CHANNELS[0], 3)
        cell = 0
        for stage, channels in enumerate(STAGE_CHANNELS):
            if stage > 0:
                self._reduction(b, f"cells.{cell}", channels)
                cell += 1
            for _ in range(CELLS_PER_STAGE):
                self._cell(b, f"cells.{cell}", ops, live)
                cell += 1
        b.adaptive_pool("global_pool", 1)
        b.fc("classifier", self.num_classes)
        return b.build(self.resolution, arch_str=arch_to_string(ops))

    @staticmethod
    def _reduction(b: NetBuilder, p: str, channels: int) -> None:
        entry = b.state()
        b.conv(f"{p}.conv_a", channels, 3, stride=2)
        b.conv(f"{p}.conv_b", channels, 3)
        main = b.state()
        b.restore(entry)
        b.pool(f"{p}.downsample.pool", 2, stride=2)
        b.conv(f"{p}.downsample.conv", channels, 1)
        if b.state()[:3] != main[:3]:
            raise WorkloadError(f"nasbench201: {p} shortcut shape {b.state()[:3]} != {main[:3]}")
        b.add(f"{p}.add", main)

    @staticmethod
    def _cell(b: NetBuilder, p: str, ops, live) -> None:
        entry = b.state()
        node = {0: entry[3]}  # the graph node that produced each cell node's tensor
        for j in range(1, N_NODES):
            terms = []
            for e, ((to, frm), op) in enumerate(zip(EDGES, ops)):
                if to != j or not live[e]:
                    continue
                b.restore(entry[:3] + (node.get(frm, entry[3]),))
                name = f"{p}.edges.{to}<-{frm}"
                if op == "nor_conv_3x3":
                    b.conv(name, entry[0], 3)
                elif op == "nor_conv_1x1":
                    b.conv(name, entry[0], 1)
                elif op == "avg_pool_3x3":
                    b.op(name, "pool", b.elems, b.elems)
                terms.append(b.src)  # a skip connection passes its source through
            for k in range(len(terms) - 1):
                b.restore(entry[:3] + (terms[0],)).add(f"{p}.node{j}.add{k}", entry[:3] + (terms[k + 1],))
                terms[0] = b.src
            if terms:
                node[j] = terms[0]
        b.restore(entry[:3] + (node.get(N_NODES - 1, entry[3]),))
