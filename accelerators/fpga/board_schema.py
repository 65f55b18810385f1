"""Schemas of the FPGA inputs: the board YAML and the tiling-design parameters.

``boards.py`` builds a ``Board`` from a validated ``BoardSpec``; ``hotnas.py`` and ``zhang15.py``
validate their designs (given as ``"Tm=..,Tn=.."`` strings, mappings or keyword arguments) with
``HotNASDesignSpec`` and ``Zhang15DesignSpec``. The bounds are far above any real device (the
largest FPGAs have about 15,000 DSP slices) but keep every loop and allocation of the templates
and of the design search small.
"""
from __future__ import annotations

from typing import ClassVar, Optional

from ..schema import Spec, number, one_of, text

# ---- bounds of a board ----
MAX_DSP = 100_000                    # DSP slices
MAX_BRAM36 = 100_000                 # BRAM36 blocks
MAX_LUT = 100_000_000                # LUTs
MAX_FF = 200_000_000                 # flip-flops
MIN_PORT_BITS, MAX_PORT_BITS = 16, 2_048    # total memory-port width: 4x the four 128-bit ports of a Zynq MPSoC
MIN_BOARD_MHZ, MAX_BOARD_MHZ = 1.0, 5_000.0
MIN_DDR_GBS, MAX_DDR_GBS = 1e-3, 100_000.0
MAX_STATIC_W = 10_000.0              # static power
MAX_PJ = 1e6                         # energy per DSP / BRAM18 cycle or per DRAM byte
MAX_LABEL_CHARS = 200                # name, part, dsp_kind, ddr_kind

# ---- bounds of a design ----
MAX_UNROLL = 65_536                  # Tm, Tn, Tmd: MACs along one unrolled loop
MAX_TILE = 65_536                    # Tr, Tc: rows / cols of a tile
MAX_PORT_WORDS = MAX_PORT_BITS // 16  # Ip, Op, Wp: 16-bit words per cycle
MAX_KERNEL = 1_024                   # Tk: the largest kernel the weight buffers hold
MAX_DESIGN_CHARS = 1_000             # a design string
ZHANG15_DTYPES = ("fp32", "fix16")   # zhang15.DTYPES gives their widths and DSPs per MAC


Label = text(MAX_LABEL_CHARS, allow_numbers=True)
Pj = number(0, MAX_PJ, unit="pJ")


class PowerSpec(Spec):
    """The numbers of the simple power model (``power.py``); a number left out is 0."""

    static_w: number(0, MAX_STATIC_W, unit="W") = 0.0
    dsp_pj_per_cycle: Pj = 0.0
    bram18_pj_per_cycle: Pj = 0.0
    dram_pj_per_byte: Pj = 0.0


class BoardSpec(Spec):
    """A board YAML (``boards/*.yaml``): the budget a design must fit."""

    _mapping_hint: ClassVar[str] = " at top level"
    name: Label = "custom"
    part: Label = ""
    dsp_kind: Label = ""
    ddr_kind: Label = ""
    dsp: number(1, MAX_DSP, integer=True, unit="DSP slices")
    bram36: number(1, MAX_BRAM36, integer=True, unit="BRAM36 blocks")
    lut: number(1, MAX_LUT, integer=True, unit="LUTs")
    ff: number(1, MAX_FF, integer=True, unit="flip-flops")
    mem_port_bits: number(MIN_PORT_BITS, MAX_PORT_BITS, integer=True, unit="bits")
    clock_mhz: number(MIN_BOARD_MHZ, MAX_BOARD_MHZ, unit="MHz")
    ddr_bandwidth_gbs: number(MIN_DDR_GBS, MAX_DDR_GBS, unit="GB/s")
    power: PowerSpec = PowerSpec()


def _design_int(lo: int, hi: int, unit: str = ""):
    # integers only: a design parameter given as 4.0 is a mistake somewhere upstream
    return number(lo, hi, integer=True, unit=unit, integral_floats=False)


Unroll = _design_int(1, MAX_UNROLL, "MACs")
Tile = _design_int(1, MAX_TILE)
PortWords = _design_int(1, MAX_PORT_WORDS, "words per cycle")


class HotNASDesignSpec(Spec):
    """A HotNAS ZCU102-template design (see ``hotnas.HotNASDesign``)."""

    Tm: Unroll
    Tn: Unroll
    Tr: Tile
    Tc: Tile
    Tmd: _design_int(0, MAX_UNROLL, "MACs")
    Ip: PortWords
    Op: PortWords
    Wp: PortWords
    Tk: Optional[_design_int(1, MAX_KERNEL)] = None


class Zhang15DesignSpec(Spec):
    """A Zhang et al. FPGA'15 design (see ``zhang15.Zhang15Design``)."""

    Tm: Unroll
    Tn: Unroll
    Tr: Tile
    Tc: Tile
    dtype: one_of(ZHANG15_DTYPES, "dtype", "must be one of") = "fp32"
