"""The ZCU102 accelerator template of Jiang et al. (FNAS, DAC 2019; HotNAS, CODES+ISSS 2020).

A 16-bit fixed-point design with two engines: a convolution engine of ``Tm x Tn`` MACs (output x
input channels) and a depthwise engine of ``Tmd`` MACs (one channel each). Both work on an input
tile of ``Tr x Tc`` rows x cols; with stride ``S`` a tile yields ``ceil(Tr/S) x ceil(Tc/S)``
outputs (the template does not load the halo). ``Ip``, ``Op`` and ``Wp`` are the 16-bit words per
cycle of the input, output and weight ports.

Per tile (double-buffered, so loads overlap compute):

    load inputs   ceil(Tn Tr Tc / Ip)       load weights  ceil(Tm Tn K^2 / Wp)
    compute       K^2 ceil(Tr/S) ceil(Tc/S) inner step = max of the three
    store outputs ceil(Tm ceil(Tr/S) ceil(Tc/S) / Op), after the input-channel loop, overlapped
                  with the next output tile: per output tile max(ceil(N/Tn) x step, store)

and the total is the sum over all output tiles plus the store of the last one (nothing left to
overlap it with). Tile sizes are clipped to the layer (a tile never moves channels or pixels the
layer does not have). The depthwise engine has no input-channel loop: its step covers ``Tmd``
channels at once.

Mapping of our layers: a depthwise layer (``C = 1``, ``G > 1``) runs on the depthwise engine with
``G x K`` channels (on the convolution engine, group by group, when ``Tmd = 0``); other layers run on
the convolution engine one group and one image at a time with ``M = K``, ``N = C``;
fully-connected layers are 1x1 maps.

Resources: DSP ``Tm Tn + Tmd`` (one DSP48 per 16-bit MAC); port width ``16 (Ip + Op + Wp)`` bits;
BRAM / LUT-RAM of the double-buffered banked tiles of each engine (``Tn`` input, ``Tm Tn`` weight
and ``Tm`` output banks; ``Tmd`` of each on the depthwise engine), each bank sized for the largest
tile the workload uses (``boards.bank_cost``). The engines keep separate buffers, as the two
templates of the HotNAS code do.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.inputs import load_yaml_file, validate
from models.layer import Layer
from models.network import Network

from .board_schema import HotNASDesignSpec
from .boards import (Board, FPGAError, ResourceUse, as_layers, bank_cost_array, cdiv, load_board, parse_design_kv, violations)
from .power import FPGALayerResult, FPGANetworkResult, energy_terms, network_result

MODEL = "hotnas"
WORD_BITS = 16
PRESET_FILE = Path(__file__).parent / "hotnas_presets.yaml"
PARAMS = ("Tm", "Tn", "Tr", "Tc", "Tmd", "Ip", "Op", "Wp")
BOUNDS = ("compute", "input-port", "weight-port", "output-port")


@dataclass(frozen=True)
class HotNASDesign:
    """Conv engine ``Tm x Tn``, depthwise engine ``Tmd``, input tile ``Tr x Tc``, port words
    ``Ip, Op, Wp`` (16-bit words per cycle) and ``Tk``, the largest kernel the weight buffers hold
    (``None``: sized for the workload)."""

    Tm: int
    Tn: int
    Tr: int
    Tc: int
    Tmd: int
    Ip: int
    Op: int
    Wp: int
    Tk: int | None = None

    def __post_init__(self):
        spec = validate(HotNASDesignSpec, {k: getattr(self, k) for k in PARAMS + ("Tk",)}, "hotnas design",
                        error=FPGAError)
        for k in PARAMS + ("Tk",):
            object.__setattr__(self, k, getattr(spec, k))

    @property
    def dsp(self) -> int:
        return self.Tm * self.Tn + self.Tmd

    @property
    def port_bits(self) -> int:
        return WORD_BITS * (self.Ip + self.Op + self.Wp)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in PARAMS + ("Tk",)}

    @classmethod
    def from_dict(cls, d: dict) -> "HotNASDesign":
        spec = validate(HotNASDesignSpec, d, "hotnas design", error=FPGAError)
        return cls(**{k: getattr(spec, k) for k in PARAMS + ("Tk",)})

    @classmethod
    def parse(cls, text: str) -> "HotNASDesign":
        """Parse ``"Tm=..,Tn=..,Tr=..,Tc=..,Tmd=..,Ip=..,Op=..,Wp=..[,Tk=..]"``."""
        return cls.from_dict(parse_design_kv(text, "hotnas design"))


# ---- presets ----------------------------------------------------------------------------------
def _preset_data() -> dict:
    return load_yaml_file(PRESET_FILE, PRESET_FILE.name, error=FPGAError)


def preset_names() -> list[str]:
    """Names of the nine ZCU102 designs (``zcu102-1`` ... ``zcu102-9``)."""
    return list(_preset_data()["presets"])


def preset_board(name: str) -> str:
    """The board a preset was designed for."""
    load_preset(name)
    return _preset_data()["board"]


def load_preset(name: str) -> HotNASDesign:
    """A preset design by name (case-insensitive; ``zcu102_3`` also works)."""
    data = _preset_data()
    key = str(name).strip().lower().replace("_", "-")
    if key not in data["presets"]:
        raise FPGAError(f"unknown hotnas preset '{name}' (known: {', '.join(data['presets'])})")
    return HotNASDesign.from_dict({**data["tile"], **data["presets"][key]})


# ---- per-layer bounds as arrays ---------------------------------------------------------------
def is_depthwise(layer: Layer) -> bool:
    return layer.C == 1 and layer.G > 1


def layer_table(layers) -> dict:
    """Per-layer bounds for both engines as int64 arrays (usable for batches of designs)."""
    cols = {k: [] for k in ("dw", "M", "N", "reps", "ch", "reps_dw", "P", "Q", "H", "W", "Kr", "Kc", "S")}
    for l in layers:
        cols["dw"].append(is_depthwise(l))
        cols["M"].append(l.K)
        cols["N"].append(l.C)
        cols["reps"].append(l.G * l.N)
        cols["ch"].append(l.G * l.K)
        cols["reps_dw"].append(l.N)
        cols["P"].append(l.P)
        cols["Q"].append(l.Q)
        cols["H"].append(l.H)
        cols["W"].append(l.W_in)
        cols["Kr"].append(l.R)
        cols["Kc"].append(l.S)
        cols["S"].append(l.stride)
    return {k: np.asarray(v, dtype=bool if k == "dw" else np.int64) for k, v in cols.items()}


def _expand(d: dict) -> dict:
    """Design parameters as int64 arrays with a trailing axis that broadcasts against layers."""
    return {k: np.asarray(d[k], dtype=np.int64)[..., None] for k in PARAMS}


def layer_terms(d: dict, t: dict) -> dict:
    """Cycles and per-tile terms of every layer; ``d`` maps each of ``PARAMS`` to a number or a
    1-D array over designs (results are then (designs, layers) arrays)."""
    x = _expand(d)
    Tm, Tn, Tr, Tc, Tmd = x["Tm"], x["Tn"], x["Tr"], x["Tc"], x["Tmd"]
    Ip, Op, Wp = x["Ip"], x["Op"], x["Wp"]
    k2 = t["Kr"] * t["Kc"]
    tro = np.minimum(cdiv(Tr, t["S"]), t["P"])
    tco = np.minimum(cdiv(Tc, t["S"]), t["Q"])
    tiles_rc = cdiv(t["P"], tro) * cdiv(t["Q"], tco)
    tri, tci = np.minimum(Tr, t["H"]), np.minimum(Tc, t["W"])
    t_comp = k2 * tro * tco
    on_dw = t["dw"] & (Tmd > 0)

    # convolution engine
    tm, tn = np.minimum(Tm, t["M"]), np.minimum(Tn, t["N"])
    c_in = cdiv(tn * tri * tci, Ip)
    c_w = cdiv(tm * tn * k2, Wp)
    c_out = cdiv(tm * tro * tco, Op)
    c_steps = cdiv(t["N"], Tn)
    c_tiles = cdiv(t["M"], Tm) * tiles_rc
    # depthwise engine
    tmd = np.minimum(np.maximum(Tmd, 1), t["ch"])
    d_in = cdiv(tmd * tri * tci, Ip)
    d_w = cdiv(tmd * k2, Wp)
    d_out = cdiv(tmd * tro * tco, Op)
    d_tiles = cdiv(t["ch"], np.maximum(Tmd, 1)) * tiles_rc

    t_in = np.where(on_dw, d_in, c_in)
    t_w = np.where(on_dw, d_w, c_w)
    t_out = np.where(on_dw, d_out, c_out)
    steps = np.where(on_dw, 1, c_steps)
    tiles = np.where(on_dw, d_tiles, c_tiles)
    reps = np.where(on_dw, t["reps_dw"], t["reps"])
    step = np.maximum(np.maximum(t_in, t_w), t_comp)
    chain = steps * step
    per_tile = np.maximum(chain, t_out)
    cycles = (tiles * per_tile + t_out) * reps
    bound = np.where(t_out > chain, 3, np.where(t_comp == step, 0, np.where(t_in == step, 1, 2)))
    n_loads = tiles * steps * reps
    in_words = n_loads * np.where(on_dw, tmd, tn) * tri * tci
    w_words = n_loads * np.where(on_dw, tmd, tm * tn) * k2
    out_words = tiles * reps * np.where(on_dw, tmd, tm) * tro * tco
    return {"cycles": cycles, "t_in": t_in, "t_w": t_w, "t_comp": t_comp, "t_out": t_out, "step": step,
            "steps": steps, "tiles": tiles * reps, "bound": bound, "on_dw": on_dw,
            "dram_bytes": (in_words + w_words + out_words) * (WORD_BITS // 8),
            "in_words": in_words, "w_words": w_words, "out_words": out_words}


def _masked_max(values, mask, default):
    """Max of ``values`` over the layers where ``mask`` holds; ``default`` where none does."""
    values, mask = np.broadcast_arrays(values, mask)
    return np.where(mask.any(axis=-1), np.where(mask, values, 0).max(axis=-1), default)


def _buffers(banks_depths: dict) -> dict:
    out = {}
    for name, (banks, depth) in banks_depths.items():
        b18, luts = bank_cost_array(depth, WORD_BITS)
        out[name] = {"banks": banks, "depth_words": depth, "bram18": 2 * banks * b18, "lut": 2 * banks * luts}
    return out


def resource_arrays(d: dict, t: dict | None, Tk: int | None = None) -> dict:
    """DSP, BRAM18, LUT and port bits of designs ``d`` (numbers or 1-D arrays over designs), with
    double-buffered banks sized for the layers of ``t`` (``None``: full ``Tr x Tc`` tiles); ``Tk``
    fixes the weight banks to ``Tk^2`` words (default: the largest kernel of each engine, or 3)."""
    p = {k: np.asarray(d[k], dtype=np.int64) for k in PARAMS}
    full = p["Tr"] * p["Tc"]
    if t is None:
        kw = (Tk or 3) ** 2
        depth = {"conv_input": full, "conv_weight": kw, "conv_output": full,
                 "dw_input": full, "dw_weight": kw, "dw_output": full}
    else:
        x = _expand(d)
        on_dw = t["dw"] & (x["Tmd"] > 0)
        on_conv = ~on_dw
        tro = np.minimum(cdiv(x["Tr"], t["S"]), t["P"])
        tco = np.minimum(cdiv(x["Tc"], t["S"]), t["Q"])
        din = np.minimum(x["Tr"], t["H"]) * np.minimum(x["Tc"], t["W"])
        k2 = t["Kr"] * t["Kc"]
        depth = {"conv_input": _masked_max(din, on_conv, full),
                 "conv_weight": Tk * Tk if Tk else _masked_max(k2, on_conv, 9),
                 "conv_output": _masked_max(tro * tco, on_conv, full),
                 "dw_input": _masked_max(din, on_dw, full),
                 "dw_weight": Tk * Tk if Tk else _masked_max(k2, on_dw, 9),
                 "dw_output": _masked_max(tro * tco, on_dw, full)}
    banks = {"conv_input": p["Tn"], "conv_weight": p["Tm"] * p["Tn"], "conv_output": p["Tm"],
             "dw_input": p["Tmd"], "dw_weight": p["Tmd"], "dw_output": p["Tmd"]}
    bufs = _buffers({k: (banks[k], depth[k]) for k in banks})
    return {"dsp": p["Tm"] * p["Tn"] + p["Tmd"], "bram18": sum(b["bram18"] for b in bufs.values()),
            "lut": sum(b["lut"] for b in bufs.values()),
            "port_bits": WORD_BITS * (p["Ip"] + p["Op"] + p["Wp"]), "buffers": bufs}


def _check_kernels(design: HotNASDesign, layers) -> None:
    if design.Tk is None:
        return
    for l in layers:
        if max(l.R, l.S) > design.Tk:
            raise FPGAError(f"layer '{l.name}': kernel {l.R}x{l.S} exceeds the design's Tk={design.Tk} "
                            f"(raise Tk or leave it out to size the weight buffers for the workload)")


def hotnas_resources(design: HotNASDesign, layers=None) -> ResourceUse:
    """Resources of ``design`` with buffers sized for ``layers`` (a Layer, list or Network); without
    layers, for full ``Tr x Tc`` tiles and ``Tk x Tk`` kernels (3 x 3 when ``Tk`` is not set)."""
    t = None
    if layers is not None:
        layers = as_layers(layers)
        _check_kernels(design, layers)
        t = layer_table(layers)
    r = resource_arrays(design.to_dict(), t, Tk=design.Tk)
    bufs = {k: {kk: int(vv) for kk, vv in v.items()} for k, v in r["buffers"].items()}
    return ResourceUse(dsp=int(r["dsp"]), bram18=int(r["bram18"]), lut=int(r["lut"]),
                       port_bits=int(r["port_bits"]), buffers=bufs)


def check_resources(design: HotNASDesign, board, layers=None) -> list:
    """The limits of ``board`` that ``design`` breaks: a list of ``Violation`` (resource, used,
    available); empty when it fits. ``layers`` sizes the buffers (see ``hotnas_resources``)."""
    return violations(hotnas_resources(design, layers), load_board(board))


def layer_result(layer: Layer, design: HotNASDesign, board: Board, res: ResourceUse,
                 with_resources: bool) -> FPGALayerResult:
    """Cost of one layer on ``design`` given the buffers sized in ``res`` (``with_resources``:
    attach the resource use to the result)."""
    t = layer_table([layer])
    r = layer_terms(design.to_dict(), t)
    v = {k: (bool(a[0]) if k == "on_dw" else int(a[0])) for k, a in r.items()}
    cycles = v["cycles"]
    latency_ms = cycles / (board.clock_mhz * 1e3)
    e = energy_terms(board, cycles, res.dsp, res.bram18, v["dram_bytes"])
    terms = {"tile_cycles": {"load_inputs": v["t_in"], "load_weights": v["t_w"], "compute": v["t_comp"],
                             "store_outputs": v["t_out"]},
             "step_cycles": v["step"], "steps_per_tile": v["steps"], "output_tiles": v["tiles"],
             "traffic_words": {"input": v["in_words"], "weight": v["w_words"], "output": v["out_words"]}}
    return FPGALayerResult(
        name=layer.name, model=MODEL, engine="dwconv" if v["on_dw"] else "conv", macs=layer.macs,
        cycles=cycles, latency_ms=latency_ms, gops=2 * layer.macs / (latency_ms * 1e6),
        bound=BOUNDS[v["bound"]], dram_bytes=v["dram_bytes"], energy_mj=e["energy_mj"], terms=terms,
        resources=res if with_resources else None)


def hotnas_layer(layer: Layer, design: HotNASDesign, board) -> FPGALayerResult:
    """One layer on a HotNAS design; resources are those this layer alone needs."""
    board = load_board(board)
    return layer_result(layer, design, board, hotnas_resources(design, [layer]), with_resources=True)


def hotnas_network(network: Network, design: HotNASDesign, board, *, allow_over_budget: bool = True,
                   mode: str = "design") -> FPGANetworkResult:
    """Every layer of ``network`` on one design (buffers sized for the network).

    With ``allow_over_budget=False`` a design that does not fit the board raises ``FPGAError``
    naming each resource with the amount used and available.
    """
    return network_result(network, design, load_board(board), MODEL, hotnas_resources, layer_result,
                          allow_over_budget=allow_over_budget, mode=mode)
