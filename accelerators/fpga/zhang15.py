"""The loop-tiling model of Zhang et al., "Optimizing FPGA-based Accelerator Design for Deep
Convolutional Neural Networks", FPGA 2015.

Notation of the paper, per group of a layer: ``M`` output channels (our ``K``), ``N`` input
channels (our ``C``), ``R x C`` output rows x cols (our ``P x Q``), ``K x K`` kernel (our
``R x S``), stride ``S``. A design unrolls ``Tm`` output x ``Tn`` input channels (``Tm*Tn`` MACs
per cycle) and tiles the output map by ``Tr x Tc``; the innermost tile loop runs over input
channels, so output tiles stay on chip until complete (the paper's local-memory promotion).

- computational roof = total ops / compute cycles, compute cycles = ceil(M/Tm) ceil(N/Tn) R C K^2
  (the pipelined row/col loops stop at the map edge, so partial tiles cost no extra cycles);
- buffers: beta_in = Tn (S Tr + K - S)(S Tc + K - S), beta_w = Tm Tn K^2, beta_out = Tm Tr Tc;
- external traffic: inputs and weights once per (row, col, to, ti) tile and outputs once per
  (row, col, to) tile, i.e. alpha * beta with alpha_in = alpha_w = ceil(M/Tm)ceil(N/Tn)ceil(R/Tr)
  ceil(C/Tc) and alpha_out = ceil(M/Tm)ceil(R/Tr)ceil(C/Tc). We sum the tiles that exist (edge tiles
  are smaller, channels past M or N are not loaded), which equals alpha * beta when the tiles divide
  the layer;
- CTC ratio = ops / external bytes; attainable = min(roof, CTC x bandwidth); cycles =
  max(compute cycles, bytes / bandwidth per cycle); bound = "compute" or "memory".

Mapping of our layers: groups (``G``) and images of a batch run one after another, each group as a
convolution with ``M = K`` and ``N = C``; depthwise layers therefore get one MAC of the array per
cycle (the template has no depthwise engine). Fully-connected layers are 1x1 maps. Dilation widens
the input window to ``(K - 1) * d + 1``.

Resources: ``Tm*Tn`` MACs at 5 DSPs each in fp32 (3 for the multiplier, 2 for the adder) and 1 in
16-bit fixed point; BRAM for double-buffered banked tiles (``Tn`` input banks, ``Tm*Tn`` weight
banks, ``Tm`` output banks) sized for the largest tile the network uses (``boards.bank_cost``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from models.inputs import validate
from models.layer import Layer
from models.network import Network

from .board_schema import Zhang15DesignSpec
from .boards import (Board, FPGAError, ResourceUse, as_layers, buffer_cost, cdiv, load_board, parse_design_kv)
from .power import FPGALayerResult, FPGANetworkResult, energy_terms, network_result

DTYPES = {"fp32": {"word_bits": 32, "dsp_per_mac": 5}, "fix16": {"word_bits": 16, "dsp_per_mac": 1}}
MODEL = "zhang15"


@dataclass(frozen=True)
class Zhang15Design:
    """Unroll factors ``Tm`` (output channels) x ``Tn`` (input channels), output tile ``Tr x Tc``."""

    Tm: int
    Tn: int
    Tr: int
    Tc: int
    dtype: str = "fp32"

    def __post_init__(self):
        spec = validate(Zhang15DesignSpec, {k: getattr(self, k) for k in ("Tm", "Tn", "Tr", "Tc", "dtype")},
                        "zhang15 design", error=FPGAError)
        for k in ("Tm", "Tn", "Tr", "Tc"):
            object.__setattr__(self, k, getattr(spec, k))

    @property
    def word_bits(self) -> int:
        return DTYPES[self.dtype]["word_bits"]

    @property
    def dsp_per_mac(self) -> int:
        return DTYPES[self.dtype]["dsp_per_mac"]

    @property
    def dsp(self) -> int:
        return self.Tm * self.Tn * self.dsp_per_mac

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Zhang15Design":
        spec = validate(Zhang15DesignSpec, d, "zhang15 design", error=FPGAError)
        return cls(Tm=spec.Tm, Tn=spec.Tn, Tr=spec.Tr, Tc=spec.Tc, dtype=spec.dtype)

    @classmethod
    def parse(cls, text: str, dtype: str | None = None) -> "Zhang15Design":
        """Parse ``"Tm=64,Tn=7,Tr=13,Tc=13[,dtype=fp32]"``; ``dtype`` (e.g. from ``--dtype``) must
        not contradict a dtype in the text."""
        d = parse_design_kv(text, "zhang15 design", str_keys=("dtype",))
        if dtype is not None:
            if "dtype" in d and d["dtype"] != dtype:
                raise FPGAError(f"zhang15 design: dtype={d['dtype']} in the design contradicts the dtype {dtype} "
                                f"given separately")
            d["dtype"] = dtype
        return cls.from_dict(d)


# ---- per-layer loop bounds as arrays (one column per layer) ------------------------------------
def layer_table(layers) -> dict:
    """The paper's per-group bounds of each layer as int64 arrays (usable for batches of designs)."""
    cols = {k: [] for k in ("M", "N", "R", "C", "Kr", "Kc", "S", "Er", "Ec", "reps")}
    for l in layers:
        cols["M"].append(l.K)
        cols["N"].append(l.C)
        cols["R"].append(l.P)
        cols["C"].append(l.Q)
        cols["Kr"].append(l.R)
        cols["Kc"].append(l.S)
        cols["S"].append(l.stride)
        cols["Er"].append((l.R - 1) * l.dilation + 1)
        cols["Ec"].append((l.S - 1) * l.dilation + 1)
        cols["reps"].append(l.G * l.N)
    return {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}


def layer_terms(Tm, Tn, Tr, Tc, t: dict, bytes_per_word: int, bw_bytes_per_cycle: float) -> dict:
    """Cycles, traffic and roofline terms; design parameters broadcast against the layer arrays."""
    nm, nn = cdiv(t["M"], Tm), cdiv(t["N"], Tn)
    nr, nc = cdiv(t["R"], Tr), cdiv(t["C"], Tc)
    reps = t["reps"]
    k2 = t["Kr"] * t["Kc"]
    compute = nm * nn * t["R"] * t["C"] * k2 * reps
    rows_in = t["S"] * (t["R"] - nr) + nr * t["Er"]    # input rows over all row tiles (halo included)
    cols_in = t["S"] * (t["C"] - nc) + nc * t["Ec"]
    in_words = nm * t["N"] * rows_in * cols_in * reps
    w_words = nr * nc * t["M"] * t["N"] * k2 * reps
    out_words = t["M"] * t["R"] * t["C"] * reps
    dram_bytes = (in_words + w_words + out_words) * bytes_per_word
    memory = np.ceil(dram_bytes / bw_bytes_per_cycle).astype(np.int64)
    cycles = np.maximum(compute, memory)
    return {"compute_cycles": compute, "memory_cycles": memory, "cycles": cycles,
            "in_words": in_words, "w_words": w_words, "out_words": out_words, "dram_bytes": dram_bytes}


def buffer_depths(Tr, Tc, t: dict) -> tuple:
    """Words per input, weight and output bank: the largest tile any of the layers uses."""
    tr, tc = np.minimum(Tr, t["R"]), np.minimum(Tc, t["C"])
    din = ((tr - 1) * t["S"] + t["Er"]) * ((tc - 1) * t["S"] + t["Ec"])
    return din.max(axis=-1), (t["Kr"] * t["Kc"]).max(axis=-1), (tr * tc).max(axis=-1)


def zhang15_resources(design: Zhang15Design, layers) -> ResourceUse:
    """DSPs and double-buffered BRAM of ``design`` sized for ``layers`` (a Layer, list or Network)."""
    layers = as_layers(layers)
    t = layer_table(layers)
    din, dw, dout = (int(x) for x in buffer_depths(design.Tr, design.Tc, t))
    bits = design.word_bits
    bufs = {"input": buffer_cost(design.Tn, din, bits), "weight": buffer_cost(design.Tm * design.Tn, dw, bits),
            "output": buffer_cost(design.Tm, dout, bits)}
    return ResourceUse(dsp=design.dsp, bram18=sum(b["bram18"] for b in bufs.values()),
                       lut=sum(b["lut"] for b in bufs.values()), port_bits=None, buffers=bufs)


def layer_result(layer: Layer, design: Zhang15Design, board: Board, res: ResourceUse,
                 with_resources: bool) -> FPGALayerResult:
    """Cost of one layer on ``design`` given the buffers sized in ``res`` (``with_resources``:
    attach the resource use to the result)."""
    t = layer_table([layer])
    bpw = design.word_bits // 8
    bw = board.ddr_bytes_per_cycle()
    r = {k: int(v[0]) for k, v in layer_terms(design.Tm, design.Tn, design.Tr, design.Tc, t, bpw, bw).items()}
    ops = 2 * layer.macs
    f_ghz = board.clock_mhz / 1e3
    roof = ops / r["compute_cycles"]                 # ops per cycle
    ctc = ops / r["dram_bytes"]                      # ops per byte
    attainable = min(roof, ctc * bw)
    s, er, ec = layer.stride, (layer.R - 1) * layer.dilation + 1, (layer.S - 1) * layer.dilation + 1
    terms = {
        "roof_gops": roof * f_ghz,
        "ctc_ops_per_byte": ctc,
        "bandwidth_gbs": board.ddr_bandwidth_gbs,
        "attainable_gops": attainable * f_ghz,
        "compute_cycles": r["compute_cycles"],
        "memory_cycles": r["memory_cycles"],
        "beta_in_words": design.Tn * ((design.Tr - 1) * s + er) * ((design.Tc - 1) * s + ec),
        "beta_w_words": design.Tm * design.Tn * layer.R * layer.S,
        "beta_out_words": design.Tm * design.Tr * design.Tc,
        "alpha_in": cdiv(layer.K, design.Tm) * cdiv(layer.C, design.Tn) * cdiv(layer.P, design.Tr)
        * cdiv(layer.Q, design.Tc) * layer.G * layer.N,
        "alpha_out": cdiv(layer.K, design.Tm) * cdiv(layer.P, design.Tr) * cdiv(layer.Q, design.Tc)
        * layer.G * layer.N,
        "traffic_words": {"input": r["in_words"], "weight": r["w_words"], "output": r["out_words"]},
    }
    cycles = r["cycles"]
    latency_ms = cycles / (board.clock_mhz * 1e3)
    e = energy_terms(board, cycles, res.dsp, res.bram18, r["dram_bytes"])
    return FPGALayerResult(
        name=layer.name, model=MODEL, engine="conv", macs=layer.macs, cycles=cycles,
        latency_ms=latency_ms, gops=ops / (latency_ms * 1e6),
        bound="compute" if r["compute_cycles"] >= r["memory_cycles"] else "memory",
        dram_bytes=r["dram_bytes"], energy_mj=e["energy_mj"], terms=terms,
        resources=res if with_resources else None)


def zhang15_layer(layer: Layer, design: Zhang15Design, board) -> FPGALayerResult:
    """One layer on a Zhang et al. design; resources are those this layer alone needs."""
    board = load_board(board)
    return layer_result(layer, design, board, zhang15_resources(design, [layer]), with_resources=True)


def zhang15_network(network: Network, design: Zhang15Design, board, *, allow_over_budget: bool = True,
                    mode: str = "design") -> FPGANetworkResult:
    """Every layer of ``network`` on one design (buffers sized for the largest tile of any layer).

    With ``allow_over_budget=False`` a design that does not fit the board raises ``FPGAError``
    naming each resource with the amount used and available.
    """
    return network_result(network, design, load_board(board), MODEL, zhang15_resources, layer_result,
                          allow_over_budget=allow_over_budget, mode=mode)
