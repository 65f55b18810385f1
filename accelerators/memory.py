"""Activation memory of a network on a microcontroller-class target: the peak SRAM its
activations take under a schedule (layer by layer, or patch-based: fused stacks run tile by
tile), and the Flash its weights take.

Accounting (as MCUNet / MCUNetV2 report it, int8 by default):

- Layer by layer, while a layer runs its input and output tensors are live, and so is every
  tensor produced earlier and read later (a residual block's input held for its add). In place
  (TinyEngine, ``inplace``): a depthwise layer's output overwrites its input when nothing else
  reads that input later, so it takes ``max(input, output)``; a layer with a fused residual add
  accumulates into the skip tensor's buffer when the add is that tensor's last use.
- A tiled stack (patch-based inference) holds its whole output (filled patch by patch) and the
  tensors held across it; its input is read patch by patch when it is the network's input (from
  the sensor or Flash), else held whole. Per patch, the largest ``input tile + output tile`` of
  its layers and of the pools it crosses (``stack_tile_windows``: the receptive field of the
  patch through kernels, strides and pooling windows, overlap recomputed), plus the cached halo
  with ``cache`` overlap and the skip tiles held inside it. A crossed pool's output that a layer
  after the stack also reads (a residual block's input) is held whole as well.
- Weights live in Flash: every parameter at ``weight_bits``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from models.errors import WorkloadError
from models.network import Network

from .schedule import Flow, Stack, cache_elems, flow, live_elems, stack_links, stack_problem, stack_windows

ACT_BITS = 8
WEIGHT_BITS = 8


@dataclass
class MemoryProfile:
    network: str
    rows: list                # per layer or tiled stack: {"name", "bytes", "tiles"}
    peak_bytes: int
    peak_at: str
    flash_bytes: int
    act_bits: int = ACT_BITS
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"network": self.network, "peak_bytes": self.peak_bytes, "peak_kb": self.peak_bytes / 1024,
                "peak_at": self.peak_at, "flash_bytes": self.flash_bytes, "flash_kb": self.flash_bytes / 1024,
                "act_bits": self.act_bits, "rows": self.rows, "notes": self.notes}


def _input_elems(l) -> int:
    """Elements of a layer's input without its zero padding."""
    h = max(1, l.H - 2 * l.padding)
    w = max(1, l.W_in - 2 * l.padding)
    return l.G * l.N * l.C * h * w


def _chain_flow(network: Network) -> Flow:
    n = len(network.layers)
    return Flow(tuple(i > 0 for i in range(n)), tuple(frozenset({i + 1}) if i + 1 < n else frozenset() for i in range(n)),
                tuple(() for _ in range(n)), tuple(((i - 1),) for i in range(n)))


def memory_profile(network: Network, stacks: list[Stack] | None = None, act_bits: int = ACT_BITS,
                   weight_bits: int = WEIGHT_BITS, inplace: bool = True) -> MemoryProfile:
    """Peak activation SRAM of ``network`` under ``stacks`` (layer by layer by default)."""
    notes = []
    if network.inputs:
        fl = flow(network)
    else:
        fl = _chain_flow(network)
        notes.append("no graph edges: each layer is taken to read the previous one's output, no skips")
    n = len(network.layers)
    size = {j: network.layers[j].output_elems for j in range(n)}
    first = network.layers[0]
    size[-1] = (first.G * first.N * first.C * network.resolution ** 2 if network.resolution and first.op != "fc"
                else _input_elems(first))
    last_use = {}
    for j in range(n):
        users = [c for c in fl.consumers[j] if c < n]
        last_use[j] = max(users + [j + 1]) if users or n in fl.consumers[j] else j
    last_use[-1] = max([i for i in range(n) if -1 in fl.sources[i]] + [0])
    stacks = stacks or [Stack(i, i) for i in range(n)]
    b = act_bits / 8

    def held_across(lo: int, hi: int, skip=()) -> float:
        """Elements produced before layer ``lo`` and read at or after layer ``hi``, except ``skip``."""
        return sum(size[t] for t in size if t < lo and t not in skip and last_use[t] >= hi and t >= -1
                   and (t >= 0 or last_use[-1] >= hi))

    rows, peak, peak_at = [], -1.0, ""
    for st in stacks:
        layers, pools, tiles, tl, tp = stack_windows(network, fl, st)
        if tiles == 1 and st.first == st.last:
            i, l = st.first, layers[0]
            srcs = [s for s in fl.sources[i] if s in size]
            # an operator's result (a pool's, a concatenation's) is this layer's own input
            ins = sum(size[s] for s in set(srcs)) + (_input_elems(l) if -2 in fl.sources[i] or not srcs else 0)
            out = size[i]
            if inplace and l.op == "dwconv" and all(last_use[s] <= i for s in srcs):
                act = max(ins, out)
            else:
                act = ins + out
            elems = act + held_across(i, i, skip=srcs)
            if inplace and any(s >= -1 and s not in srcs and last_use[s] == i and size[s] == out
                               for s in fl.skips[i]):
                elems -= out  # the output accumulates into the skip's buffer
            name = l.name
        else:
            a, z = st.first, st.last
            links = stack_links(fl, st)
            src = fl.sources[a][0] if fl.sources[a] else a - 1
            # outputs read after the stack are filled whole, patch by patch: the last layer's and any
            # other a later layer reads (a branch's input, a residual block's input)
            outs = [j for j in st.indices if j == z or max(fl.consumers[j], default=j) > z]
            whole = sum(size[j] for j in outs) + held_across(a, a, skip=(src,))
            if src >= 0 or last_use[-1] > a:
                whole += size[src]  # a stack input that is not the network input is held whole
            # per patch: the largest input + output tile of a layer or of a pool it crosses, with
            # branches also the earlier tiles a later layer of the stack still reads
            if links is None:
                moments = [t.input_elems * (k > 0) + t.output_elems * (k < len(tl) - 1)
                           + (t.input_elems if k == 0 and src == -1 else 0) for k, t in enumerate(tl)]
                moments += [p.tile_input_elems(t) + t.output_elems for p, t in zip(pools, tp) if p]
            else:
                read_in = [any(k in links[c] for c in range(k + 1, len(tl))) and a + k not in outs
                           for k in range(len(tl))]
                moments = [t.input_elems * (k > 0 or src == -1) + t.output_elems * read_in[k]
                           + live_elems(links, tl, k, k + 1) for k, t in enumerate(tl)]
                moments += [p.tile_input_elems(t) + t.output_elems + live_elems(links, tl, k, k)
                            for k, (p, t) in enumerate(zip(pools, tp)) if p]
            per_tile = max(moments)
            # skip tiles held (a crossed pool's output when it is a skip added in the stack)
            per_tile += sum(t.output_elems for j in st.indices for s in fl.skips[j] if a <= s < j
                            for t in [tl[j - a]])
            per_tile += sum(tl[j - a].output_elems for j in st.indices for k in range(len(fl.skips[j]))
                            if a < (fl.skip_pool(j, k) or -1) <= j)
            if st.overlap == "cache" and tiles > 1:
                per_tile += sum(cache_elems(l, t) for l, t in zip(layers, tl))
                per_tile += sum(cache_elems(p.window, t) for p, t in zip(pools, tp) if p)
            # a crossed pool's output that a layer after the stack reads is held whole
            whole += sum(p.op.out_elems for p in pools if p and any(r > z for r in p.readers))
            elems = whole + per_tile
            name = f"{layers[0].name} .. {layers[-1].name} ({len(layers)} layers, {tiles} patches)"
        nbytes = int(math.ceil(elems * b))
        rows.append({"name": name, "bytes": nbytes, "tiles": tiles})
        if nbytes > peak:
            peak, peak_at = nbytes, name
    flash = int(math.ceil(network.params * weight_bits / 8))
    return MemoryProfile(network.name, rows, int(peak), peak_at, flash, act_bits, notes)


def patch_stacks(network: Network, layers: int, patches: int, overlap: str = "recompute") -> list[Stack]:
    """The first ``layers`` layers fused and run in ``patches x patches`` patches (MCUNetV2's
    patch-based stage; fewer when a layer before cannot join the stage), the rest layer by layer."""
    fl = flow(network)
    k = 1
    while k < layers and k < len(network.layers) and not stack_problem(network, fl, 0, k):
        k += 1
    last = network.layers[k - 1]
    tile = (-(-last.P // patches), -(-last.Q // patches))
    return [Stack(0, k - 1, tile, overlap)] + [Stack(i, i) for i in range(k, len(network.layers))]


def best_patch_stage(network: Network, patches: int, act_bits: int = ACT_BITS,
                     inplace: bool = True) -> tuple[int, MemoryProfile]:
    """``(layers, profile)``: the patch-based stage (the first ``layers`` layers in ``patches x
    patches`` patches) with the least peak memory, ties to the shorter stage."""
    fl = flow(network)
    best = None
    k = 1
    while k <= len(network.layers) and (k == 1 or not stack_problem(network, fl, 0, k - 1)):
        prof = memory_profile(network, patch_stacks(network, k, patches), act_bits, inplace=inplace)
        if best is None or prof.peak_bytes < best[1].peak_bytes:
            best = (k, prof)
        k += 1
    return best


SRAM_SCHEDULES = ("layer", "patch")
DEFAULT_PATCHES = 4  # MCUNetV2's patch-based stage: 4 x 4 patches


@dataclass(frozen=True)
class PeakMemory:
    """What a network needs of a microcontroller: peak activation SRAM under a schedule and
    weight Flash (bytes), and the length of the patch-based stage (0: layer by layer)."""

    peak_sram_bytes: int
    flash_bytes: int
    schedule: str
    patch_layers: int = 0
    peak_at: str = ""

    def to_dict(self) -> dict:
        return {"peak_sram_bytes": self.peak_sram_bytes, "peak_sram_kb": self.peak_sram_bytes / 1024,
                "flash_bytes": self.flash_bytes, "flash_kb": self.flash_bytes / 1024, "schedule": self.schedule,
                "patch_layers": self.patch_layers, "peak_at": self.peak_at}


def peak_memory(network: Network, schedule: str = "layer", patches: int = DEFAULT_PATCHES,
                act_bits: int = ACT_BITS, weight_bits: int = WEIGHT_BITS) -> PeakMemory:
    """Peak activation SRAM and weight Flash of ``network``. ``schedule="layer"``: layer by layer;
    ``"patch"``: the better of layer by layer and the best patch-based first stage in ``patches x
    patches`` patches (the stage ``best_patch_stage`` finds; needs the network's graph edges).

    The patch-based peak of a stage of ``k`` layers is the larger of the stage's own row and the
    layer-by-layer rows of the layers after it (a layer's row does not depend on the other
    stacks), so each candidate stage costs one row, and a stage that cannot beat the best so far
    (the rows after it already reach it) is skipped."""

    if schedule not in SRAM_SCHEDULES:
        raise WorkloadError(f"unknown SRAM schedule '{schedule}' (known: {', '.join(SRAM_SCHEDULES)})")
    lbl = memory_profile(network, act_bits=act_bits, weight_bits=weight_bits)
    best = PeakMemory(lbl.peak_bytes, lbl.flash_bytes, schedule, 0, lbl.peak_at)
    if schedule != "patch":
        return best
    if not network.inputs:
        raise WorkloadError(f"network '{network.name}' has no graph edges: patch-based inference needs them")
    n = len(lbl.rows)
    # rest[k]: the row (index) with the most bytes among layers k.. (the first of equals); n: none
    rest = [n] * (n + 1)
    for i in range(n - 1, -1, -1):
        rest[i] = i if rest[i + 1] == n or lbl.rows[i]["bytes"] >= lbl.rows[rest[i + 1]]["bytes"] else rest[i + 1]
    fl = flow(network)
    k = 1
    while k <= n and (k == 1 or not stack_problem(network, fl, 0, k - 1)):
        tail = lbl.rows[rest[k]] if rest[k] < n else {"name": "", "bytes": 0}
        if tail["bytes"] < best.peak_sram_bytes:
            last = network.layers[k - 1]
            stage = Stack(0, k - 1, (-(-last.P // patches), -(-last.Q // patches)), "recompute")
            row = memory_profile(network, [stage], act_bits, weight_bits).rows[0]
            top = row if row["bytes"] >= tail["bytes"] else tail
            if top["bytes"] < best.peak_sram_bytes:
                best = PeakMemory(top["bytes"], lbl.flash_bytes, schedule, k, top["name"])
        k += 1
    return best
