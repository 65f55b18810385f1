"""Design search for the FPGA templates under a board's limits.

The grid is pruned without losing the optimum: in both templates a tile or unroll factor matters
only through the ceilings ``ceil(size / T)`` of the layers (plus buffer sizes that grow with
``T``), so for every parameter the only candidates kept are the smallest values that give each
distinct tuple of ceilings over the network (``ceil(n/k)`` for every layer size ``n``; for the
HotNAS input tile, the smallest input extent giving ``ceil(P/k)`` output rows). HotNAS port counts
always use the whole port width (more words per cycle never slows a tile), so ``Op`` follows from
``Ip`` and ``Wp``. Designs over a DSP budget are never enumerated.

The pruned grid is searched exhaustively when it is small (``EXHAUSTIVE_MAX`` layer evaluations),
otherwise by nevergrad (``NGOpt`` over indices into the candidate lists, limits as penalties)
followed by a deterministic coordinate descent (every single parameter and every pair of them)
from the best designs nevergrad saw, the board's presets that fit and, in layer-specific mode, the
cross-layer optimum.
The answer always fits the board; ties go to the design using less energy, then fewer DSPs, BRAM
and LUTs.

Modes: ``cross-layer`` (one design for every layer, as built in hardware) and ``layer-specific``
(each distinct layer shape gets its own best design: an upper bound on what any single design can
reach). Objectives: ``latency`` (cycles at the board clock) or ``edp`` (energy x latency with the
power model of ``power.py``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from models.network import Network

from . import hotnas as hn
from . import zhang15 as zh
from .boards import Board, FPGAError, bank_cost_array, load_board
from .power import FPGANetworkResult, energy_terms, network_energy

MODELS = ("hotnas", "zhang15")
OBJECTIVES = ("latency", "edp")
MODES = ("cross-layer", "layer-specific")
EXHAUSTIVE_MAX = 2_000_000      # designs x layers evaluated exhaustively at most
DEFAULT_BUDGET = 1500           # nevergrad evaluations (cross-layer)
CHUNK = 400_000                 # designs x layers per vectorized batch
_PENALTY = 1e3


def _ceil_points(sizes, cap: int) -> np.ndarray:
    """Smallest T giving each value of ceil(n / T) for every n in ``sizes`` (T <= cap)."""
    out = set()
    for n in set(int(s) for s in sizes):
        out.update(-(-n // k) for k in range(1, n + 1))
    return np.asarray(sorted(v for v in out if v <= cap) or [1], dtype=np.int64)


def _input_tile_points(P, S, cap: int) -> np.ndarray:
    """Smallest input-tile extents giving each number of output rows ceil(P/k) (stride S)."""
    out = set()
    for p, s in set(zip((int(x) for x in P), (int(x) for x in S))):
        out.update(s * (-(-p // k) - 1) + 1 for k in range(1, p + 1))
    return np.asarray(sorted(v for v in out if v <= cap) or [1], dtype=np.int64)


def _with_values(cands: np.ndarray, extra) -> np.ndarray:
    return np.unique(np.concatenate([cands, np.asarray(list(extra), dtype=np.int64)])) if extra else cands


# ---- search spaces ----------------------------------------------------------------------------
class HotNASSpace:
    """The pruned candidate values of every HotNAS design parameter for some layers on a board."""
    model = "hotnas"
    names = ("Tm", "Tn", "Tmd", "Tr", "Tc", "Ip", "Wp")

    def __init__(self, layers, board: Board, objective: str, extra=()):
        self.layers, self.board, self.objective = list(layers), board, objective
        self.t = hn.layer_table(self.layers)
        t, dsp = self.t, board.dsp
        conv, dw = ~t["dw"], t["dw"]
        self.pw = board.port_words16
        if self.pw < 3:
            raise FPGAError(f"board {board.name}: {board.mem_port_bits}-bit ports cannot carry three 16-bit ports")
        c = {
            "Tm": _ceil_points(t["M"][conv], dsp) if conv.any() else np.asarray([1]),
            "Tn": _ceil_points(t["N"][conv], dsp) if conv.any() else np.asarray([1]),
            "Tmd": _ceil_points(t["ch"][dw], dsp - 1) if dw.any() else np.asarray([0]),
            "Tr": _input_tile_points(t["P"], t["S"], int(t["H"].max())),
            "Tc": _input_tile_points(t["Q"], t["S"], int(t["W"].max())),
            "Ip": np.arange(1, self.pw - 1, dtype=np.int64),
            "Wp": np.arange(1, self.pw - 1, dtype=np.int64),
        }
        for row in extra:
            for k in ("Tm", "Tn", "Tmd", "Tr", "Tc"):
                if k != "Tmd" or dw.any():
                    c[k] = _with_values(c[k], [row[k]])
        self.cands = c

    def complete(self, v: dict) -> dict:
        v = {k: np.asarray(x, dtype=np.int64) for k, x in v.items()}
        if "Op" not in v:
            v["Op"] = self.pw - v["Ip"] - v["Wp"]
        return v

    def evaluate(self, v: dict) -> dict:
        v = self.complete(v)
        ok_op = v["Op"] >= 1
        d = {k: np.maximum(v[k], 1) if k == "Op" else v[k] for k in hn.PARAMS}
        r = hn.layer_terms(d, self.t)
        res = hn.resource_arrays(d, self.t)
        out = {"cycles": r["cycles"].sum(axis=-1), "dram_bytes": r["dram_bytes"].sum(axis=-1),
               "dsp": res["dsp"], "bram18": res["bram18"], "lut": res["lut"], "port_bits": res["port_bits"]}
        return _score(out, self.board, self.objective, extra_ok=ok_op, extra_over=np.where(ok_op, 0, 1 - v["Op"]))

    def design(self, row: dict):
        row = self.complete(row)
        return hn.HotNASDesign(**{k: int(row[k]) for k in hn.PARAMS})

    def within_dsp(self, v: dict):
        return v["Tm"] * v["Tn"] + v["Tmd"] <= self.board.dsp

    def dsp_combos(self) -> dict:
        """Every (Tm, Tn, Tmd) of the candidate lists within the DSP budget."""
        tm, tn, tmd = np.meshgrid(self.cands["Tm"], self.cands["Tn"], self.cands["Tmd"], indexing="ij")
        ok = tm * tn + tmd <= self.board.dsp
        return {"Tm": tm[ok], "Tn": tn[ok], "Tmd": tmd[ok]}

    def outer(self) -> dict:
        tr, tc, ip, wp = np.meshgrid(self.cands["Tr"], self.cands["Tc"], self.cands["Ip"], self.cands["Wp"],
                                     indexing="ij")
        ok = ip + wp <= self.pw - 1
        return {"Tr": tr[ok], "Tc": tc[ok], "Ip": ip[ok], "Wp": wp[ok]}


class Zhang15Space:
    """The pruned candidate values of every Zhang FPGA'15 tile for some layers on a board."""
    model = "zhang15"
    names = ("Tm", "Tn", "Tr", "Tc")

    def __init__(self, layers, board: Board, objective: str, dtype: str, extra=()):
        self.layers, self.board, self.objective, self.dtype = list(layers), board, objective, dtype
        self.t = zh.layer_table(self.layers)
        info = zh.DTYPES[dtype]
        self.bits, self.dpm = info["word_bits"], info["dsp_per_mac"]
        macs = board.dsp // self.dpm
        if macs < 1:
            raise FPGAError(f"board {board.name}: {board.dsp} DSPs cannot hold one {dtype} MAC ({self.dpm} DSPs)")
        t = self.t
        c = {"Tm": _ceil_points(t["M"], macs), "Tn": _ceil_points(t["N"], macs),
             "Tr": _ceil_points(t["R"], int(t["R"].max())), "Tc": _ceil_points(t["C"], int(t["C"].max()))}
        for row in extra:
            for k in self.names:
                c[k] = _with_values(c[k], [row[k]])
        self.cands = c

    def complete(self, v: dict) -> dict:
        return {k: np.asarray(x, dtype=np.int64) for k, x in v.items()}

    def evaluate(self, v: dict) -> dict:
        col = {k: np.asarray(v[k], dtype=np.int64)[..., None] for k in self.names}
        r = zh.layer_terms(col["Tm"], col["Tn"], col["Tr"], col["Tc"], self.t, self.bits // 8,
                           self.board.ddr_bytes_per_cycle())
        din, dw, dout = zh.buffer_depths(col["Tr"], col["Tc"], self.t)
        tm, tn = np.asarray(v["Tm"], dtype=np.int64), np.asarray(v["Tn"], dtype=np.int64)
        b_in, l_in = bank_cost_array(din, self.bits)
        b_w, l_w = bank_cost_array(dw, self.bits)
        b_out, l_out = bank_cost_array(dout, self.bits)
        out = {"cycles": r["cycles"].sum(axis=-1), "dram_bytes": r["dram_bytes"].sum(axis=-1),
               "dsp": tm * tn * self.dpm,
               "bram18": 2 * (tn * b_in + tm * tn * b_w + tm * b_out),
               "lut": 2 * (tn * l_in + tm * tn * l_w + tm * l_out), "port_bits": None}
        return _score(out, self.board, self.objective)

    def design(self, row: dict):
        return zh.Zhang15Design(**{k: int(row[k]) for k in self.names}, dtype=self.dtype)

    def within_dsp(self, v: dict):
        return v["Tm"] * v["Tn"] * self.dpm <= self.board.dsp

    def dsp_combos(self) -> dict:
        tm, tn = np.meshgrid(self.cands["Tm"], self.cands["Tn"], indexing="ij")
        ok = tm * tn * self.dpm <= self.board.dsp
        return {"Tm": tm[ok], "Tn": tn[ok]}

    def outer(self) -> dict:
        tr, tc = np.meshgrid(self.cands["Tr"], self.cands["Tc"], indexing="ij")
        return {"Tr": tr.ravel(), "Tc": tc.ravel()}


def _score(out: dict, board: Board, objective: str, extra_ok=True, extra_over=0.0) -> dict:
    over = (np.maximum(out["dsp"] / board.dsp - 1, 0) + np.maximum(out["bram18"] / board.bram18 - 1, 0)
            + np.maximum(out["lut"] / board.lut - 1, 0) + extra_over)
    ok = (out["dsp"] <= board.dsp) & (out["bram18"] <= board.bram18) & (out["lut"] <= board.lut) & extra_ok
    if out["port_bits"] is not None:
        ok = ok & (out["port_bits"] <= board.mem_port_bits)
        over = over + np.maximum(out["port_bits"] / board.mem_port_bits - 1, 0)
    e = energy_terms(board, out["cycles"], out["dsp"], out["bram18"], out["dram_bytes"])
    obj = out["cycles"].astype(float) if objective == "latency" else e["edp_j_s"]
    out["energy_mj"] = e["energy_mj"]
    out["feasible"] = ok
    out["objective"] = np.where(ok, obj, np.inf)
    out["penalized"] = np.where(ok, np.log(np.maximum(obj, 1e-300)), _PENALTY + over)
    return out


# ---- search driver ----------------------------------------------------------------------------
class _Tracker:
    """Keeps the best feasible design seen (ties: less energy, then fewer DSPs, BRAM, LUTs, then
    smaller values)."""

    def __init__(self, names):
        self.names = names
        self.best = None
        self.key = None
        self.evaluated = 0

    def offer(self, vals: dict, s: dict) -> None:
        n = len(np.atleast_1d(s["objective"]))
        self.evaluated += n
        if not np.any(s["feasible"]):
            return
        col = {k: np.broadcast_to(np.asarray(vals[k]), (n,)) for k in vals}
        ties = [np.broadcast_to(np.asarray(s[k]), (n,)) for k in ("objective", "energy_mj", "dsp", "bram18", "lut")]
        order = np.lexsort([col[k] for k in reversed(self.names)] + ties[::-1])
        i = int(order[0])
        row = {k: int(v[i]) for k, v in col.items()}
        key = tuple(float(t[i]) for t in ties) + tuple(row[k] for k in self.names)
        if self.key is None or key < self.key:
            self.best, self.key = row, key


def _chunked(space, tracker: _Tracker, rows: dict) -> None:
    n = len(next(iter(rows.values())))
    step = max(1, CHUNK // max(1, len(space.layers)))
    for i in range(0, n, step):
        part = {k: v[i:i + step] for k, v in rows.items()}
        tracker.offer(part, space.evaluate(part))


def _exhaustive(space, tracker: _Tracker) -> None:
    inner, outer = space.dsp_combos(), space.outer()
    n_in = len(next(iter(inner.values())))
    n_out = len(next(iter(outer.values())))
    step = max(1, CHUNK // max(1, len(space.layers) * n_in))
    for j in range(0, n_out, step):
        o = {k: v[j:j + step] for k, v in outer.items()}
        m = len(next(iter(o.values())))
        rows = {k: np.tile(v, m) for k, v in inner.items()}
        rows.update({k: np.repeat(v, n_in) for k, v in o.items()})
        _chunked(space, tracker, rows)


def _grid_evals(space) -> int:
    n_in = len(next(iter(space.dsp_combos().values())))
    n_out = len(next(iter(space.outer().values())))
    return n_in * n_out * len(space.layers)


def _nevergrad(space, tracker: _Tracker, budget: int, seed: int, n_starts: int = 4) -> list:
    """Run nevergrad; return the best few distinct feasible designs it saw."""
    import nevergrad as ng

    # one integer index per parameter into its (sorted) candidate list
    free = [k for k in space.names if len(space.cands[k]) > 1]
    if not free:
        return [{k: int(space.cands[k][0]) for k in space.names}]
    sizes = np.asarray([len(space.cands[k]) for k in free])
    param = ng.p.Array(shape=(len(sizes),), lower=np.zeros(len(sizes)), upper=sizes - 1).set_integer_casting()
    param.random_state = np.random.RandomState(seed)
    workers = 16
    opt = ng.optimizers.registry["NGOpt"](parametrization=param, budget=budget, num_workers=workers)
    done, found = 0, []
    while done < budget:
        cands = [opt.ask() for _ in range(min(workers, budget - done))]
        idx = np.clip(np.asarray([c.value for c in cands], dtype=np.int64), 0, sizes - 1)
        vals = {k: np.full(len(cands), space.cands[k][0]) for k in space.names}
        vals.update({k: space.cands[k][idx[:, i]] for i, k in enumerate(free)})
        s = space.evaluate(vals)
        tracker.offer(vals, s)
        for c, loss in zip(cands, s["penalized"]):
            opt.tell(c, float(loss))
        done += len(cands)
        found.append((vals, s["penalized"], s["feasible"]))
    # the few best distinct feasible designs seen: starting points for the descent
    vals = {k: np.concatenate([f[0][k] for f in found]) for k in space.names}
    loss = np.concatenate([f[1] for f in found])
    ok = np.concatenate([f[2] for f in found])
    rows, seen = [], set()
    for i in np.argsort(np.where(ok, loss, np.inf), kind="stable"):
        if not ok[i] or len(rows) >= n_starts:
            break
        row = tuple(int(vals[k][i]) for k in space.names)
        if row not in seen:
            seen.add(row)
            rows.append(dict(zip(space.names, row)))
    return rows


def _descend(space, tracker: _Tracker, start: dict, max_rounds: int = 40) -> None:
    """Coordinate descent from ``start``: each move tries every candidate value of one parameter, or
    of two at once (coupled parameters such as Tm/Tn under the DSP budget move together)."""
    cur = {k: start[k] for k in space.names}
    s = space.evaluate({k: np.asarray([v]) for k, v in cur.items()})
    tracker.offer({k: np.asarray([v]) for k, v in cur.items()}, s)
    best = _Tracker(space.names)
    best.offer({k: np.asarray([v]) for k, v in cur.items()}, s)
    names = space.names
    moves = [(k,) for k in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    for _ in range(max_rounds):
        before = best.key
        for move in moves:
            base = best.best if best.best is not None else cur
            grids = np.meshgrid(*[space.cands[k] for k in move], indexing="ij")
            n = grids[0].size
            rows = {k: np.full(n, base[k], dtype=np.int64) for k in space.names}
            for k, g in zip(move, grids):
                rows[k] = g.ravel()
            keep = space.within_dsp(rows)
            rows = {k: v[keep] for k, v in rows.items()}
            if len(next(iter(rows.values()))) == 0:
                continue
            step = max(1, CHUNK // max(1, len(space.layers)))
            for i in range(0, len(rows["Tm"]), step):
                part = {k: v[i:i + step] for k, v in rows.items()}
                sc = space.evaluate(part)
                tracker.offer(part, sc)
                best.offer(part, sc)
        if best.key == before:
            break


def _search_layers(layers, board: Board, model: str, objective: str, seed: int, budget: int, dtype: str,
                   starts=()) -> tuple:
    """Best design for ``layers`` (one design for all of them); returns (design, method, evaluated)."""
    extra = [dict(s) for s in starts]
    if model == "hotnas":
        space = HotNASSpace(layers, board, objective, extra=extra)
    else:
        space = Zhang15Space(layers, board, objective, dtype, extra=extra)
    tracker = _Tracker(space.names)
    for st in extra:  # exact starting designs (e.g. presets with their own Op) count as found
        vals = {k: np.asarray([v]) for k, v in space.complete(st).items()}
        tracker.offer({k: vals[k] for k in space.names + (("Op",) if model == "hotnas" else ())},
                      space.evaluate(vals))
    if _grid_evals(space) <= EXHAUSTIVE_MAX:
        method = "exhaustive"
        _exhaustive(space, tracker)
    else:
        method = "nevergrad"
        seeds = _nevergrad(space, tracker, budget, seed)
        seeds += [{k: st[k] for k in space.names} for st in extra]
        for st in seeds:
            _descend(space, tracker, {k: st[k] for k in space.names})
    if tracker.best is None:
        raise FPGAError(f"no {model} design fits {board.name} for this workload "
                        f"(searched {tracker.evaluated} designs)")
    return space.design(tracker.best), method, tracker.evaluated


# ---- public API -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FPGASearchResult:
    """The design found (``design``; per layer in layer-specific mode), its evaluation on the network,
    and how it was found."""

    model: str
    board: str
    objective: str
    mode: str
    seed: int
    method: str
    budget: int
    evaluated: int
    time_s: float
    design: dict | None
    result: FPGANetworkResult
    presets: tuple = ()

    def to_dict(self) -> dict:
        return {"model": self.model, "board": self.board, "objective": self.objective, "mode": self.mode,
                "seed": self.seed, "method": self.method, "budget": self.budget, "evaluated": self.evaluated,
                "time_s": self.time_s, "design": self.design, "result": self.result.to_dict(),
                "presets": list(self.presets)}


def _evaluate(network: Network, design, board: Board, mode: str) -> FPGANetworkResult:
    if isinstance(design, hn.HotNASDesign):
        return hn.hotnas_network(network, design, board, mode=mode)
    return zh.zhang15_network(network, design, board, mode=mode)


def _objective(result: FPGANetworkResult, objective: str) -> float:
    return result.cycles if objective == "latency" else result.energy["edp_j_s"]


def search_design(network: Network, board, model: str = "hotnas", objective: str = "latency",
                  mode: str = "cross-layer", seed: int = 0, budget: int | None = None,
                  dtype: str = "fp32") -> FPGASearchResult:
    """Find the design of ``model`` that minimizes ``objective`` for ``network`` on ``board``.

    ``dtype`` (zhang15 only): ``fp32`` or ``fix16``; HotNAS is 16-bit. ``budget``: nevergrad
    evaluations when the pruned grid is too large to enumerate. Same seed, same result. The design
    found always fits the board; for HotNAS it is at least as good as every preset of that board
    that fits it (``presets`` in the result lists them with their latency and limits broken).
    """
    if model not in MODELS:
        raise FPGAError(f"unknown FPGA model {model!r} (known: {', '.join(MODELS)})")
    if objective not in OBJECTIVES:
        raise FPGAError(f"unknown objective {objective!r} (known: {', '.join(OBJECTIVES)})")
    if mode not in MODES:
        raise FPGAError(f"unknown search mode {mode!r} (known: {', '.join(MODES)})")
    if dtype not in zh.DTYPES:
        raise FPGAError(f"unknown dtype {dtype!r} (known: {', '.join(zh.DTYPES)})")
    budget = DEFAULT_BUDGET if budget is None else int(budget)
    if budget < 1:
        raise FPGAError(f"budget must be a positive integer, got {budget}")
    board = load_board(board)
    t0 = time.perf_counter()

    starts, preset_rows = [], []
    if model == "hotnas":  # the presets of this board (HotNAS: ZCU102) are compared and used as starts
        for name in (n for n in hn.preset_names() if hn.preset_board(n) == board.name):
            p = hn.load_preset(name)
            r = hn.hotnas_network(network, p, board)
            preset_rows.append({"preset": name, "latency_ms": r.latency_ms, "edp_j_s": r.energy["edp_j_s"],
                                "fits": r.fits, "violations": [v.message() for v in r.violations]})
            if r.fits:
                starts.append({k: getattr(p, k) for k in hn.PARAMS})
    design, method, evaluated = _search_layers(network.layers, board, model, objective, seed, budget, dtype,
                                               starts=starts)
    result = _evaluate(network, design, board, mode="cross-layer")
    if mode == "layer-specific":
        result, evaluated2 = _layer_specific(network, board, model, objective, seed, budget, dtype, design)
        evaluated += evaluated2
        design = None
    best = _objective(result, objective)
    for row in preset_rows:
        row["search_is_at_least_as_good"] = (not row["fits"]) or best <= (
            row["latency_ms"] * board.clock_mhz * 1e3 if objective == "latency" else row["edp_j_s"]) * (1 + 1e-12)
    return FPGASearchResult(model=model, board=board.name, objective=objective, mode=mode, seed=seed,
                            method=method, budget=budget, evaluated=evaluated,
                            time_s=time.perf_counter() - t0,
                            design=None if design is None else design.to_dict(), result=result,
                            presets=tuple(preset_rows))


def _layer_specific(network: Network, board: Board, model: str, objective: str, seed: int, budget: int,
                    dtype: str, cross_design) -> tuple:
    """Each distinct layer shape gets its own best design (seeded with the cross-layer one)."""
    shapes = network.unique_shapes()
    per_shape = max(100, budget // max(1, len(shapes)))
    chosen, evaluated = {}, 0
    start = cross_design.to_dict()
    start.pop("Tk", None)
    start.pop("dtype", None)
    for layer, _count in shapes:
        d, _m, n = _search_layers([layer], board, model, objective, seed, per_shape, dtype, starts=[start])
        chosen[layer.shape_key] = d
        evaluated += n
    layers = []
    for l in network.layers:
        d = chosen[l.shape_key]
        one = hn.hotnas_layer(l, d, board) if model == "hotnas" else zh.zhang15_layer(l, d, board)
        layers.append(replace(one, design=d.to_dict()))
    res_max = max((l.resources for l in layers), key=lambda r: (r.dsp, r.bram18, r.lut))
    result = FPGANetworkResult(network=network.name, model=model, board=board.name, clock_mhz=board.clock_mhz,
                               mode="layer-specific", design=None, layers=tuple(layers), resources=res_max,
                               violations=(), energy=network_energy(board, layers))
    return result, evaluated
