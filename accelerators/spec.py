"""Accelerator description: a spatial PE array over a three-level memory hierarchy.

Levels, innermost first: a per-PE register file (``rf``), a shared global buffer (``glb``)
and ``dram``. Each array dimension has a size and the loop dimensions it may parallelize (the
dataflow). Per-access energies are derived from an energy table (``energy.py``) unless a
level states them explicitly. Loaded from and saved to YAML; validated on load by the schema
in ``schema.py``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from models.errors import AcceleratorError
from models.inputs import load_yaml_file, validate
from models.layer import DATA_SPACES

from .schema import BUFFERING, BW_FIELDS, TIMING_KINDS, AcceleratorSpec, OnChipLevelSpec  # noqa: F401

LEVELS: tuple[str, ...] = ("rf", "glb", "dram")
PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class ArrayDim:
    """One array dimension: ``size`` PEs that may unroll the loop dimensions in ``loops``.

    Unfused (the default), each loop gets its own spatial factor and the factors' product must
    fit ``size``. ``fused`` (im2col-style, as SCALE-Sim, TPU-like and many FPGA arrays work): the
    dimension unrolls the flattened product of its loops' spatial factors, however large, in
    ``ceil(product / size)`` passes (one ceil fold over the product)."""

    size: int
    loops: tuple[str, ...]
    fused: bool = False

    def to_dict(self):
        d = {"size": self.size, "loops": list(self.loops)}
        if self.fused:
            d["fused"] = True
        return d


@dataclass(frozen=True)
class ArrayTiming:
    """How operands move through the PE array, and what each *fold* costs beyond its iterations.

    A fold is one (re)load of the ``stationary`` operand's register-file tile: the array runs
    the register-file loops on it, then the next tile comes in.

    - ``ideal``: no cost per fold (the array is a bank of independent MACs).
    - ``systolic``: operands enter skewed from the array's edges and shift PE to PE. Every fold
      pays the skew fill and drain, ``sum(size - 1)`` over the array dimensions, and the
      preload (or, output-stationary, the unload) of the stationary tile, one array row per
      cycle: ``preload_cycles``, by default the first array dimension's size.
    - ``multicast``: operands are broadcast on buses (Eyeriss-like NoC); every fold pays
      ``setup_cycles``.

    ``setup_cycles`` adds to every kind but ``ideal``.
    """

    kind: str = "ideal"
    stationary: str | None = None
    preload_cycles: int | None = None
    setup_cycles: int = 0

    def fold_overhead(self, array) -> int:
        """Cycles each fold costs on top of its iterations, on ``array`` (the ArrayDims)."""
        if self.kind == "systolic":
            pre = array[0].size if self.preload_cycles is None else self.preload_cycles
            return pre + sum(a.size - 1 for a in array) + self.setup_cycles
        if self.kind == "multicast":
            return self.setup_cycles
        return 0

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        if self.stationary is not None:
            d["stationary"] = self.stationary
        if self.preload_cycles is not None:
            d["preload_cycles"] = self.preload_cycles
        if self.setup_cycles:
            d["setup_cycles"] = self.setup_cycles
        return d


@dataclass(frozen=True)
class MemoryLevel:
    """One memory level. ``capacity_bytes`` is per PE for the register file.

    ``split_bytes`` (optional) gives a separate capacity per data space (W, I, O); then the
    shared ``capacity_bytes`` is their sum. Bandwidth is in words per cycle (any data space's
    word counts one) or, with ``bw_bits_per_cycle``, in bits: then a word of each data space
    costs its ``word_bits`` (``bw_words_per_cycle`` then holds the equivalent in 16-bit words,
    for display). ``None`` means the level is never a roof (register files next to the MAC).
    ``bypass``: data spaces this level does not hold (they go between its child and its parent
    directly). ``buffering``: ``double`` (a tile refilled during the layer takes twice its size,
    so the next one loads while the array works on it: the overlap the latency assumes) or
    ``single`` (one copy; transfers into the level wait for the array).
    ``access_bits`` (global buffer, DRAM; an int or per data space): the width of one physical
    access. A transfer of ``n`` words of ``b`` bits then costs ``ceil(n*b / access_bits)`` whole
    accesses of energy (a narrow transfer pays for the full width); transfers are the refills and
    drains of the tiles below (``docs/costmodel.md``). ``None``: energy per word moved.
    """

    capacity_bytes: int | None
    bw_words_per_cycle: float | None
    read_energy_pj: float
    write_energy_pj: float
    split_bytes: dict | None = None
    bw_bits_per_cycle: float | None = None
    bypass: tuple[str, ...] = ()
    buffering: str = "double"
    access_bits: int | dict | None = None
    # per data space (read, write) energies per 16-bit word, when the YAML gives them per space
    # (separate physical buffers, as in ZigZag's per-operand memories); then read_energy_pj and
    # write_energy_pj hold the input's, for display
    energy_by_space: dict | None = None

    def energies(self, space: str) -> tuple[float, float]:
        """(read, write) energy per 16-bit word of ``space`` at this level."""
        if self.energy_by_space is not None:
            return self.energy_by_space[space]
        return self.read_energy_pj, self.write_energy_pj

    def holds(self, space: str) -> bool:
        return space not in self.bypass

    def access_bits_of(self, space: str) -> int | None:
        """Bits of one physical access serving ``space`` (``None``: energy per word)."""
        if isinstance(self.access_bits, dict):
            return self.access_bits.get(space)
        return self.access_bits

    def to_dict(self):
        d = asdict(self)
        split = d.pop("split_bytes")
        if split is not None:
            d["capacity_bytes"] = dict(split)  # the loader's form: a per-data-space mapping
        bits = d.pop("bw_bits_per_cycle")
        if bits is not None:
            d.pop("bw_words_per_cycle")
            d = {"capacity_bytes": d.pop("capacity_bytes"), "bw_bits_per_cycle": bits, **d}
        if not self.bypass:
            d.pop("bypass")
        else:
            d["bypass"] = list(self.bypass)
        if self.buffering == "double":
            d.pop("buffering")
        if d["access_bits"] is None:
            d.pop("access_bits")
        by_space = d.pop("energy_by_space")
        if by_space is not None:
            d["read_energy_pj"] = {x: by_space[x][0] for x in DATA_SPACES}
            d["write_energy_pj"] = {x: by_space[x][1] for x in DATA_SPACES}
        return d


@dataclass(frozen=True)
class Accelerator:
    name: str
    array: tuple[ArrayDim, ...]
    rf: MemoryLevel
    glb: MemoryLevel
    dram: MemoryLevel
    mac_energy_pj: float
    noc_energy_pj: float
    word_bits: dict = field(default_factory=lambda: {"W": 16, "I": 16, "O": 16})
    clock_mhz: float = 200.0
    energy_table: str = ""
    notes: str = ""
    timing: ArrayTiming = field(default_factory=ArrayTiming)
    # zero padding is generated on chip (never stored or moved) unless the accelerator stores it
    stores_padding: bool = False
    # the innermost level that stores finished outputs at the activation width (word_bits I):
    # "dram" (narrowed on the way off chip) or "glb" (a requantization unit between the array
    # and the global buffer, as TPU v1's activation pipeline); partial sums keep word_bits O
    narrow_outputs_at: str = "dram"

    # ---- derived ------------------------------------------------------------------------
    @property
    def num_pes(self) -> int:
        return math.prod(a.size for a in self.array)

    @property
    def onchip_bytes(self) -> int:
        return self.rf.capacity_bytes * self.num_pes + self.glb.capacity_bytes

    def level(self, name: str) -> MemoryLevel:
        return getattr(self, name)

    def fingerprint(self) -> str:
        """Stable hash of everything that changes a cost (not the name or notes)."""
        d = self.to_dict()
        for k in ("name", "notes", "energy_table"):
            d.pop(k, None)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_name(self, name: str) -> "Accelerator":
        return replace(self, name=name)

    # ---- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "clock_mhz": self.clock_mhz,
            "word_bits": dict(self.word_bits),
            "array": [a.to_dict() for a in self.array],
            **({"array_timing": self.timing.to_dict()} if self.timing.kind != "ideal" else {}),
            **({"stores_padding": True} if self.stores_padding else {}),
            **({"narrow_outputs_at": self.narrow_outputs_at} if self.narrow_outputs_at != "dram" else {}),
            "rf": self.rf.to_dict(),
            "glb": self.glb.to_dict(),
            "dram": self.dram.to_dict(),
            "mac_energy_pj": self.mac_energy_pj,
            "noc_energy_pj": self.noc_energy_pj,
            "energy_table": self.energy_table,
            "notes": self.notes,
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path) -> None:
        Path(path).write_text(self.to_yaml())


# ---- loading and validation ---------------------------------------------------------------
def _level(spec: OnChipLevelSpec, name: str, table) -> MemoryLevel:
    cap = spec.capacity_bytes
    split = None
    if isinstance(cap, dict):
        split, cap = cap, sum(cap.values())
    bw, bits = spec.bandwidth()
    rd, wr = spec.read_energy_pj, spec.write_energy_pj
    by_space = None
    if isinstance(rd, dict):
        by_space = {x: (rd.get(x, 0.0), wr.get(x, 0.0)) for x in DATA_SPACES}
        rd, wr = by_space["I"]
    elif rd is None:
        rd = wr = table.access_energy_pj(name, cap)
    return MemoryLevel(capacity_bytes=cap, bw_words_per_cycle=bw, read_energy_pj=rd,
                       write_energy_pj=wr, split_bytes=split, bw_bits_per_cycle=bits,
                       bypass=spec.bypass, buffering=spec.buffering, access_bits=spec.access_bits,
                       energy_by_space=by_space)


def accelerator_from_dict(d: dict, source: str = "accelerator") -> Accelerator:
    """Build and validate an ``Accelerator`` from a plain dict (as parsed from YAML).

    The rules and bounds are those of ``schema.AcceleratorSpec``; any violation is one
    ``AcceleratorError`` line naming ``source``, the field, the value and what is accepted."""
    from .energy import load_energy_table

    spec = validate(AcceleratorSpec, d, source, error=AcceleratorError)
    try:
        table = load_energy_table(spec.energy_table or "eyeriss-65nm")
    except AcceleratorError as e:
        raise AcceleratorError(f"{source}: energy_table: {e}") from None
    wb = spec.word_bits
    mac = spec.mac_energy_pj if spec.mac_energy_pj is not None else table.mac_energy_pj(wb)
    noc = spec.noc_energy_pj if spec.noc_energy_pj is not None else table.noc_energy_pj()
    t = spec.array_timing
    timing = ArrayTiming() if t is None else ArrayTiming(kind=t.kind, stationary=t.stationary,
                                                         preload_cycles=t.preload_cycles,
                                                         setup_cycles=t.setup_cycles)
    return Accelerator(
        name=spec.name,
        array=tuple(ArrayDim(size=a.size, loops=a.loops, fused=a.fused) for a in spec.array),
        rf=_level(spec.rf, "rf", table),
        glb=_level(spec.glb, "glb", table),
        dram=_level(spec.dram, "dram", table),
        mac_energy_pj=mac,
        noc_energy_pj=noc,
        word_bits=wb,
        clock_mhz=spec.clock_mhz,
        energy_table=table.name,
        notes=spec.notes.strip(),
        timing=timing,
        stores_padding=spec.stores_padding,
        narrow_outputs_at=spec.narrow_outputs_at,
    )


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def load_accelerator(name_or_path) -> Accelerator:
    """Load a preset by name (``eyeriss``) or an accelerator YAML file by path."""
    if isinstance(name_or_path, Accelerator):
        return name_or_path
    if not isinstance(name_or_path, (str, Path)):
        raise AcceleratorError(f"an accelerator is a preset name or a YAML path, not {type(name_or_path).__name__}")
    s = str(name_or_path)
    p = Path(s)
    if not (s.endswith((".yaml", ".yml")) or _is_file(p)):
        if s.lower() not in preset_names():
            if os.path.exists(s):
                raise AcceleratorError(f"{s}: not a regular file (an accelerator is a preset name or a YAML file)")
            shown = s if len(s) <= 80 else s[:77] + "..."
            raise AcceleratorError(f"unknown accelerator '{shown}' (presets: {', '.join(preset_names())}; "
                                   f"or give a YAML path)")
        p = PRESET_DIR / f"{s.lower()}.yaml"
        return accelerator_from_dict(load_yaml_file(p, p.name, error=AcceleratorError), source=p.name)
    return accelerator_from_dict(load_yaml_file(p, s, error=AcceleratorError), source=s)
