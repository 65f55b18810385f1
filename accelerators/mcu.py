"""Microcontroller boards as data (``mcu_boards.yaml``): the SRAM a network's activations and the
Flash its weights must fit, for memory-constrained sub-network search (``codesign search --mcu``).

``load_mcu("stm32f746")`` gives an ``McuBoard``; ``mcu_names()`` lists the shipped boards. kB is
1024 bytes. What a network needs of each is computed by ``accelerators.memory``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from models.errors import CodesignError
from models.inputs import load_yaml_file, validate

from .schema import Spec, number, text

BOARDS_FILE = Path(__file__).with_name("mcu_boards.yaml")

# ---- bounds of a board (far above any microcontroller; they keep every check finite) ----
MAX_SRAM_KB = 64 * 1024          # 64 MB
MAX_FLASH_KB = 1024 * 1024       # 1 GB
MIN_CLOCK_MHZ, MAX_CLOCK_MHZ = 1.0, 10_000.0
MAX_LABEL_CHARS = 200
MAX_NOTE_CHARS = 2_000
MAX_BOARDS = 1_000


class McuError(CodesignError):
    """An unknown or invalid microcontroller board."""


class McuBoardSpec(Spec):
    """One entry of ``mcu_boards.yaml``."""

    name: text(MAX_LABEL_CHARS, allow_numbers=True)
    core: text(MAX_LABEL_CHARS) = ""
    clock_mhz: number(MIN_CLOCK_MHZ, MAX_CLOCK_MHZ, unit="MHz")
    sram_kb: number(0, MAX_SRAM_KB, lo_open=True, unit="kB")
    flash_kb: number(0, MAX_FLASH_KB, lo_open=True, unit="kB")
    note: text(MAX_NOTE_CHARS, multiline=True) = ""


@dataclass(frozen=True)
class McuBoard:
    key: str          # the name --mcu accepts
    name: str
    core: str
    clock_mhz: float
    sram_kb: float
    flash_kb: float
    note: str = ""

    @property
    def sram_bytes(self) -> int:
        return int(self.sram_kb * 1024)

    @property
    def flash_bytes(self) -> int:
        return int(self.flash_kb * 1024)

    def to_dict(self) -> dict:
        return asdict(self)


def _key(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def read_boards(path) -> dict[str, McuBoard]:
    """The boards of a board file (``mcu_boards.yaml``'s format), each checked against its bounds."""
    data = load_yaml_file(path, Path(path).name, error=McuError)
    if not isinstance(data, dict) or not data:
        raise McuError(f"{Path(path).name}: expected a mapping of board names to boards")
    if len(data) > MAX_BOARDS:
        raise McuError(f"{Path(path).name}: {len(data)} boards; accepted at most {MAX_BOARDS}")
    out = {}
    for k, v in data.items():
        key = _key(k)
        if key in out:
            raise McuError(f"{Path(path).name}: board {k!r} given twice")
        spec = validate(McuBoardSpec, v, f"{Path(path).name}: {k}", error=McuError)
        out[key] = McuBoard(key=key, name=spec.name, core=spec.core, clock_mhz=float(spec.clock_mhz),
                            sram_kb=float(spec.sram_kb), flash_kb=float(spec.flash_kb), note=spec.note)
    return out


@lru_cache(maxsize=1)
def _boards() -> dict[str, McuBoard]:
    return read_boards(BOARDS_FILE)


def mcu_names() -> list[str]:
    """Names ``load_mcu`` accepts (the keys of ``mcu_boards.yaml``)."""
    return sorted(_boards())


def load_mcu(name: str) -> McuBoard:
    """The board called ``name`` (case-insensitive, ``_`` or ``-``); ``McuError`` lists the known
    ones if there is none."""
    if isinstance(name, McuBoard):
        return name
    if not isinstance(name, str):
        raise McuError(f"an MCU board is a name, not {type(name).__name__}")
    boards = _boards()
    key = _key(name)
    if key not in boards:
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise McuError(f"unknown MCU board '{shown}' (known: {', '.join(sorted(boards))})")
    return boards[key]
