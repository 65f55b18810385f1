"""Accelerator description: a spatial PE array over a three-level memory hierarchy.

Levels, innermost first: a per-PE register file (``rf``), a shared global buffer (``glb``)
and ``dram``. Each array dimension has a size and the loop dimensions it may parallelize (the
dataflow). Per-access energies are derived from an energy table (``energy.py``) unless a
level states them explicitly. Loaded from and saved to YAML; validated on load.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from models.errors import AcceleratorError
from models.layer import DATA_SPACES, DIMS

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


TIMING_KINDS: tuple[str, ...] = ("ideal", "systolic", "multicast")


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


BUFFERING: tuple[str, ...] = ("double", "single")


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
    """

    capacity_bytes: int | None
    bw_words_per_cycle: float | None
    read_energy_pj: float
    write_energy_pj: float
    split_bytes: dict | None = None
    bw_bits_per_cycle: float | None = None
    bypass: tuple[str, ...] = ()
    buffering: str = "double"
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
def _num(d: dict, key: str, where: str, *, positive=True, allow_none=False, integer=False):
    if key not in d:
        raise AcceleratorError(f"{where}: missing field '{key}'")
    v = d[key]
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise AcceleratorError(f"{where}: '{key}' must be a number, got {v!r}")
    if not math.isfinite(v) or (positive and v <= 0) or (not positive and v < 0):
        raise AcceleratorError(f"{where}: '{key}' must be {'> 0' if positive else '>= 0'}, got {v!r}")
    if integer:
        if int(v) != v:
            raise AcceleratorError(f"{where}: '{key}' must be an integer, got {v!r}")
        v = int(v)
    return v


BW_FIELDS = {"bw_words_per_cycle": 1, "bw_bytes_per_cycle": 8, "bw_bits_per_cycle": 1}


def _bandwidth(d: dict, where: str, is_dram: bool) -> tuple[float | None, float | None]:
    """``(words per cycle, bits per cycle or None)`` from whichever bandwidth field ``d`` gives."""
    given = [k for k in BW_FIELDS if k in d]
    if len(given) > 1:
        raise AcceleratorError(f"{where}: give one of {', '.join(given)}, not several")
    if not given:
        if is_dram:
            raise AcceleratorError(f"{where}: missing field 'bw_words_per_cycle' (or bw_bytes_per_cycle, "
                                   f"bw_bits_per_cycle)")
        return None, None
    key = given[0]
    v = _num(d, key, where, allow_none=not is_dram)
    if v is None or key == "bw_words_per_cycle":
        return v, None
    bits = v * BW_FIELDS[key]
    return bits / 16, bits


def _level(d: dict, name: str, table, is_dram: bool) -> MemoryLevel:
    where = f"accelerator.{name}"
    if not isinstance(d, dict):
        raise AcceleratorError(f"{where}: expected a mapping, got {type(d).__name__}")
    unknown = set(d) - {"capacity_bytes", "read_energy_pj", "write_energy_pj", "bypass", "buffering", *BW_FIELDS}
    if unknown:
        raise AcceleratorError(f"{where}: unknown field(s) {sorted(unknown)}")
    split = None
    cap_field = d.get("capacity_bytes")
    if isinstance(cap_field, dict):
        unknown = set(cap_field) - set(DATA_SPACES)
        if unknown:
            raise AcceleratorError(f"{where}.capacity_bytes: unknown data space(s) {sorted(unknown)} (known: W I O)")
        split = {k: _num(cap_field, k, f"{where}.capacity_bytes", integer=True) for k in DATA_SPACES if k in cap_field}
        cap = sum(split.values())
    elif is_dram:
        cap = None if cap_field is None else _num(d, "capacity_bytes", where, integer=True)
    else:
        cap = _num(d, "capacity_bytes", where, integer=True)
    bw, bits = _bandwidth(d, where, is_dram)
    by_space = None
    if isinstance(d.get("read_energy_pj"), dict) or isinstance(d.get("write_energy_pj"), dict):
        by_space = {}
        for x in DATA_SPACES:
            pair = []
            for key in ("read_energy_pj", "write_energy_pj"):
                v = d.get(key)
                if not isinstance(v, dict) or set(v) - set(DATA_SPACES):
                    raise AcceleratorError(f"{where}.{key}: give both energies per data space, a mapping of "
                                           f"W, I and O, got {v!r}")
                pair.append(_num(v, x, f"{where}.{key}", positive=False) if x in v else 0.0)
            by_space[x] = tuple(pair)
        rd, wr = by_space["I"]
    elif "read_energy_pj" in d or "write_energy_pj" in d:
        rd = _num(d, "read_energy_pj", where, positive=False)
        wr = _num(d, "write_energy_pj", where, positive=False)
    else:
        rd = wr = table.access_energy_pj(name, cap)
    bypass = d.get("bypass", [])
    if isinstance(bypass, str):
        bypass = [bypass]
    if not isinstance(bypass, list) or any(x not in DATA_SPACES for x in bypass):
        raise AcceleratorError(f"{where}.bypass: expected a list of data spaces (W, I, O), got {bypass!r}")
    if bypass and is_dram:
        raise AcceleratorError(f"{where}.bypass: DRAM holds every data space; it cannot be bypassed")
    if split is not None and set(bypass) & set(split):
        raise AcceleratorError(f"{where}: {sorted(set(bypass) & set(split))} both bypassed and given a capacity")
    if len(bypass) == len(DATA_SPACES):
        raise AcceleratorError(f"{where}.bypass: a level that holds no data space should be left out; "
                               f"it bypasses W, I and O")
    buffering = d.get("buffering", "double")
    if buffering not in BUFFERING or (is_dram and "buffering" in d):
        raise AcceleratorError(f"{where}.buffering: expected one of {', '.join(BUFFERING)} (on-chip levels "
                               f"only), got {buffering!r}")
    return MemoryLevel(capacity_bytes=cap, bw_words_per_cycle=bw, read_energy_pj=rd,
                       write_energy_pj=wr, split_bytes=split, bw_bits_per_cycle=bits,
                       bypass=tuple(x for x in DATA_SPACES if x in bypass), buffering=buffering,
                       energy_by_space=by_space)


def accelerator_from_dict(d: dict, source: str = "accelerator") -> Accelerator:
    """Build and validate an ``Accelerator`` from a plain dict (as parsed from YAML)."""
    from .energy import load_energy_table

    if not isinstance(d, dict):
        raise AcceleratorError(f"{source}: expected a mapping at top level")
    known = {"name", "clock_mhz", "word_bits", "array", "array_timing", "rf", "glb", "dram", "mac_energy_pj",
             "noc_energy_pj", "energy_table", "notes", "stores_padding"}
    unknown = set(d) - known
    if unknown:
        raise AcceleratorError(f"{source}: unknown field(s) {sorted(unknown)}")
    for key in ("array", "rf", "glb", "dram"):
        if key not in d:
            raise AcceleratorError(f"{source}: missing field '{key}'")
    table = load_energy_table(d.get("energy_table") or "eyeriss-65nm")
    arr = d["array"]
    if not isinstance(arr, list) or not 1 <= len(arr) <= 3:
        raise AcceleratorError(f"{source}: 'array' must list 1 to 3 dimensions")
    dims = []
    for i, a in enumerate(arr):
        where = f"{source}.array[{i}]"
        if not isinstance(a, dict):
            raise AcceleratorError(f"{where}: expected a mapping with 'size' and 'loops'")
        size = _num(a, "size", where, integer=True)
        loops = a.get("loops")
        if isinstance(loops, str):
            loops = [loops]
        if not loops or not isinstance(loops, list):
            raise AcceleratorError(f"{where}: 'loops' must name at least one loop dimension")
        bad = [x for x in loops if x not in DIMS]
        if bad:
            raise AcceleratorError(f"{where}: unknown loop dimension(s) {bad} (known: {' '.join(DIMS)})")
        fused = a.get("fused", False)
        if not isinstance(fused, bool):
            raise AcceleratorError(f"{where}: 'fused' must be true or false, got {fused!r}")
        unknown = set(a) - {"size", "loops", "fused"}
        if unknown:
            raise AcceleratorError(f"{where}: unknown field(s) {sorted(unknown)}")
        if len(set(loops)) != len(loops):
            raise AcceleratorError(f"{where}: a loop dimension is listed twice in {loops}")
        dims.append(ArrayDim(size=size, loops=tuple(loops), fused=fused))
    wb = d.get("word_bits", {"W": 16, "I": 16, "O": 16})
    if isinstance(wb, int):
        wb = {k: wb for k in DATA_SPACES}
    if not isinstance(wb, dict) or set(wb) != set(DATA_SPACES):
        raise AcceleratorError(f"{source}: 'word_bits' must give W, I and O (or one integer)")
    wb = {k: _num(wb, k, f"{source}.word_bits", integer=True) for k in DATA_SPACES}
    if any(v > 64 for v in wb.values()):
        raise AcceleratorError(f"{source}.word_bits: widths must be 1 to 64 bits, got {wb}")
    stores_padding = d.get("stores_padding", False)
    if not isinstance(stores_padding, bool):
        raise AcceleratorError(f"{source}: 'stores_padding' must be true or false, got {stores_padding!r}")
    mac = d["mac_energy_pj"] if "mac_energy_pj" in d else table.mac_energy_pj(wb)
    noc = d["noc_energy_pj"] if "noc_energy_pj" in d else table.noc_energy_pj()
    mac = _num({"mac_energy_pj": mac}, "mac_energy_pj", source, positive=False)
    noc = _num({"noc_energy_pj": noc}, "noc_energy_pj", source, positive=False)
    return Accelerator(
        name=str(d.get("name", "custom")),
        array=tuple(dims),
        rf=_level(d["rf"], "rf", table, False),
        glb=_level(d["glb"], "glb", table, False),
        dram=_level(d["dram"], "dram", table, True),
        mac_energy_pj=mac,
        noc_energy_pj=noc,
        word_bits=wb,
        clock_mhz=_num(d, "clock_mhz", source) if "clock_mhz" in d else 200.0,
        energy_table=table.name,
        notes=str(d.get("notes", "")).strip(),
        timing=_timing(d.get("array_timing"), f"{source}.array_timing"),
        stores_padding=stores_padding,
    )


def _timing(d, where: str) -> ArrayTiming:
    if d is None:
        return ArrayTiming()
    if isinstance(d, str):
        d = {"kind": d}
    if not isinstance(d, dict):
        raise AcceleratorError(f"{where}: expected a mapping with 'kind' ({' | '.join(TIMING_KINDS)})")
    unknown = set(d) - {"kind", "stationary", "preload_cycles", "setup_cycles"}
    if unknown:
        raise AcceleratorError(f"{where}: unknown field(s) {sorted(unknown)}")
    kind = d.get("kind", "ideal")
    if kind not in TIMING_KINDS:
        raise AcceleratorError(f"{where}: kind {kind!r} is not one of {', '.join(TIMING_KINDS)}")
    st = d.get("stationary")
    if st is not None and st not in DATA_SPACES:
        raise AcceleratorError(f"{where}: stationary {st!r} must be one of W, I, O")
    pre = None if d.get("preload_cycles") is None else _num(d, "preload_cycles", where, positive=False, integer=True)
    setup = _num(d, "setup_cycles", where, positive=False, integer=True) if "setup_cycles" in d else 0
    if pre is not None and kind != "systolic":
        raise AcceleratorError(f"{where}: preload_cycles applies to a systolic array only")
    t = ArrayTiming(kind=kind, stationary=st, preload_cycles=pre, setup_cycles=setup)
    if kind != "ideal" and st is None and (kind == "systolic" or setup):
        raise AcceleratorError(f"{where}: a {kind} array needs 'stationary' (W, I or O): the operand whose "
                               f"register-file tile each fold loads")
    return t


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_accelerator(name_or_path) -> Accelerator:
    """Load a preset by name (``eyeriss``) or an accelerator YAML file by path."""
    if isinstance(name_or_path, Accelerator):
        return name_or_path
    s = str(name_or_path)
    p = Path(s)
    if not (s.endswith((".yaml", ".yml")) or p.is_file()):
        p = PRESET_DIR / f"{s.lower()}.yaml"
        if not p.is_file():
            raise AcceleratorError(f"unknown accelerator '{s}' (presets: {', '.join(preset_names())}; or give a YAML path)")
    elif not p.is_file():
        raise AcceleratorError(f"accelerator file not found: {s}")
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise AcceleratorError(f"{p.name}: malformed YAML ({str(e).splitlines()[0]})") from None
    return accelerator_from_dict(d, source=p.name)
