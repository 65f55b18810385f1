"""Schedule search: where to cut a network into fused stacks and which tile each stack runs.

Dynamic programming over cut points: every candidate stack (consecutive layers that may share
one, ``Flow.joins``, across pooling operators too; at most ``max_layers`` of them) is costed for
each candidate tile and overlap policy, and the DP picks the cheapest cover of the network.
Energy and latency add over stacks, so they are minimized exactly (over the candidates); EDP, a
product of the two sums, is minimized by scanning ``energy + lambda * cycles`` over a range of
lambdas and keeping the schedule with the least EDP (every point of the energy-latency front's
convex hull is found this way).

``objective="memory"`` minimizes the peak global-buffer bytes of the schedule (the largest over
its stacks: the least bound under which a cover exists), then the EDP under that peak;
``max_peak_bytes`` bounds the peak for any objective (stacks above it are not candidates).

Candidate tiles of a stack whose last layer has a ``P x Q`` output: whole rows ``(r, Q)`` and
squares ``(r, r)`` for ``r`` = 1, 2, 4, ... below ``P``, and the whole map. Stacks with the same
first layer stop growing once no tile of one fits the global buffer (a longer stack holds more).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from accelerators.schedule import OVERLAP, Stack, stack_problem
from mappings.schedule import Schedule, ScheduleCost, StackMapper, evaluate_schedule
from models.errors import WorkloadError
from models.network import Network

SCHEDULE_OBJECTIVES = ("edp", "energy", "latency", "memory")
DEFAULT_MAX_LAYERS = 8
MAX_STACK_LAYERS = 64


def candidate_tiles(P: int, Q: int) -> list[tuple[int, int] | None]:
    """Tiles tried for a stack whose last layer's output is ``P x Q`` (``None``: the whole map)."""
    out: list = [None]
    r = 1
    while r < P:
        out.append((r, Q))
        if r < Q:
            out.append((r, r))
        r *= 2
    return out


@dataclass
class _Option:
    stack: Stack
    energy: float
    cycles: int
    peak: float = 0.0


def _options(sm: StackMapper, max_layers: int, overlaps) -> dict:
    """``{(first, last): [options]}`` over every candidate stack that fits."""
    net = sm.network
    fl = sm.flow
    n = len(net.layers)
    opts: dict = {}
    for a in range(n):
        for b in range(a, min(n, a + max_layers)):
            if b > a and stack_problem(net, fl, a, b):
                break
            last = net.layers[b]
            found = []
            for t in candidate_tiles(last.P, last.Q):
                for o in (overlaps if t is not None else ("recompute",)):
                    if t is None and b == a:
                        st = Stack(a, b)
                    else:
                        st = Stack(a, b, t, o)
                    try:
                        c = sm.cost(st)
                    except ValueError:
                        continue
                    found.append(_Option(st, c.energy_pj, c.cycles, c.peak_glb_bytes))
            if found:
                opts[(a, b)] = found
            elif b > a:
                break  # nothing of a..b fits: a longer stack holds more
    return opts


def _dp(n: int, opts: dict, weight: float) -> list[Stack] | None:
    """The cover of layers 0..n-1 minimizing energy + weight * cycles."""
    best = [math.inf] * (n + 1)
    best[0] = 0.0
    back: list = [None] * (n + 1)
    for b in range(n):
        for (a, bb), lst in ((k, v) for k, v in opts.items() if k[1] == b):
            if best[a] == math.inf:
                continue
            o = min(lst, key=lambda o: o.energy + weight * o.cycles)
            v = best[a] + o.energy + weight * o.cycles
            if v < best[b + 1]:
                best[b + 1], back[b + 1] = v, o.stack
    if best[n] == math.inf:
        return None
    out, k = [], n
    while k:
        out.append(back[k])
        k = back[k].first
    return out[::-1]


def search_schedule(network: Network, accelerator, objective: str = "edp", max_layers: int = DEFAULT_MAX_LAYERS,
                    overlaps=OVERLAP, mapper: StackMapper | None = None, optimizer: str = "auto",
                    seed: int = 0, cache=None, max_peak_bytes: float | None = None) -> ScheduleCost:
    """The fused schedule of ``network`` on ``accelerator`` minimizing ``objective`` among the
    candidates (layer-by-layer is among them, so the result is never worse than it), with the
    peak global-buffer bytes at most ``max_peak_bytes`` when given (``WorkloadError`` naming
    the least reachable peak when no schedule meets it)."""
    if objective not in SCHEDULE_OBJECTIVES:
        raise WorkloadError(f"unknown schedule objective '{objective}' (known: {', '.join(SCHEDULE_OBJECTIVES)})")
    if not 1 <= max_layers <= MAX_STACK_LAYERS:
        raise WorkloadError(f"max layers per stack must be 1..{MAX_STACK_LAYERS}, got {max_layers}")
    if max_peak_bytes is not None and not max_peak_bytes > 0:
        raise WorkloadError(f"the peak on-chip bound must be a positive number of bytes, got {max_peak_bytes}")
    t0 = time.perf_counter()
    sm = mapper or StackMapper(network, accelerator, optimizer=optimizer, seed=seed, cache=cache)
    opts = _options(sm, max_layers, tuple(overlaps))
    n = len(network.layers)
    if objective == "energy":
        weights = [0.0]
    elif objective == "latency":
        weights = [1e30]
    else:
        base = [opts[(i, i)][0] for i in range(n)]
        scale = sum(o.energy for o in base) / max(1, sum(o.cycles for o in base))
        weights = [scale * 10 ** (k / 4) for k in range(-12, 13)]
    least = _least_peak(n, opts)
    bound = least if objective == "memory" else max_peak_bytes
    if max_peak_bytes is not None and least > max_peak_bytes:
        raise WorkloadError(f"no schedule of {network.name} keeps the global buffer under "
                            f"{max_peak_bytes / 1024:,.1f} kB: the least peak any candidate schedule reaches is "
                            f"{least / 1024:,.1f} kB")
    if bound is not None:
        opts = _under(opts, bound)
    best, best_v = None, math.inf
    seen = set()
    for w in weights:
        stacks = _dp(n, opts, w)
        key = tuple(stacks)
        if key in seen:
            continue
        seen.add(key)
        e = sum(_find(opts, s).energy for s in stacks)
        c = sum(_find(opts, s).cycles for s in stacks)
        v = {"edp": e * c, "energy": e, "latency": c, "memory": e * c}[objective]
        if v < best_v:
            best, best_v = stacks, v
    result = evaluate_schedule(network, sm.acc, Schedule(tuple(best), "fused"), mapper=sm)
    result.seconds = time.perf_counter() - t0
    return result


def _under(opts: dict, bound: float) -> dict:
    out = {k: [o for o in v if o.peak <= bound] for k, v in opts.items()}
    return {k: v for k, v in out.items() if v}


def _covers(n: int, opts: dict) -> bool:
    reach = [True] + [False] * n
    for b in range(n):
        for (a, bb) in opts:
            if bb == b and reach[a]:
                reach[b + 1] = True
    return reach[n]


def _least_peak(n: int, opts: dict) -> float:
    """The least bound on a stack's peak under which the candidates still cover the network."""
    peaks = sorted({o.peak for v in opts.values() for o in v})
    lo, hi = 0, len(peaks) - 1
    if not peaks or not _covers(n, opts):
        return math.inf
    while lo < hi:
        mid = (lo + hi) // 2
        if _covers(n, _under(opts, peaks[mid])):
            hi = mid
        else:
            lo = mid + 1
    return peaks[lo]


def _find(opts: dict, st: Stack) -> _Option:
    return next(o for o in opts[(st.first, st.last)] if o.stack == st)
