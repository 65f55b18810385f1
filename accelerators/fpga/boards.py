"""FPGA boards as data (``boards/*.yaml``) and the on-chip memory / resource accounting shared by
the FPGA templates.

A ``Board`` is the budget a design must fit: DSP slices, BRAM36 blocks, LUTs, flip-flops, the
width of the memory ports the accelerator may use, the DDR bandwidth and a default clock, plus
the few numbers of the simple power model (``power.py``).

Memory model (used by both templates): a buffer is split into *banks* (one per parallel lane);
a bank of ``depth`` words of ``word_bits`` bits is a distributed (LUT) RAM when it holds at most
``LUTRAM_MAX_DEPTH`` words (one LUT6 stores 64 x 1 bit) and otherwise a stack of BRAM18
primitives (18 Kb each: 1K x 18, 512 x 36 or 2K x 9 aspect ratios). A double-buffered (ping-pong)
buffer counts twice.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from models.errors import CodesignError
from models.inputs import load_yaml_file, validate

from .board_schema import MAX_DESIGN_CHARS, BoardSpec

BOARD_DIR = Path(__file__).parent / "boards"
LUTRAM_MAX_DEPTH = 64          # banks up to this many words become distributed RAM
LUTRAM_BITS_PER_LUT = 64       # a LUT6 as a 64 x 1 RAM
BRAM18_WORDS = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))


class FPGAError(CodesignError):
    """An FPGA board, design or preset is invalid, or a design does not fit its board."""


@dataclass(frozen=True)
class PowerParams:
    """Inputs of the simple FPGA power model (see ``power.py``)."""

    static_w: float
    dsp_pj_per_cycle: float
    bram18_pj_per_cycle: float
    dram_pj_per_byte: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    dsp: int
    bram36: int
    lut: int
    ff: int
    clock_mhz: float
    ddr_bandwidth_gbs: float
    mem_port_bits: int
    dsp_kind: str = ""
    ddr_kind: str = ""
    power: PowerParams = field(default_factory=lambda: PowerParams(0.0, 0.0, 0.0, 0.0))

    @property
    def bram18(self) -> int:
        return 2 * self.bram36

    @property
    def port_words16(self) -> int:
        """How many 16-bit words per cycle the memory ports carry in total."""
        return self.mem_port_bits // 16

    def ddr_bytes_per_cycle(self, clock_mhz: float | None = None) -> float:
        """DDR bandwidth in bytes per accelerator clock cycle."""
        f = self.clock_mhz if clock_mhz is None else clock_mhz
        return self.ddr_bandwidth_gbs * 1e3 / f

    def with_limits(self, **overrides) -> "Board":
        """A copy with some budgets replaced (``dsp``, ``bram36``, ``lut``, ``ff``, ``clock_mhz``,
        ``ddr_bandwidth_gbs``, ``mem_port_bits``): e.g. to reserve DSPs for other logic."""
        allowed = {"dsp", "bram36", "lut", "ff", "clock_mhz", "ddr_bandwidth_gbs", "mem_port_bits"}
        bad = set(overrides) - allowed
        if bad:
            raise FPGAError(f"board limits: unknown key(s) {sorted(map(str, bad))} "
                            f"(known: {' '.join(sorted(allowed))})")
        return board_from_dict({**self.to_dict(), **overrides}, source=f"board {self.name} limit")

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "power"}
        d["power"] = self.power.to_dict()
        return d


# ---- loading and validation -----------------------------------------------------------------
def board_from_dict(d: dict, source: str = "board") -> Board:
    """Build and validate a ``Board`` from a plain dict (as parsed from YAML); the rules and
    bounds are those of ``board_schema.BoardSpec``."""
    spec = validate(BoardSpec, d, source, error=FPGAError)
    p = spec.power
    return Board(name=spec.name, part=spec.part, dsp_kind=spec.dsp_kind, ddr_kind=spec.ddr_kind,
                 dsp=spec.dsp, bram36=spec.bram36, lut=spec.lut, ff=spec.ff, mem_port_bits=spec.mem_port_bits,
                 clock_mhz=float(spec.clock_mhz), ddr_bandwidth_gbs=float(spec.ddr_bandwidth_gbs),
                 power=PowerParams(static_w=float(p.static_w), dsp_pj_per_cycle=float(p.dsp_pj_per_cycle),
                                   bram18_pj_per_cycle=float(p.bram18_pj_per_cycle),
                                   dram_pj_per_byte=float(p.dram_pj_per_byte)))


def board_names() -> list[str]:
    """Names of the boards shipped as data."""
    return sorted(p.stem for p in BOARD_DIR.glob("*.yaml"))


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def load_board(name_or_path) -> Board:
    """Load a board by name (``zcu102``, ``PYNQ_Z2`` ...) or a board YAML file by path."""
    if isinstance(name_or_path, Board):
        return name_or_path
    if not isinstance(name_or_path, (str, Path)):
        raise FPGAError(f"a board is a name or a YAML path, not {type(name_or_path).__name__}")
    s = str(name_or_path)
    p = Path(s)
    if not (s.endswith((".yaml", ".yml")) or _is_file(p)):
        key = s.strip().lower().replace("_", "-")
        if key not in board_names():
            shown = s if len(s) <= 80 else s[:77] + "..."
            raise FPGAError(f"unknown board '{shown}' (known: {', '.join(board_names())}; or give a YAML path)")
        p = BOARD_DIR / f"{key}.yaml"
        return board_from_dict(load_yaml_file(p, p.name, error=FPGAError), source=p.name)
    return board_from_dict(load_yaml_file(p, s, error=FPGAError), source=s)


# ---- on-chip memory and resource accounting ---------------------------------------------------
def bank_cost_array(depth_words, word_bits: int):
    """(BRAM18 primitives, LUTs) per bank for an array of bank depths (words of ``word_bits``)."""
    depth = np.asarray(depth_words, dtype=np.int64)
    small = depth <= LUTRAM_MAX_DEPTH
    luts = np.where(small & (depth > 0), word_bits * -(-depth // LUTRAM_BITS_PER_LUT), 0)
    if word_bits > 36:  # wider words: 36-bit slices side by side
        per, slices = 512, -(-word_bits // 36)
    else:
        per, slices = next(words for width, words in BRAM18_WORDS if word_bits <= width), 1
    bram18 = np.where(small, 0, slices * -(-depth // per))
    return bram18, luts


def bank_cost(depth_words: int, word_bits: int) -> tuple[int, int]:
    """(BRAM18 primitives, LUTs) for one memory bank of ``depth_words`` x ``word_bits``."""
    b, l = bank_cost_array(depth_words, word_bits)
    return int(b), int(l)


def buffer_cost(banks: int, depth_words: int, word_bits: int, copies: int = 2) -> dict:
    """Cost of a banked buffer (``copies=2``: double-buffered)."""
    b18, luts = bank_cost(depth_words, word_bits)
    return {"banks": banks, "depth_words": depth_words, "word_bits": word_bits, "copies": copies,
            "bram18": banks * copies * b18, "lut": banks * copies * luts}


@dataclass(frozen=True)
class ResourceUse:
    """What a design occupies: DSP slices, BRAM18 primitives, LUTs used as RAM, port bits."""

    dsp: int
    bram18: int
    lut: int
    port_bits: int | None = None
    buffers: dict = field(default_factory=dict, compare=False)

    @property
    def bram36(self) -> float:
        return self.bram18 / 2

    def to_dict(self) -> dict:
        return {"dsp": self.dsp, "bram36": self.bram36, "bram18": self.bram18, "lut": self.lut,
                "port_bits": self.port_bits, "buffers": self.buffers}


@dataclass(frozen=True)
class Violation:
    """One resource a design uses more of than its board has."""

    resource: str
    used: float
    available: float

    def message(self) -> str:
        return f"{self.resource} {self.used:g} used > {self.available:g} available"

    def to_dict(self) -> dict:
        return {"resource": self.resource, "used": self.used, "available": self.available}


def violations(use: ResourceUse, board: Board) -> list[Violation]:
    """Every limit of ``board`` that ``use`` breaks (empty list: the design fits)."""
    out = []
    if use.dsp > board.dsp:
        out.append(Violation("DSP", use.dsp, board.dsp))
    if use.bram18 > board.bram18:
        out.append(Violation("BRAM36", use.bram36, board.bram36))
    if use.lut > board.lut:
        out.append(Violation("LUT", use.lut, board.lut))
    if use.port_bits is not None and use.port_bits > board.mem_port_bits:
        out.append(Violation("memory port width (bits)", use.port_bits, board.mem_port_bits))
    return out


def over_budget_message(what: str, board: Board, found: list[Violation]) -> str:
    return f"{what} is over budget on {board.name}: " + "; ".join(v.message() for v in found)


# ---- helpers shared by the templates ----------------------------------------------------------
def cdiv(a, b):
    """Ceiling division for ints and int arrays."""
    return -(-a // b)


def as_layers(x) -> list:
    """A Layer, a Network or an iterable of layers as a list of layers."""
    from models.layer import Layer
    from models.network import Network

    if isinstance(x, Layer):
        return [x]
    if isinstance(x, Network):
        return list(x.layers)
    return list(x)


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[+-]?[0-9]+")


def parse_design_kv(text: str, what: str, str_keys=()) -> dict:
    """``"Tm=64,Tn=7,..."`` -> dict of ints (``str_keys`` stay strings); one clear error if
    malformed, a key is given twice or the text is longer than ``MAX_DESIGN_CHARS``. Ranges
    are checked by the template's schema."""
    if not isinstance(text, str):
        raise FPGAError(f"{what}: expected a string KEY=VALUE,..., not {type(text).__name__}")
    if len(text) > MAX_DESIGN_CHARS:
        raise FPGAError(f"{what}: {len(text):,} characters; accepted at most {MAX_DESIGN_CHARS:,}")
    out = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "=" not in part:
            raise FPGAError(f"{what}: expected KEY=VALUE, got {part!r}")
        k, v = part.split("=", 1)
        if not _KEY.fullmatch(k):
            raise FPGAError(f"{what}: {k!r} is not a parameter name")
        if k in out:
            raise FPGAError(f"{what}: {k} given twice")
        if k in str_keys:
            out[k] = v
            continue
        if not _INT.fullmatch(v):
            raise FPGAError(f"{what}: {k}={v!r} is not an integer")
        out[k] = int(v)
    if not out:
        raise FPGAError(f"{what}: empty design string")
    return out


def design_label(design) -> str:
    return ",".join(f"{k}={v}" for k, v in design.to_dict().items() if v is not None)
