"""The cost of a schedule: a network cut into fused stacks of consecutive layers, each run tile
by tile (depth-first), the layer-by-layer schedule being the stacks of one layer.

A stack's tile is a block of output rows x columns of its last layer. It propagates back
through the stack (``stack_tiles``): with ``recompute`` every layer computes the whole region
its consumer's tile reads (strides, kernels and dilation widen it; overlapping regions of
neighbouring tiles are computed again); with ``cache`` every layer is cut into the same grid of
tiles and the overlap (the window's halo) is kept on chip, in line buffers across tile rows
and column buffers across tiles of a row, so no MAC is repeated.

Where data lives (``Stack residency``), for the layers ``a..b`` of a stack:

- the stack's input is read from DRAM by layer ``a`` (with ``cache``, each input row once: the
  halo rows a tile shares with earlier tiles come from the cache), its output written to DRAM
  by layer ``b``;
- every intermediate tile stays in the global buffer; an intermediate activation that a layer
  outside the stack also reads (a residual input used later) is written to DRAM as well;
- the skip input of a residual add fused at a layer of the stack stays in the global buffer
  from the moment it is produced (or read, when it is the stack's input) until the add;
- weights stay in the global buffer for the whole stack when they fit beside the tiles (read
  once), otherwise every tile fetches them again from DRAM.

Each layer's tile is mapped by the per-layer mapper and costed with ``evaluate_mapping`` with
the on-chip data spaces (``onchip``); the stack must fit the global buffer: the resident
tiles, held skip tiles, caches and weights, plus the mapping's own global-buffer tiles of the
data spaces that still come from or go to DRAM (``stack_glb_bytes``). Tiles run one after the
other and the layers of a tile one after the other, so cycles add; loading resident weights
is not overlapped. Tiles smaller than a layer's map count their halo rows and columns as data
(interior tiles; the zero padding at the map's border is not discounted).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from models.errors import WorkloadError
from models.layer import Layer
from models.network import AuxOp, Network
from models.schema import NETWORK_INPUT

from .cost import (COMPONENTS, Cost, buffer_need_bytes, compulsory_words, evaluate_mapping, glb_tiles,
                   transfer_weights)
from .spec import Accelerator

OVERLAP = ("recompute", "cache")
FUSABLE_OPS = frozenset({"conv", "dwconv"})
ELEMENTWISE = frozenset({"add", "act", "relu", "relu6", "hswish", "sigmoid", "bn"})  # no tiling barrier


@dataclass(frozen=True)
class Stack:
    """Layers ``first..last`` (indices into the network's layers) fused; ``tile`` = (rows, cols)
    of the last layer's output per tile, ``None`` for the whole map (one tile)."""

    first: int
    last: int
    tile: tuple[int, int] | None = None
    overlap: str = "recompute"

    @property
    def indices(self) -> range:
        return range(self.first, self.last + 1)


# ---- the graph seen by a schedule ----------------------------------------------------------
@dataclass(frozen=True)
class Flow:
    """The network's data flow between MAC layers, element-wise operators folded into the layer
    whose output they modify (a residual add is fused into the layer producing its first input).

    ``joins[i]``: layer ``i`` reads exactly the (possibly added-to) output of layer ``i-1`` and
    both are convolutions, so they may share a stack. ``consumers[j]``: the layers that read
    layer ``j``'s output (a residual add counts as read by the layer it is fused into).
    ``skips[j]``: the tensors added to layer ``j``'s output, as layer indices (-1: the network
    input, -2: a non-element-wise operator's result)."""

    joins: tuple[bool, ...]
    consumers: tuple[frozenset, ...]
    skips: tuple[tuple[int, ...], ...]
    sources: tuple[tuple[int, ...], ...]  # the layers whose outputs each layer reads (-1, -2 as skips)
    fused_aux: dict = field(default_factory=dict)  # add name -> layer index it is fused into


def flow(network: Network) -> Flow:
    """The flow of ``network`` (which needs graph edges; see ``Network.inputs``)."""
    if not network.inputs:
        raise WorkloadError(f"network '{network.name}' has no graph edges (the inputs of each layer), so only "
                            f"the layer-by-layer schedule applies; zoo networks and net.config files have them")
    index = {l.name: i for i, l in enumerate(network.layers)}
    kind = {a.name: a.kind for a in network.aux}

    def producer(node: str) -> int:
        """The layer whose output ``node`` is (through element-wise operators); -1 for the
        network's input, -2 for another operator's result."""
        seen = 0
        while node not in index:
            if node == NETWORK_INPUT:
                return -1
            if kind.get(node) not in ELEMENTWISE or seen > len(kind):
                return -2
            node = network.inputs[node][0]
            seen += 1
        return index[node]

    n = len(network.layers)
    consumers = [set() for _ in range(n)]
    skips = [[] for _ in range(n)]
    fused_aux = {}
    for a in network.aux:
        if a.kind == "add" and len(network.inputs[a.name]) == 2:
            j = producer(network.inputs[a.name][0])
            if j >= 0:
                s = producer(network.inputs[a.name][1])
                skips[j].append(s)
                fused_aux[a.name] = j
                if s >= 0:
                    consumers[s].add(j)
    joins, sources = [], []
    for i, l in enumerate(network.layers):
        srcs = [producer(x) for x in network.inputs[l.name]]
        sources.append(tuple(srcs))
        for s in srcs:
            if s >= 0:
                consumers[s].add(i)
        prev = network.layers[i - 1] if i else None
        joins.append(bool(i) and srcs == [i - 1] and l.op in FUSABLE_OPS and prev.op in FUSABLE_OPS
                     and l.G * l.C == prev.G * prev.K and l.N == prev.N)
    # a layer read by a non-element-wise operator (pool, concat, ...) is also read off chip
    for a in network.aux:
        if a.name not in fused_aux and a.kind not in ELEMENTWISE:
            for x in network.inputs[a.name]:
                j = producer(x)
                if j >= 0:
                    consumers[j].add(n)  # "a reader outside every stack"
    return Flow(tuple(joins), tuple(frozenset(c) for c in consumers), tuple(tuple(s) for s in skips),
                tuple(sources), fused_aux)


def _skip_held(fl: Flow, st: Stack, s: int) -> bool:
    """Whether the skip tensor of layer ``s`` stays on chip in stack ``st``: produced inside it,
    or the stack's own input."""
    return st.first <= s or (s >= 0 and fl.sources[st.first] == (s,))


def check_stack(network: Network, fl: Flow, st: Stack) -> None:
    """Raise ``WorkloadError`` unless ``st`` is a valid stack of ``network``."""
    n = len(network.layers)
    if not 0 <= st.first <= st.last < n:
        raise WorkloadError(f"stack {st.first}..{st.last}: layer indices must lie in 0..{n - 1}")
    if st.overlap not in OVERLAP:
        raise WorkloadError(f"stack {st.first}..{st.last}: overlap must be one of {', '.join(OVERLAP)}")
    for i in range(st.first + 1, st.last + 1):
        if not fl.joins[i]:
            raise WorkloadError(f"layers '{network.layers[i - 1].name}' and '{network.layers[i].name}' cannot "
                                f"share a stack: the second does not read only the first's output, or one is "
                                f"not a convolution")
    if st.tile is not None and (len(st.tile) != 2 or min(st.tile) < 1):
        raise WorkloadError(f"stack {st.first}..{st.last}: a tile is two positive numbers (rows, cols), "
                            f"got {st.tile}")


# ---- tiles ---------------------------------------------------------------------------------
def _tile_layer(l: Layer, rows: int, cols: int) -> Layer:
    rows, cols = min(rows, l.P), min(cols, l.Q)
    if (rows, cols) == (l.P, l.Q):
        return l
    return replace(l, P=rows, Q=cols, padding=0)


def stack_tiles(layers: list[Layer], tile: tuple[int, int] | None, overlap: str = "recompute") -> tuple[int, list[Layer]]:
    """``(tiles, tile layers)``: how many tiles the stack runs and the loop nest each of its
    layers runs per tile (the layer itself when there is one tile)."""
    last = layers[-1]
    tp, tq = (last.P, last.Q) if tile is None else (min(tile[0], last.P), min(tile[1], last.Q))
    n_r, n_c = -(-last.P // tp), -(-last.Q // tq)
    if n_r * n_c == 1:
        return 1, list(layers)
    if overlap == "cache":
        return n_r * n_c, [_tile_layer(l, -(-l.P // n_r), -(-l.Q // n_c)) for l in layers]
    out, rows, cols = [], tp, tq
    for l in reversed(layers):
        t = _tile_layer(l, rows, cols)
        out.append(t)
        rows = (t.P - 1) * l.stride + (l.R - 1) * l.dilation + 1
        cols = (t.Q - 1) * l.stride + (l.S - 1) * l.dilation + 1
    return n_r * n_c, out[::-1]


def _act_bytes(acc: Accelerator, elems: float) -> float:
    return elems * acc.word_bits["I"] / 8


def cache_elems(l: Layer, t: Layer) -> int:
    """Halo a cached stack keeps for layer ``l`` run on tiles ``t`` (elements): the rows the
    next tile row reuses, across the whole input width, and the columns the next tile of a row
    reuses."""
    halo_r = max(0, (l.R - 1) * l.dilation + 1 - l.stride) if t.P < l.P else 0
    halo_c = max(0, (l.S - 1) * l.dilation + 1 - l.stride) if t.Q < l.Q else 0
    return l.G * l.N * l.C * (halo_r * l.W_in + halo_c * t.H)


def _cache_bytes(acc: Accelerator, l: Layer, t: Layer) -> float:
    return _act_bytes(acc, cache_elems(l, t))


@dataclass
class StackPlan:
    """Where each layer of a stack keeps its data: ``onchip[k]`` the data spaces of the stack's
    ``k``-th layer that live in the global buffer; ``resident_bytes[k]`` what the global buffer
    holds for the stack while that layer runs, besides the mapping's own tiles."""

    tiles: int
    tile_layers: list
    onchip: list
    resident_bytes: list
    weights_onchip: bool
    weight_bytes: float
    dram_scale: list = field(default_factory=list)  # per layer: evaluate_mapping's dram_scale


def plan_stack(network: Network, fl: Flow, st: Stack, acc: Accelerator, weights_onchip: bool) -> StackPlan:
    """Tiles and residency of stack ``st`` (weights kept on chip when ``weights_onchip``)."""
    layers = [network.layers[i] for i in st.indices]
    tiles, tl = stack_tiles(layers, st.tile, st.overlap)
    a, b = st.first, st.last
    weights_onchip = weights_onchip and tiles > 1 and acc.glb.holds("W")
    weight_bytes = sum(l.weight_elems for l in layers) * acc.word_bits["W"] / 8
    fixed = weight_bytes if weights_onchip else 0.0
    if st.overlap == "cache" and tiles > 1:
        fixed += sum(_cache_bytes(acc, l, t) for l, t in zip(layers, tl))
    onchip, resident = [], []
    for k, i in enumerate(st.indices):
        spaces = set()
        if weights_onchip:
            spaces.add("W")
        if i > a:
            spaces.add("I")
        if i < b and fl.consumers[i] <= set(st.indices):
            spaces.add("O")
        held = _act_bytes(acc, tl[k].input_elems) if i > a else 0.0
        held += _act_bytes(acc, tl[k].output_elems) if i < b else 0.0
        # skip inputs produced (or read) earlier in the stack and added at or after this layer
        for j in range(i, b + 1):
            for s in fl.skips[j]:
                if s < i and _skip_held(fl, st, s):
                    held += _act_bytes(acc, tl[j - a].output_elems)
        onchip.append(frozenset(x for x in spaces if acc.glb.holds(x)))
        resident.append(fixed + held if tiles > 1 or len(layers) > 1 else 0.0)
    scale = [None] * len(layers)
    if st.overlap == "cache" and tiles > 1:
        # the first layer reads each input row from DRAM once; the halo rows a tile shares with the
        # previous ones come from the cache
        whole = compulsory_words(layers[0], acc.stores_padding)["I"]
        per_tile = compulsory_words(tl[0], acc.stores_padding)["I"]
        scale[0] = {"I": min(1.0, whole / (tiles * per_tile))}
    return StackPlan(tiles, tl, onchip, resident, weights_onchip, weight_bytes, scale)


def stack_glb_bytes(acc: Accelerator, plan: StackPlan, k: int, mapping) -> float:
    """Global-buffer bytes the ``k``-th layer of a planned stack needs: the stack's resident data
    and the mapping's tiles of the data spaces that are not resident."""
    layer = plan.tile_layers[k]
    tiles, fills = glb_tiles(layer, acc, *mapping)
    need = buffer_need_bytes(acc, "glb", tiles, fills)
    return plan.resident_bytes[k] + sum(v for x, v in need.items() if x not in plan.onchip[k])


# ---- cost ----------------------------------------------------------------------------------
@dataclass
class StackCost:
    """Cost of one stack: totals over its tiles, per-layer costs of one tile, and traffic."""

    stack: Stack
    names: list
    tiles: int
    cycles: int
    energy_pj: float
    energy_by_component: dict
    dram_words: dict          # "weights" and "activations" (inputs and outputs)
    macs: int                 # MACs computed, recomputed overlap included
    layer_macs: int           # MACs of the layers themselves
    peak_glb_bytes: float
    weights_onchip: bool
    layer_costs: list = field(default_factory=list)  # Cost per layer for one tile
    energy_by_space: dict = field(default_factory=dict)
    bound: str = ""           # the binding resource of the stack's slowest layer tile

    @property
    def recompute_macs(self) -> int:
        return self.macs - self.layer_macs

    def to_dict(self) -> dict:
        return {"layers": self.names, "first": self.stack.first, "last": self.stack.last,
                "tile": list(self.stack.tile) if self.stack.tile else None, "overlap": self.stack.overlap,
                "tiles": self.tiles, "cycles": self.cycles, "energy_pj": self.energy_pj,
                "energy_by_component": self.energy_by_component, "dram_words": self.dram_words,
                "macs": self.macs, "recompute_macs": self.recompute_macs,
                "peak_glb_bytes": self.peak_glb_bytes, "weights_onchip": self.weights_onchip,
                "energy_by_space": self.energy_by_space, "bound": self.bound}


def stack_cost(network: Network, plan: StackPlan, st: Stack, acc: Accelerator, mappings: list) -> StackCost:
    """Cost of stack ``st`` planned as ``plan`` with one mapping (temporal, spatial, order) per
    tile layer. Raises ``ValueError`` when the stack does not fit the global buffer."""
    costs: list[Cost] = []
    peak = 0.0
    for k, m in enumerate(mappings):
        need = stack_glb_bytes(acc, plan, k, m)
        peak = max(peak, need)
        c = evaluate_mapping(plan.tile_layers[k], acc, *m, onchip=plan.onchip[k],
                             dram_scale=plan.dram_scale[k] if plan.dram_scale else None)
        if not c.valid:
            raise ValueError(f"layer '{plan.tile_layers[k].name}': {c.reason}")
        costs.append(c)
    if peak > acc.glb.capacity_bytes and (plan.tiles > 1 or st.first != st.last):
        raise ValueError(f"the stack needs {peak:,.0f} B of global buffer, more than its {acc.glb.capacity_bytes:,} B")
    t = plan.tiles
    comp = {c: t * sum(x.energy_by_component.get(c, 0.0) for x in costs) for c in COMPONENTS}
    cycles = t * sum(x.cycles for x in costs)
    wdram = t * sum(x.accesses["dram"]["W"]["reads"] + x.accesses["dram"]["W"]["writes"] for x in costs)
    adram = t * sum(x.accesses["dram"][s][rw] for x in costs for s in "IO" for rw in ("reads", "writes"))
    if plan.weights_onchip:  # loaded once, before the first tile
        words = sum(network.layers[i].weight_elems for i in st.indices)
        wd, bw = transfer_weights(acc, "dram")
        cycles += math.ceil(words * wd["W"] / bw)
        f = acc.word_bits["W"] / 16
        comp_w_load = words * f * (acc.dram.energies("W")[0] + acc.glb.energies("W")[1])
        comp["dram"] += words * acc.dram.energies("W")[0] * f
        comp["glb"] += words * acc.glb.energies("W")[1] * f
        wdram += words
    by_space = {x: t * sum(c.energy_by_space.get(x, 0.0) for c in costs) for x in ("W", "I", "O")}
    if plan.weights_onchip:
        by_space["W"] += comp_w_load
    bound = max(costs, key=lambda c: c.cycles).bound
    return StackCost(st, [network.layers[i].name for i in st.indices], t, int(cycles), sum(comp.values()), comp,
                     {"weights": wdram, "activations": adram}, t * sum(x.macs for x in costs),
                     sum(network.layers[i].macs for i in st.indices), peak, plan.weights_onchip, costs, by_space,
                     bound)


def fused_aux_onchip(network: Network, fl: Flow, stacks: list[Stack]) -> set:
    """Names of the residual adds whose inputs both stay on chip under ``stacks``."""
    where = {}
    for st in stacks:
        for i in st.indices:
            where[i] = st
    out = set()
    for name, j in fl.fused_aux.items():
        st = where.get(j)
        if st is None or st.first == st.last:
            continue
        if all(s < j and _skip_held(fl, st, s) for s in fl.skips[j]):
            out.add(name)
    return out


def aux_onchip_cost(op: AuxOp, acc: Accelerator):
    """An element-wise operator whose operands stay in the global buffer: its element
    operations only (one per input element, spread over the PEs)."""
    return math.ceil(op.in_elems / acc.num_pes), {"mac": float(op.in_elems * acc.mac_energy_pj)}
