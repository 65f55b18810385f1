"""The cost of a schedule: a network cut into fused stacks of consecutive layers, each run tile
by tile (depth-first), the layer-by-layer schedule being the stacks of one layer.

A stack's tile is a block of output rows x columns of its last layer. It propagates back
through the stack (``stack_tiles``): with ``recompute`` every layer computes the whole region
its consumer's tile reads (strides, kernels and dilation widen it; overlapping regions of
neighbouring tiles are computed again); with ``cache`` every layer is cut into the same grid of
tiles and the overlap (the window's halo) is kept on chip, in line buffers across tile rows
and column buffers across tiles of a row, so no MAC is repeated.

A pooling operator between two convolutions (``Flow.pools``) is crossed like a convolution
window: the tile propagates back through its kernel, stride and padding (``FusedPool.window``,
a depthwise loop nest of the pool's geometry), its output tile is an on-chip intermediate, and
its element operations are counted per tile (overlapping windows again under ``recompute``).
A pool whose window is the whole map (global or adaptive to one position) cuts the stack.

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
data spaces that still come from or go to DRAM (``tile_layer_cost``). Tiles run one after the
other and the layers of a tile one after the other, so cycles add; loading resident weights
is not overlapped. Tiles smaller than a layer's map count their halo rows and columns as data
(interior tiles; the zero padding at the map's border is not discounted).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

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
class FusedPool:
    """A pooling operator between layers ``i-1`` and ``i`` that a stack may cross.

    ``window``: the pool's geometry as a depthwise loop nest (``G`` channels, ``N`` batch,
    ``K = C = 1``, ``P x Q`` output, ``R x S`` window, ``stride``, ``padding``), through which a
    tile propagates exactly as through a convolution; ``readers``: the layers that read the
    pool's output (``i``, the layers a fused residual add of which reads it, and the number of
    layers for a reader outside every stack)."""

    name: str
    op: AuxOp
    window: Layer
    readers: frozenset
    in_rows: int = 0   # the map it reads (the layer before's output)
    in_cols: int = 0

    def tile_input(self, t: Layer) -> tuple[int, int]:
        """Rows and columns of its input that window tile ``t`` reads: ``(rows - 1)·stride +
        kernel``, clipped to the map (the padding is generated on chip, not held)."""
        return min(t.H, self.in_rows), min(t.W_in, self.in_cols)

    def tile_input_elems(self, t: Layer) -> int:
        r, c = self.tile_input(t)
        return t.G * t.N * r * c


@dataclass(frozen=True)
class Flow:
    """The network's data flow between MAC layers, element-wise operators folded into the layer
    whose output they modify (a residual add is fused into the layer producing its first input).

    ``joins[i]``: layer ``i`` is a convolution that reads only convolutions' outputs before it,
    so it may share a stack with them (``links[i]``, see ``link``): exactly the (possibly
    added-to) output of layer ``i-1`` (a chain), or the output of a pool reading exactly that
    (``pools[i]``); the output of an earlier layer (a branch, e.g. a fire module's 3x3 expand
    layer reading the squeeze layer); or a concatenation of layers' outputs, possibly through a
    pool (``concats``), whose parts stay on chip. ``consumers[j]``: the layers that read layer
    ``j``'s output (a residual add counts as read by the layer it is fused into; a crossable
    pool or concatenation as read by the layer after it). ``skips[j]``: the tensors added to
    layer ``j``'s output, as layer indices (-1: the network input, -2: a non-element-wise
    operator's result); ``skip_pools[j]``, aligned with it: for a skip that is a crossable pool's
    output, the layer after that pool (else None). ``cuts[i]``: why a pool between layers ``i-1``
    and ``i`` cannot be crossed."""

    joins: tuple[bool, ...]
    consumers: tuple[frozenset, ...]
    skips: tuple[tuple[int, ...], ...]
    sources: tuple[tuple[int, ...], ...]  # the layers whose outputs each layer reads (-1, -2 as skips)
    fused_aux: dict = field(default_factory=dict)  # add name -> layer index it is fused into
    pools: tuple = ()       # per layer: the FusedPool between it and the layer before, or None
    skip_pools: tuple = ()  # per layer, aligned with skips: the layer after the pool a skip comes from
    cuts: dict = field(default_factory=dict)
    links: tuple = ()       # per joined layer: the layers whose outputs it reads on chip (() when not joined)
    concats: dict = field(default_factory=dict)  # crossable concatenation -> the layer reading it

    def link(self, i: int) -> tuple:
        """The layers whose outputs layer ``i`` reads inside a stack: ``(i - 1,)`` on a chain;
        an earlier layer for a branch; the parts of a concatenation."""
        return self.links[i] if self.links else ((i - 1,) if self.joins[i] else ())

    def chain(self, i: int) -> bool:
        """Layer ``i`` reads exactly layer ``i - 1``'s output (or a pool of it) and may follow it in a stack."""
        return self.joins[i] and self.link(i) == (i - 1,)

    def pool(self, i: int) -> Optional[FusedPool]:
        """The pool crossed between layers ``i-1`` and ``i`` (None: none)."""
        return self.pools[i] if self.pools else None

    def skip_pool(self, j: int, k: int) -> Optional[int]:
        """For the ``k``-th skip added at layer ``j``: the layer after the pool it is the output
        of, when it is a crossable pool's output (else None)."""
        return self.skip_pools[j][k] if self.skip_pools else None


# ---- pools ---------------------------------------------------------------------------------
POOL_KIND = "pool"
# Windows assumed, in this order, for a pool that does not carry its own (``kernel``, ``stride``,
# ``padding``, ``ceil_mode`` attributes): the first whose output size matches the operator's is
# taken. The most overlapping first (the costlier assumption when two fit, e.g. 2x2/2 and 3x3/2
# padded both halve an even map): 3x3/1 padded, 3x3/2 padded (ResNet), 3x3/2 unpadded (AlexNet,
# SqueezeNet's ceil mode), then non-overlapping k x k / k (VGG, U-Net).
_WINDOWS = ((3, 1, 1, False), (3, 2, 1, False), (3, 2, 0, True), (3, 2, 0, False)) + tuple(
    (k, k, 0, c) for k in range(2, 9) for c in (False, True))


def _pool_axis(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Output length of a pooling window along one axis (PyTorch semantics, ceil mode included)."""
    span = size + 2 * padding - kernel
    if span < 0 or stride < 1:
        return 0
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _given_window(op: AuxOp):
    """``(kh, kw, stride, padding, ceil_mode)`` when the operator carries its window, else None;
    a text when it carries one that cannot be modelled."""
    kernel = getattr(op, "kernel", None)
    if kernel is None:
        return None
    try:
        kh, kw = _pair(kernel)
        sh, sw = _pair(getattr(op, "stride", None) or (kh, kw))
        ph, pw = _pair(getattr(op, "padding", None) or 0)
    except (TypeError, ValueError):
        return f"its window {kernel!r} is not one or two kernel sizes"
    if sh != sw or ph != pw:
        return f"its stride {sh}x{sw} or padding {ph}x{pw} differs between rows and columns (not modelled)"
    return kh, kw, sh, ph, bool(getattr(op, "ceil_mode", False))


def pool_window(op: AuxOp, before: Layer, after: Layer):
    """The window of pooling operator ``op`` that reads layer ``before``'s output and feeds layer
    ``after``, as a depthwise loop nest (``FusedPool.window``), or a text saying why a tile
    cannot be propagated through it (a window over the whole map, sizes that do not fit).

    The window is the operator's own (attributes ``kernel``, ``stride``, ``padding``,
    ``ceil_mode``) when it carries one, else the first of ``_WINDOWS`` that turns the producer's
    map into the operator's output size and the consumer's input."""
    ch, n = before.G * before.K, before.N
    h_in, w_in = before.P, before.Q
    if op.in_elems != n * ch * h_in * w_in or op.out_elems % (n * ch):
        return f"its sizes ({op.in_elems:,} -> {op.out_elems:,} elements) are not a pool of '{before.name}''s map"
    out_area = op.out_elems // (n * ch)
    if out_area == 1:
        return "its window is the whole map (a global or adaptive pool): a tile cannot be propagated through it"

    def conv_out(size: int, k: int) -> int:
        return (size + 2 * after.padding - after.dilation * (k - 1) - 1) // after.stride + 1

    def fits(h: int, w: int) -> bool:
        return h * w == out_area and after.P == conv_out(h, after.R) and after.Q == conv_out(w, after.S)

    given = _given_window(op)
    if isinstance(given, str):
        return given
    if given is not None:
        kh, kw, s, p, ceil = given
        h, w = _pool_axis(h_in, kh, s, p, ceil), _pool_axis(w_in, kw, s, p, ceil)
        if not fits(h, w):
            return (f"its window ({kh}x{kw}, stride {s}, padding {p}) does not turn a {h_in}x{w_in} map into "
                    f"'{after.name}''s input")
    else:
        for k, s, p, ceil in _WINDOWS:
            h, w = _pool_axis(h_in, k, s, p, ceil), _pool_axis(w_in, k, s, p, ceil)
            if fits(h, w):
                kh = kw = k
                break
        else:
            return (f"no window of the usual kinds (3x3 with stride 1 or 2, k x k with stride k) turns a "
                    f"{h_in}x{w_in} map into {out_area:,} positions that '{after.name}' reads")
    return Layer(name=op.name, G=ch, N=n, K=1, C=1, P=h, Q=w, R=kh, S=kw, stride=s, padding=p, op="dwconv")


def flow(network: Network) -> Flow:
    """The flow of ``network`` (which needs graph edges; see ``Network.inputs``)."""
    if not network.inputs:
        raise WorkloadError(f"network '{network.name}' has no graph edges (the inputs of each layer), so only "
                            f"the layer-by-layer schedule applies; zoo networks and net.config files have them")
    index = {l.name: i for i, l in enumerate(network.layers)}
    kind = {a.name: a.kind for a in network.aux}
    aux = {a.name: a for a in network.aux}

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
    fused_aux, skip_at = {}, {}
    for a in network.aux:
        if a.kind == "add" and len(network.inputs[a.name]) == 2:
            j = producer(network.inputs[a.name][0])
            if j >= 0:
                s = producer(network.inputs[a.name][1])
                skip_at[a.name] = (j, len(skips[j]))
                skips[j].append(s)
                fused_aux[a.name] = j
                if s >= 0:
                    consumers[s].add(j)
    joins, sources = [], []
    pools, cuts = {}, {}
    for i, l in enumerate(network.layers):
        srcs = [producer(x) for x in network.inputs[l.name]]
        sources.append(tuple(srcs))
        for s in srcs:
            if s >= 0:
                consumers[s].add(i)
        prev = network.layers[i - 1] if i else None
        joins.append(bool(i) and srcs == [i - 1] and l.op in FUSABLE_OPS and prev.op in FUSABLE_OPS
                     and l.G * l.C == prev.G * prev.K and l.N == prev.N)
        if i and not joins[i] and srcs == [-2] and len(network.inputs[l.name]) == 1:
            # a pool between two convolutions: crossable when it reads exactly layer i-1's output
            # and its window can be propagated through
            node = _through(network, kind, network.inputs[l.name][0])
            op = aux.get(node)
            if (op is not None and op.kind == POOL_KIND and len(network.inputs[node]) == 1
                    and producer(network.inputs[node][0]) == i - 1 and l.op in FUSABLE_OPS
                    and prev.op in FUSABLE_OPS and l.G * l.C == prev.G * prev.K and l.N == prev.N):
                w = pool_window(op, prev, l)
                if isinstance(w, Layer):
                    joins[i] = True
                    pools[i] = (op, w)
                else:
                    cuts[i] = f"the pool '{op.name}' between them cannot be crossed: {w}"
    links = [(i - 1,) if joins[i] else () for i in range(n)]
    concats = {}
    for i, l in enumerate(network.layers):
        if joins[i] or not i or l.op not in FUSABLE_OPS or len(network.inputs[l.name]) != 1:
            continue
        srcs = sources[i]
        if len(srcs) == 1 and 0 <= srcs[0] < i - 1:  # a branch: an earlier layer's output
            prev = network.layers[srcs[0]]
            if prev.op in FUSABLE_OPS and l.G * l.C == prev.G * prev.K and l.N == prev.N:
                joins[i], links[i] = True, srcs
            continue
        if srcs != (-2,):
            continue
        got = _concat_link(network, kind, aux, producer, i)
        if isinstance(got, str):
            cuts[i] = got
        elif got is not None:
            parts, cat, pool = got
            joins[i], links[i] = True, parts
            concats[cat.name] = i
            if pool is not None:
                pools[i] = pool
    crossed = {v[0].name: i for i, v in pools.items()}
    readers = {name: {i} for name, i in crossed.items()}
    skip_pools = [[None] * len(s) for s in skips]
    # a layer read by a non-element-wise operator (pool, concat, ...) is also read off chip; a
    # crossable pool's input is read by the layer after the pool
    for a in network.aux:
        if a.name not in fused_aux and a.kind not in ELEMENTWISE:
            for x in network.inputs[a.name]:
                j = producer(x)
                if j >= 0:
                    # n: "a reader outside every stack"
                    consumers[j].add(crossed[a.name] if a.name in crossed else concats.get(a.name, n))
    # who reads a crossable pool's output (besides the layer after it)
    if crossed:
        for l in network.layers:
            for x in network.inputs[l.name]:
                node = _through(network, kind, x)
                if node in crossed:
                    readers[node].add(index[l.name])
        for a in network.aux:
            if kind[a.name] in ELEMENTWISE and len(network.inputs[a.name]) == 1:
                continue  # transparent: its readers are found through it
            for k, x in enumerate(network.inputs[a.name]):
                node = _through(network, kind, x)
                if node not in crossed:
                    continue
                if a.name in fused_aux and k == 1:  # the skip of a residual add fused into layer j
                    j, pos = skip_at[a.name]
                    readers[node].add(j)
                    skip_pools[j][pos] = crossed[node]
                else:
                    readers[node].add(n)
    pool_list = tuple(FusedPool(op.name, op, w, frozenset(readers[op.name]), network.layers[i - 1].P,
                                network.layers[i - 1].Q) if i in pools else None
                      for i in range(n) for op, w in [pools.get(i, (None, None))])
    return Flow(tuple(joins), tuple(frozenset(c) for c in consumers), tuple(tuple(s) for s in skips),
                tuple(sources), fused_aux, pool_list if pools else (),
                tuple(tuple(s) for s in skip_pools) if pools else (), cuts, tuple(links), concats)


def _readers(network: Network, kind: dict, node: str) -> list:
    """The layers and operators that read ``node``'s result (through single-input element-wise
    operators)."""
    out = []
    for x, ins in network.inputs.items():
        if node in ins:
            out += _readers(network, kind, x) if kind.get(x) in ELEMENTWISE and len(ins) == 1 else [x]
    return out


def _concat_link(network: Network, kind: dict, aux: dict, producer, i: int):
    """For layer ``i`` reading a concatenation of layers' outputs (directly or through one
    pool): ``(parts, the concatenation, (pool, window) or None)`` when a stack may hold the parts
    on chip; None when it reads no concatenation; a text saying why one cannot be crossed."""
    l = network.layers[i]
    node = _through(network, kind, network.inputs[l.name][0])
    op, pool = aux.get(node), None
    if op is not None and op.kind == POOL_KIND and len(network.inputs[node]) == 1:
        pool, node = op, _through(network, kind, network.inputs[node][0])
        op = aux.get(node)
    if op is None or op.kind != "concat":
        return None
    parts = tuple(producer(x) for x in network.inputs[node])
    what = f"the concatenation '{op.name}'"
    if len(parts) < 2 or min(parts) < 0 or len(set(parts)) != len(parts) or max(parts) >= i:
        return f"{what} has an input that is not an earlier convolution's output"
    ls = [network.layers[j] for j in parts]
    if any(x.op not in FUSABLE_OPS or x.N != l.N or (x.P, x.Q) != (ls[0].P, ls[0].Q) for x in ls):
        return f"{what} joins maps of different sizes or layers that are not convolutions"
    channels = sum(x.G * x.K for x in ls)
    elems = sum(x.output_elems for x in ls)
    if op.in_elems != elems or op.out_elems != elems or channels != l.G * l.C:
        return f"{what}'s sizes are not those of its parts (a crop or a reshape: not modelled)"
    if len(_readers(network, kind, node)) != 1 or (pool is not None and len(_readers(network, kind, pool.name)) != 1):
        return f"{what} is read by more than one operator"
    if pool is None:
        h, w = ls[0].P, ls[0].Q
        rows = (h + 2 * l.padding - l.dilation * (l.R - 1) - 1) // l.stride + 1
        cols = (w + 2 * l.padding - l.dilation * (l.S - 1) - 1) // l.stride + 1
        if (rows, cols) != (l.P, l.Q):
            return f"{what}'s {h}x{w} map is not '{l.name}''s input"
        return parts, op, None
    window = pool_window(pool, replace(ls[-1], G=1, K=channels, name=op.name), l)
    if isinstance(window, str):
        return f"the pool '{pool.name}' between them cannot be crossed: {window}"
    return parts, op, (pool, window)


def _through(network: Network, kind: dict, node: str) -> str:
    """The node whose result ``node`` is, through single-input element-wise operators."""
    for _ in range(len(kind) + 1):
        if kind.get(node) in ELEMENTWISE and len(network.inputs[node]) == 1:
            node = network.inputs[node][0]
        else:
            break
    return node


def _skip_held(fl: Flow, st: Stack, s: int) -> bool:
    """Whether the skip tensor of layer ``s`` stays on chip in stack ``st``: produced inside it,
    or the stack's own input."""
    return st.first <= s or (s >= 0 and fl.sources[st.first] == (s,))


def stack_problem(network: Network, fl: Flow, a: int, b: int) -> str:
    """Why layers ``a..b`` cannot form a stack ('' when they can). A stack that cannot also
    makes every longer one from ``a`` invalid."""
    names = network.layers
    for i in range(a + 1, b + 1):
        if not fl.joins[i]:
            why = fl.cuts.get(i) or ("the second does not read only earlier convolutions' outputs (or a pool of "
                                     "one), or one is not a convolution")
            return f"layers '{names[i - 1].name}' and '{names[i].name}' cannot share a stack: {why}"
        if min(fl.link(i)) < a:
            return (f"layer '{names[i].name}' reads '{names[min(fl.link(i))].name}', before the stack's first layer "
                    f"'{names[a].name}'")
        for s in fl.skips[i - 1]:
            if i <= s <= b:  # the add would need a tensor the stack computes after it
                return (f"layer '{names[i - 1].name}''s residual add reads '{names[s].name}', which comes after it "
                        f"in the stack")
    return ""


def check_stack(network: Network, fl: Flow, st: Stack) -> None:
    """Raise ``WorkloadError`` unless ``st`` is a valid stack of ``network``."""
    n = len(network.layers)
    if not 0 <= st.first <= st.last < n:
        raise WorkloadError(f"stack {st.first}..{st.last}: layer indices must lie in 0..{n - 1}")
    if st.overlap not in OVERLAP:
        raise WorkloadError(f"stack {st.first}..{st.last}: overlap must be one of {', '.join(OVERLAP)}")
    why = stack_problem(network, fl, st.first, st.last)
    if why:
        raise WorkloadError(why)
    if st.tile is not None and (len(st.tile) != 2 or min(st.tile) < 1):
        raise WorkloadError(f"stack {st.first}..{st.last}: a tile is two positive numbers (rows, cols), "
                            f"got {st.tile}")


# ---- tiles ---------------------------------------------------------------------------------
def _tile_layer(l: Layer, rows: int, cols: int) -> Layer:
    rows, cols = min(rows, l.P), min(cols, l.Q)
    if (rows, cols) == (l.P, l.Q):
        return l
    return replace(l, P=rows, Q=cols, padding=0)


def stack_tiles(layers: list[Layer], tile: tuple[int, int] | None, overlap: str = "recompute",
                pools: list | None = None) -> tuple[int, list[Layer]]:
    """``(tiles, tile layers)``: how many tiles the stack runs and the loop nest each of its
    layers runs per tile (the layer itself when there is one tile). ``pools[k]``: the window of
    a pool between ``layers[k-1]`` and ``layers[k]`` (``FusedPool.window``; None: none)."""
    tiles, tl, _ = stack_tile_windows(layers, tile, overlap, pools)
    return tiles, tl


def stack_tile_windows(layers: list[Layer], tile: tuple[int, int] | None, overlap: str = "recompute",
                       pools: list | None = None, links: list | None = None) -> tuple[int, list[Layer], list]:
    """``(tiles, tile layers, tile pools)``: ``stack_tiles`` and, aligned with the layers, the
    window each crossed pool runs per tile (its ``P x Q`` the pool's output tile, its
    ``H x W_in`` the input rows and columns the tile reads: ``(rows - 1)·stride + kernel``, of
    which ``FusedPool.tile_input`` keeps those inside the map).

    ``links[k]``: the positions in the stack of the layers the ``k``-th reads (default: a chain,
    ``(k - 1,)``). Under ``recompute`` a layer computes the union of what its readers in the
    stack need; one that no later layer of the stack reads computes its share of the tile grid."""
    pools = list(pools) if pools else [None] * len(layers)
    if links is not None:
        return _tile_windows_linked(layers, tile, overlap, pools, links)
    last = layers[-1]
    tp, tq = (last.P, last.Q) if tile is None else (min(tile[0], last.P), min(tile[1], last.Q))
    n_r, n_c = -(-last.P // tp), -(-last.Q // tq)
    if n_r * n_c == 1:
        return 1, list(layers), pools
    if overlap == "cache":
        return (n_r * n_c, [_tile_layer(l, -(-l.P // n_r), -(-l.Q // n_c)) for l in layers],
                [None if w is None else _tile_layer(w, -(-w.P // n_r), -(-w.Q // n_c)) for w in pools])
    out, pout, rows, cols = [], [], tp, tq
    for l, w in zip(reversed(layers), reversed(pools)):
        t = _tile_layer(l, rows, cols)
        out.append(t)
        rows = (t.P - 1) * l.stride + (l.R - 1) * l.dilation + 1
        cols = (t.Q - 1) * l.stride + (l.S - 1) * l.dilation + 1
        if w is not None:  # through the pool's window, like a convolution's
            t = _tile_layer(w, rows, cols)
            rows, cols = t.H, t.W_in
        pout.append(None if w is None else t)
    return n_r * n_c, out[::-1], pout[::-1]


def _tile_windows_linked(layers, tile, overlap, pools, links):
    last = layers[-1]
    tp, tq = (last.P, last.Q) if tile is None else (min(tile[0], last.P), min(tile[1], last.Q))
    n_r, n_c = -(-last.P // tp), -(-last.Q // tq)
    if n_r * n_c == 1 or overlap == "cache":
        return stack_tile_windows(layers, tile, overlap, pools)
    need: dict = {len(layers) - 1: (tp, tq)}
    out, pout = [None] * len(layers), [None] * len(layers)
    for k in range(len(layers) - 1, -1, -1):
        l, w = layers[k], pools[k]
        rows, cols = need.get(k, (-(-l.P // n_r), -(-l.Q // n_c)))
        t = out[k] = _tile_layer(l, rows, cols)
        rows = (t.P - 1) * l.stride + (l.R - 1) * l.dilation + 1
        cols = (t.Q - 1) * l.stride + (l.S - 1) * l.dilation + 1
        if w is not None:
            t = pout[k] = _tile_layer(w, rows, cols)
            rows, cols = t.H, t.W_in
        for j in links[k]:
            if j >= 0:
                r0, c0 = need.get(j, (0, 0))
                need[j] = (max(r0, rows), max(c0, cols))
    return n_r * n_c, out, pout


def stack_links(fl: Flow, st: Stack) -> list | None:
    """``links`` of ``stack_tile_windows`` for stack ``st`` (None for a chain)."""
    if all(fl.chain(i) for i in range(st.first + 1, st.last + 1)):
        return None
    return [()] + [tuple(j - st.first for j in fl.link(i)) for i in range(st.first + 1, st.last + 1)]


def stack_windows(network: Network, fl: Flow, st: Stack) -> tuple[list, list, int, list, list]:
    """``(layers, pools, tiles, tile layers, tile pools)`` of stack ``st``: its layers, the pools
    it crosses (``FusedPool`` before the ``k``-th layer, else None) and ``stack_tile_windows``."""
    layers = [network.layers[i] for i in st.indices]
    pools = [fl.pool(i) if i > st.first else None for i in st.indices]
    tiles, tl, tp = stack_tile_windows(layers, st.tile, st.overlap,
                                       [p.window if p else None for p in pools] if any(pools) else None,
                                       stack_links(fl, st))
    return layers, pools, tiles, tl, tp


def pool_tile_ops(pool: FusedPool, t: Layer, tiles: int, overlap: str) -> int:
    """Element operations a crossed pool computes per tile (one per input element read, as the
    model counts a pool: ``AuxOp.in_elems`` for one tile): under ``recompute`` the whole input
    region of the tile, overlapping windows of neighbouring tiles again; under ``cache`` the
    rows and columns new to the tile (``stride`` per output row or column; the halo comes from
    the cache)."""
    window = pool.window
    if tiles == 1:
        return pool.op.in_elems
    rows, cols = pool.tile_input(t)
    if overlap == "recompute":
        return t.G * t.N * rows * cols
    rows = min(rows, t.P * window.stride) if t.P < window.P else rows
    cols = min(cols, t.Q * window.stride) if t.Q < window.Q else cols
    return t.G * t.N * rows * cols


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
    holds for the stack while that layer runs, besides the mapping's own tiles. For a pool
    crossed before the ``k``-th layer: ``pools[k]`` (``FusedPool``), ``pool_tiles[k]`` its
    window per tile and ``pool_bytes[k]`` what the global buffer holds while it runs (its
    input and output tiles among the rest); None elsewhere."""

    tiles: int
    tile_layers: list
    onchip: list
    resident_bytes: list
    weights_onchip: bool
    weight_bytes: float
    dram_scale: list = field(default_factory=list)  # per layer: evaluate_mapping's dram_scale
    pools: list = field(default_factory=list)
    pool_tiles: list = field(default_factory=list)
    pool_bytes: list = field(default_factory=list)


def plan_stack(network: Network, fl: Flow, st: Stack, acc: Accelerator, weights_onchip: bool) -> StackPlan:
    """Tiles and residency of stack ``st`` (weights kept on chip when ``weights_onchip``)."""
    a, b = st.first, st.last
    layers, pools, tiles, tl, tp = stack_windows(network, fl, st)
    crossed = any(pools)
    links = stack_links(fl, st)
    weights_onchip = weights_onchip and tiles > 1 and acc.glb.holds("W")
    weight_bytes = sum(l.weight_elems for l in layers) * acc.word_bits["W"] / 8
    fixed = weight_bytes if weights_onchip else 0.0
    if st.overlap == "cache" and tiles > 1:
        fixed += sum(_cache_bytes(acc, l, t) for l, t in zip(layers, tl))
        if crossed:
            fixed += sum(_cache_bytes(acc, p.window, t) for p, t in zip(pools, tp) if p)
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
        if crossed:
            held += _pool_skips_held(fl, st, tl, acc, i)
        if links is not None:
            held += _act_bytes(acc, live_elems(links, tl, k, k + 1))
        onchip.append(frozenset(x for x in spaces if acc.glb.holds(x)))
        resident.append(fixed + held if tiles > 1 or len(layers) > 1 else 0.0)
    pool_bytes = [None] * len(layers)
    for k, (p, t) in enumerate(zip(pools, tp)):
        if p is None:
            continue
        i = a + k  # the pool runs between layers i-1 and i: its input and output tiles, and the skips held
        held = _act_bytes(acc, p.tile_input_elems(t) + t.output_elems)
        for j in range(i, b + 1):
            for s in fl.skips[j]:
                if s < i and _skip_held(fl, st, s):
                    held += _act_bytes(acc, tl[j - a].output_elems)
        if links is not None:
            held += _act_bytes(acc, live_elems(links, tl, k, k))
        pool_bytes[k] = fixed + held + _pool_skips_held(fl, st, tl, acc, i, before=True)
    scale = [None] * len(layers)
    if st.overlap == "cache" and tiles > 1:
        # the first layer reads each input row from DRAM once; the halo rows a tile shares with the
        # previous ones come from the cache
        whole = compulsory_words(layers[0], acc.stores_padding)["I"]
        per_tile = compulsory_words(tl[0], acc.stores_padding)["I"]
        scale[0] = {"I": min(1.0, whole / (tiles * per_tile))}
    if not crossed:
        return StackPlan(tiles, tl, onchip, resident, weights_onchip, weight_bytes, scale)
    return StackPlan(tiles, tl, onchip, resident, weights_onchip, weight_bytes, scale, pools, tp, pool_bytes)


def live_elems(links: list, tl: list, k: int, after: int) -> int:
    """Elements of the output tiles of layers before the ``k``-th of a stack that a layer from
    position ``after`` on reads and that the ``k``-th does not read whole: a branch's input, or
    a concatenation's first part, held while the other branch runs."""
    out = 0
    for j in range(k):
        if not any(j in links[c] for c in range(after, len(links))):
            continue
        if j not in links[k]:
            out += tl[j].output_elems
        elif len(links[k]) == 1:  # the k-th reads a window of it; the whole tile waits for the later reader
            out += max(0, tl[j].output_elems - tl[k].input_elems)
    return out


def _pool_skips_held(fl: Flow, st: Stack, tl: list, acc: Accelerator, i: int, before: bool = False) -> float:
    """Bytes of the skip tiles that are outputs of pools crossed in stack ``st`` and are held
    while layer ``i`` runs (``before``: while the pool before layer ``i`` runs): pools before it
    in the stack whose add comes at or after it."""
    out = 0.0
    for j in range(i, st.last + 1):
        for k in range(len(fl.skips[j])):
            p = fl.skip_pool(j, k)
            if p is not None and st.first < p and (p < i if before else p <= i):
                out += _act_bytes(acc, tl[j - st.first].output_elems)
    return out


def tile_layer_cost(acc: Accelerator, plan: StackPlan, k: int, mapping) -> tuple:
    """``(Cost, own global-buffer bytes)`` of the ``k``-th tile layer of a planned stack under
    ``mapping``: the own bytes are the mapping's global-buffer tiles of the data spaces that are
    not resident (the layer needs ``plan.resident_bytes[k]`` more). A function of the tile layer,
    its on-chip data spaces and DRAM scale only."""
    layer, onchip = plan.tile_layers[k], plan.onchip[k]
    c = evaluate_mapping(layer, acc, *mapping, onchip=onchip,
                         dram_scale=plan.dram_scale[k] if plan.dram_scale else None)
    tiles, fills = glb_tiles(layer, acc, *mapping)
    need = buffer_need_bytes(acc, "glb", tiles, fills)
    return c, sum(v for x, v in need.items() if x not in onchip)


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
    pools: list = field(default_factory=list)  # the pools crossed (``pool_summary``)

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
                "energy_by_space": self.energy_by_space, "bound": self.bound,
                **({"pools": self.pools} if self.pools else {})}


def stack_cost(network: Network, plan: StackPlan, st: Stack, acc: Accelerator, mappings: list,
               layer_costs: list | None = None) -> StackCost:
    """Cost of stack ``st`` planned as ``plan`` with one mapping (temporal, spatial, order) per
    tile layer. Raises ``ValueError`` when the stack does not fit the global buffer.
    ``layer_costs``: per tile layer, ``(Cost, global-buffer bytes of the mapping's own tiles of
    the data spaces not on chip)`` when the caller has them (``tile_layer_cost``)."""
    costs: list[Cost] = []
    peak = 0.0
    for k, m in enumerate(mappings):
        c, own = layer_costs[k] if layer_costs else tile_layer_cost(acc, plan, k, m)
        peak = max(peak, plan.resident_bytes[k] + own)
        if not c.valid:
            raise ValueError(f"layer '{plan.tile_layers[k].name}': {c.reason}")
        costs.append(c)
    for nbytes in plan.pool_bytes:
        if nbytes is not None:
            peak = max(peak, nbytes)
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
                     bound, pool_summary(plan, st))


def pool_summary(plan: StackPlan, st: Stack) -> list:
    """One entry per pool crossed in a planned stack: its output tile, the element operations
    it computes per tile and in all (``ops``; ``layer_ops`` for the whole map once: the excess is
    recomputed overlap), and the words of its output written to DRAM because a reader outside
    the stack needs it."""
    out = []
    for p, t in zip(plan.pools, plan.pool_tiles):
        if p is None:
            continue
        per_tile = pool_tile_ops(p, t, plan.tiles, st.overlap)
        outside = any(r not in st.indices for r in p.readers)
        out.append({"name": p.name, "tile": [t.P, t.Q], "ops_per_tile": per_tile, "ops": plan.tiles * per_tile,
                    "layer_ops": p.op.in_elems, "output_dram_words": p.op.out_elems if outside else 0})
    return out


def fused_aux_onchip(network: Network, fl: Flow, stacks: list[Stack]) -> set:
    """Names of the residual adds whose inputs both stay on chip under ``stacks``, and of the
    concatenations whose parts and reader share a stack."""
    where = {}
    for st in stacks:
        for i in st.indices:
            where[i] = st
    out = set()
    for name, j in fl.fused_aux.items():
        st = where.get(j)
        if st is None or st.first == st.last:
            continue
        if all((st.first < p <= j) if (p := fl.skip_pool(j, k)) is not None else (s < j and _skip_held(fl, st, s))
               for k, s in enumerate(fl.skips[j])):
            out.add(name)
    for name, i in fl.concats.items():
        st = where.get(i)
        if st is not None and st.first <= min(fl.link(i)):
            out.add(name)
    return out


def aux_onchip_cost(op: AuxOp, acc: Accelerator):
    """An element-wise operator whose operands stay in the global buffer: its element
    operations only (one per input element, spread over the PEs). A concatenation held on chip
    costs nothing: its parts are written side by side in the buffer and read as one tensor."""
    if op.kind == "concat":
        return 0, {"mac": 0.0}
    return math.ceil(op.in_elems / acc.num_pes), {"mac": float(op.in_elems * acc.mac_energy_pj)}


def pool_onchip_cost(op: AuxOp, summary: dict, tiles: int, acc: Accelerator):
    """A pool crossed in a stack: ``aux_onchip_cost`` of each tile's element operations
    (``pool_summary``), tile after tile; plus, when a reader outside the stack needs its output,
    that output written to DRAM (at the DRAM roof when it binds)."""
    cyc, energy = aux_onchip_cost(replace(op, in_elems=summary["ops_per_tile"]), acc)
    cycles, energy = tiles * cyc, {"mac": tiles * energy["mac"]}
    words = summary["output_dram_words"]
    if words:
        w, bw = transfer_weights(acc, "dram")
        cycles = max(cycles, math.ceil(words * w["I"] / bw))
        energy["dram"] = float(words * acc.dram.write_energy_pj)
    return int(cycles), energy
