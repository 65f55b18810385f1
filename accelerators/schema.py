"""Schemas of the accelerator description (YAML) and of the energy-table YAML.

One pydantic model per format: it checks types, ranges and cross-field rules, and refuses
unknown fields. ``spec.py`` and ``energy.py`` turn a validated model into their runtime
dataclasses; nothing here computes a cost. Numbers keep the type they were given in (an integer
stays an integer), so a description validates to the same numbers it held before.

Every size that drives work or memory has an upper bound below (far above any real
accelerator), and every rate a lower bound, so no description can make the cost model loop for
long, overflow or produce an infinite latency. ``Spec``, ``number``, ``text``, ``one_of`` and
``Flag`` are shared with the FPGA board and design schemas.
"""
from __future__ import annotations

import math
import numbers
from typing import Annotated, Any, ClassVar, Optional

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainValidator, ValidationError,
                      model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from models.layer import DATA_SPACES, DIMS

# ---- bounds of the accelerator description ----
MAX_ARRAY_DIMS = 3                   # PE array dimensions
MAX_ARRAY_DIM_SIZE = 65_536          # PEs along one array dimension
MAX_PES = 2 ** 24                    # PEs in all (16,777,216)
MAX_CAPACITY_BYTES = 2 ** 40         # one level's capacity (per PE for the register file): 1 TiB
MIN_BW, MAX_BW = 1e-6, 1e12          # bandwidth, in the unit of the field given (words, bytes or bits per cycle)
MAX_ENERGY_PJ = 1e6                  # energy of one access, MAC or NoC transfer (1 uJ)
MIN_CLOCK_MHZ, MAX_CLOCK_MHZ = 1e-3, 1e5   # 1 kHz to 100 GHz
MAX_WORD_BITS = 64                   # width of one word of a data space
MAX_ACCESS_BITS = 65_536             # width of one physical access of a memory level
MAX_FOLD_CYCLES = 1_000_000          # array_timing preload_cycles and setup_cycles
MAX_NAME_CHARS = 200                 # name fields
MAX_NOTES_CHARS = 10_000             # free-text notes
MAX_REF_CHARS = 1_024                # an energy-table name or path

# ---- bounds of the energy table ----
MAX_ENERGY_RATIO = 1e6               # a level's energy per access relative to one MAC
MAX_EXPONENT = 2.0                   # mac_bits_exponent and scaling_exponent

TIMING_KINDS: tuple[str, ...] = ("ideal", "systolic", "multicast")
BUFFERING: tuple[str, ...] = ("double", "single")
NARROW_AT: tuple[str, ...] = ("dram", "glb")
# bandwidth fields and the bits in one unit of each (unused for words)
BW_FIELDS = {"bw_words_per_cycle": 1, "bw_bytes_per_cycle": 8, "bw_bits_per_cycle": 1}


# ---- shared building blocks ------------------------------------------------------------------
class Spec(BaseModel):
    """Base of every input schema: a mapping, no unknown field, every required field present.

    Those three are checked before any field so that the error names the field itself (``rf.ports:
    unknown field``) rather than pydantic's generic text. ``_shorthand`` may first turn a short
    form (a string, a number) into the mapping; ``_presence`` checks rules about which fields
    are given (not their values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _mapping_hint: ClassVar[str] = ""
    _key_kind: ClassVar[str] = "field"

    @model_validator(mode="before")
    @classmethod
    def _mapping_and_fields(cls, data):
        data = cls._shorthand(data)
        if data is None:
            raise ValueError(f"empty: expected a mapping{cls._mapping_hint}")
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping{cls._mapping_hint}")
        fields, required = _field_names(cls)
        if not (data.keys() <= fields and required <= data.keys()):
            known = ", ".join(cls.model_fields)
            errs = [InitErrorDetails(type=PydanticCustomError(
                        "unknown_field", f"unknown {cls._key_kind} (known: {{known}})", {"known": known}),
                        loc=(str(k),), input=v) for k, v in data.items() if k not in fields]
            errs += [InitErrorDetails(type=PydanticCustomError("missing", "missing field"), loc=(k,), input=None)
                     for k in cls.model_fields if k in required and k not in data]
            raise ValidationError.from_exception_data(cls.__name__, errs)
        cls._presence(data)
        return data

    @classmethod
    def _shorthand(cls, data):
        return data

    @classmethod
    def _presence(cls, data: dict) -> None:
        pass


_FIELDS: dict[type, tuple[frozenset, frozenset]] = {}


def _field_names(cls) -> tuple[frozenset, frozenset]:
    """(all field names, required field names) of a schema class, computed once."""
    if cls not in _FIELDS:
        _FIELDS[cls] = (frozenset(cls.model_fields),
                        frozenset(k for k, f in cls.model_fields.items() if f.is_required()))
    return _FIELDS[cls]


def _fmt(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def check_number(v, name: str, lo, hi, *, integer: bool = False, lo_open: bool = False,
                 unit: str = "", integral_floats: bool = True):
    """``v`` if it is a finite number in range (an int when ``integer``), else a ValueError that
    states the accepted range. Booleans and strings are not numbers; numpy scalars become Python
    numbers; an integer given as ``12.0`` is accepted (``integral_floats``) and returned as ``12``."""
    t = type(v)
    if (t is int or (t is float and not integer)) and (lo < v if lo_open else lo <= v) and v <= hi:
        return v  # the common case, without building a message (NaN and inf fail the comparison)
    kind = "an integer" if integer else "a number"
    accepted = f"accepted {'more than ' if lo_open else ''}{_fmt(lo)} to {_fmt(hi)}{' ' + unit if unit else ''}"
    if isinstance(v, str) and _looks_numeric(v):
        hint = ("YAML reads an exponent without a dot and a sign as text: write e.g. 1.0e+30, not 1e30"
                if "e" in v.lower() else "write numbers without quotes")
        raise ValueError(f"'{name}' must be {kind}, not the text {v!r} ({hint}); {accepted}")
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"'{name}' must be {kind}, not {type(v).__name__}; {accepted}")
    if type(v) not in (int, float):  # numpy scalars and other number types
        v = v.item() if hasattr(v, "item") else float(v)
        if type(v) not in (int, float):
            v = float(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"'{name}' must be a finite number; {accepted}")
        if integer and not (integral_floats and v.is_integer()):
            raise ValueError(f"'{name}' must be {kind}; {accepted}")
    if v < lo or (lo_open and v == lo):
        if lo == 0 and not lo_open:
            raise ValueError(f"'{name}' must be >= 0; {accepted}")
        if v <= 0 <= lo:
            raise ValueError(f"'{name}' must be > 0; {accepted}")
        raise ValueError(f"'{name}' must be {'>' if lo_open else '>='} {_fmt(lo)}; {accepted}")
    if v > hi:
        raise ValueError(f"'{name}' must be <= {_fmt(hi)}; {accepted}")
    return int(v) if integer else v


def _looks_numeric(v: str) -> bool:
    try:
        return len(v) < 100 and math.isfinite(float(v.replace("_", "x")))
    except ValueError:
        return False


def number(lo, hi, *, integer: bool = False, lo_open: bool = False, unit: str = "",
           nullable: bool = False, integral_floats: bool = True):
    """A field type for a number in ``[lo, hi]`` (see ``check_number``); ``None`` if ``nullable``."""
    def check(v, info):
        if v is None and nullable:
            return None
        return check_number(v, info.field_name or "value", lo, hi, integer=integer, lo_open=lo_open,
                            unit=unit, integral_floats=integral_floats)
    return Annotated[Any, PlainValidator(check)]


def _flag(v, info):
    if not isinstance(v, bool):
        raise ValueError(f"'{info.field_name}' must be true or false")
    return v


Flag = Annotated[bool, PlainValidator(_flag)]


def check_text(v, name: str, max_chars: int, *, multiline: bool = False, allow_numbers: bool = False) -> str:
    """``v`` if it is a string of at most ``max_chars`` characters without control characters
    (newlines and tabs are allowed if ``multiline``); ``allow_numbers``: a number becomes its text."""
    if allow_numbers and isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise ValueError(f"'{name}' must be a string, not {type(v).__name__}")
    if len(v) > max_chars:
        raise ValueError(f"'{name}' is {len(v):,} characters long; accepted at most {max_chars:,}")
    bad = [c for c in v if (ord(c) < 32 and not (multiline and c in "\n\t\r")) or ord(c) == 127]
    if bad:
        raise ValueError(f"'{name}' contains the control character {bad[0]!r}")
    return v


def text(max_chars: int, *, multiline: bool = False, allow_numbers: bool = False):
    """A field type for a string (see ``check_text``)."""
    def check(v, info):
        return check_text(v, info.field_name or "value", max_chars, multiline=multiline, allow_numbers=allow_numbers)
    return Annotated[str, PlainValidator(check)]


def one_of(choices: tuple[str, ...], what: str, phrase: str = "is not one of"):
    """A field type for one of the strings ``choices``; the error reads ``WHAT 'x' PHRASE a, b``."""
    def check(v, info):
        if not isinstance(v, str) or v not in choices:
            raise ValueError(f"{what} {v!r} {phrase} {', '.join(choices)}")
        return v
    return Annotated[str, PlainValidator(check)]


def _spaces(v, info):
    """Data spaces as a tuple in the canonical order W, I, O (one name is a list of one)."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)) or any(not isinstance(x, str) or x not in DATA_SPACES for x in v):
        raise ValueError("expected a list of data spaces (W, I, O)")
    if len(set(v)) != len(v):
        raise ValueError(f"a data space is listed twice in {list(v)}")
    return tuple(x for x in DATA_SPACES if x in v)


# ---- accelerator description -----------------------------------------------------------------
Name = text(MAX_NAME_CHARS, allow_numbers=True)
Notes = text(MAX_NOTES_CHARS, multiline=True, allow_numbers=True)
Energy = number(0, MAX_ENERGY_PJ, unit="pJ")
FoldCycles = number(0, MAX_FOLD_CYCLES, integer=True, unit="cycles")
WordBitsInt = number(1, MAX_WORD_BITS, integer=True, unit="bits")
CapacityInt = number(1, MAX_CAPACITY_BYTES, integer=True, unit="bytes")


class ArrayDimSpec(Spec):
    """One PE-array dimension: ``size`` PEs that may unroll the loop dimensions ``loops``."""

    _mapping_hint: ClassVar[str] = " with 'size' and 'loops'"
    size: number(1, MAX_ARRAY_DIM_SIZE, integer=True, unit="PEs")
    loops: Annotated[tuple, PlainValidator(lambda v, info: _loops(v))]
    fused: Flag = False


def _loops(v) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError("'loops' must name at least one loop dimension")
    bad = [x for x in v if not isinstance(x, str) or x not in DIMS]
    if bad:
        raise ValueError(f"unknown loop dimension(s) {bad} (known: {' '.join(DIMS)})")
    if len(set(v)) != len(v):
        raise ValueError(f"a loop dimension is listed twice in {list(v)}")
    return tuple(v)


class TimingSpec(Spec):
    """How operands move through the array (``spec.ArrayTiming``); a string is the ``kind``."""

    _mapping_hint: ClassVar[str] = f" with 'kind' ({' | '.join(TIMING_KINDS)})"
    kind: one_of(TIMING_KINDS, "kind") = "ideal"
    stationary: Optional[one_of(DATA_SPACES, "stationary", "must be one of")] = None
    preload_cycles: Optional[FoldCycles] = None
    setup_cycles: FoldCycles = 0

    @classmethod
    def _shorthand(cls, data):
        return {"kind": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _rules(self):
        if self.preload_cycles is not None and self.kind != "systolic":
            raise ValueError("preload_cycles applies to a systolic array only")
        if self.kind != "ideal" and self.stationary is None and (self.kind == "systolic" or self.setup_cycles):
            raise ValueError(f"a {self.kind} array needs 'stationary' (W, I or O): the operand whose "
                             f"register-file tile each fold loads")
        return self


class SplitCapacitySpec(Spec):
    """Bytes per data space (separate buffers); a space left out has none."""

    _key_kind: ClassVar[str] = "data space"

    W: CapacityInt = None  # a default is not validated: left out is fine, null is not
    I: CapacityInt = None  # noqa: E741 - the data space's name
    O: CapacityInt = None  # noqa: E741


class SplitAccessBitsSpec(Spec):
    """Access width per data space (separate memories with their own ports)."""

    _key_kind: ClassVar[str] = "data space"

    W: number(1, MAX_ACCESS_BITS, integer=True, unit="bits") = None
    I: number(1, MAX_ACCESS_BITS, integer=True, unit="bits") = None  # noqa: E741
    O: number(1, MAX_ACCESS_BITS, integer=True, unit="bits") = None  # noqa: E741


class SplitEnergySpec(Spec):
    """pJ per 16-bit word of each data space; a space left out costs nothing."""

    _key_kind: ClassVar[str] = "data space"

    W: Energy = None  # as capacities: null is refused
    I: Energy = None  # noqa: E741
    O: Energy = None  # noqa: E741


def _capacity(v, info):
    """Bytes as an int, or a mapping of data space to bytes (returned as a dict)."""
    if isinstance(v, dict):
        split = SplitCapacitySpec.model_validate(v)
        return {x: getattr(split, x) for x in DATA_SPACES if x in v}
    return check_number(v, info.field_name, 1, MAX_CAPACITY_BYTES, integer=True, unit="bytes")


def _energy(v, info):
    """pJ per access, or a mapping of data space to pJ (returned as a dict)."""
    if isinstance(v, dict):
        split = SplitEnergySpec.model_validate(v)
        return {x: getattr(split, x) for x in DATA_SPACES if x in v}
    return check_number(v, info.field_name, 0, MAX_ENERGY_PJ, unit="pJ")


def _access_bits(v, info):
    """Bits of one physical access, or a mapping of data space to bits (returned as a dict)."""
    if v is None:
        return None
    if isinstance(v, dict):
        split = SplitAccessBitsSpec.model_validate(v)
        return {x: getattr(split, x) for x in DATA_SPACES if x in v}
    return check_number(v, info.field_name, 1, MAX_ACCESS_BITS, integer=True, unit="bits")


Capacity = Annotated[Any, PlainValidator(_capacity)]
AccessBits = Annotated[Any, PlainValidator(_access_bits)]
LevelEnergy = Annotated[Any, PlainValidator(_energy)]
_BW_UNITS = {"bw_words_per_cycle": "words per cycle", "bw_bytes_per_cycle": "bytes per cycle",
             "bw_bits_per_cycle": "bits per cycle"}


def _bw(key: str, nullable: bool):
    return number(MIN_BW, MAX_BW, unit=_BW_UNITS[key], nullable=nullable)


class OnChipLevelSpec(Spec):
    """The register file (capacity per PE) or the global buffer."""

    is_dram: ClassVar[bool] = False
    capacity_bytes: Capacity
    bw_words_per_cycle: _bw("bw_words_per_cycle", True) = None
    bw_bytes_per_cycle: _bw("bw_bytes_per_cycle", True) = None
    bw_bits_per_cycle: _bw("bw_bits_per_cycle", True) = None
    read_energy_pj: LevelEnergy = None
    write_energy_pj: LevelEnergy = None
    bypass: Annotated[tuple, PlainValidator(_spaces)] = ()
    buffering: one_of(BUFFERING, "buffering", "must be one of") = "double"
    access_bits: AccessBits = None

    @classmethod
    def _presence(cls, data: dict) -> None:
        given = [k for k in BW_FIELDS if k in data]
        if len(given) > 1:
            raise ValueError(f"give one of {', '.join(given)}, not several")
        if not given and cls.is_dram:
            raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(
                type=PydanticCustomError("missing", "missing field (or bw_bytes_per_cycle, bw_bits_per_cycle)"),
                loc=("bw_words_per_cycle",), input=None)])
        if "buffering" in data and cls.is_dram:
            raise ValueError("buffering: DRAM has none; the option is for on-chip levels only")
        if ("read_energy_pj" in data) != ("write_energy_pj" in data):
            missing = "write_energy_pj" if "read_energy_pj" in data else "read_energy_pj"
            raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(
                type=PydanticCustomError("missing", "missing field (give both energies or neither)"),
                loc=(missing,), input=None)])

    @model_validator(mode="after")
    def _rules(self):
        rd, wr = self.read_energy_pj, self.write_energy_pj
        if isinstance(rd, dict) != isinstance(wr, dict):
            raise ValueError(f"give both energies per data space, a mapping of W, I and O, got "
                             f"read_energy_pj={rd!r}, write_energy_pj={wr!r}")
        bypass = set(self.bypass)
        if bypass and self.is_dram:
            raise ValueError("bypass: DRAM holds every data space; it cannot be bypassed")
        if isinstance(self.capacity_bytes, dict):
            if not self.capacity_bytes:
                raise ValueError("capacity_bytes: give the bytes of at least one data space")
            both = sorted(bypass & set(self.capacity_bytes))
            if both:
                raise ValueError(f"{both} both bypassed and given a capacity")
            if sum(self.capacity_bytes.values()) > MAX_CAPACITY_BYTES:
                raise ValueError(f"capacity_bytes: {sum(self.capacity_bytes.values()):,} bytes in all; "
                                 f"accepted at most {MAX_CAPACITY_BYTES:,}")
        if isinstance(self.access_bits, dict):
            if not self.access_bits:
                raise ValueError("access_bits: give the bits of at least one data space (or one integer)")
            both = sorted(bypass & set(self.access_bits))
            if both:
                raise ValueError(f"{both} both bypassed and given access_bits")
        if len(bypass) == len(DATA_SPACES):
            raise ValueError("bypass: a level that holds no data space should be left out; it bypasses W, I and O")
        return self

    def bandwidth(self) -> tuple[Optional[float], Optional[float]]:
        """``(words per cycle, bits per cycle or None)`` from whichever bandwidth field is given."""
        for key, bits_per_unit in BW_FIELDS.items():
            if key in self.model_fields_set:
                v = getattr(self, key)
                if v is None or key == "bw_words_per_cycle":
                    return v, None
                bits = v * bits_per_unit
                return bits / 16, bits
        return None, None


class DramLevelSpec(OnChipLevelSpec):
    """DRAM: the outermost level. Needs a bandwidth; holds every data space; capacity optional."""

    is_dram: ClassVar[bool] = True
    capacity_bytes: Optional[Capacity] = None
    bw_words_per_cycle: _bw("bw_words_per_cycle", False) = None
    bw_bytes_per_cycle: _bw("bw_bytes_per_cycle", False) = None
    bw_bits_per_cycle: _bw("bw_bits_per_cycle", False) = None


def _array_list(v):
    if not isinstance(v, list) or not 1 <= len(v) <= MAX_ARRAY_DIMS:
        raise ValueError(f"'array' must list 1 to {MAX_ARRAY_DIMS} dimensions")
    return v


def _total_pes(v):
    pes = math.prod(a.size for a in v)
    if pes > MAX_PES:
        raise ValueError(f"{' x '.join(str(a.size) for a in v)} = {pes:,} PEs in all; accepted at most {MAX_PES:,}")
    return v


def _word_bits(v, info):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        w = check_number(v, "word_bits", 1, MAX_WORD_BITS, integer=True, unit="bits")
        return {x: w for x in DATA_SPACES}
    if not isinstance(v, dict) or set(v) != set(DATA_SPACES):
        raise ValueError("'word_bits' must give W, I and O (or one integer): widths 1 to 64 bits")
    return {x: check_number(v[x], x, 1, MAX_WORD_BITS, integer=True, unit="bits") for x in DATA_SPACES}


def _table_ref(v, info):
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise ValueError(f"'energy_table' must be a string, not {type(v).__name__}: the name of a known "
                         f"table or the path of an energy-table YAML")
    return check_text(v, "energy_table", MAX_REF_CHARS)


class AcceleratorSpec(Spec):
    """The accelerator YAML (see ``spec.Accelerator`` for what each field means)."""

    _mapping_hint: ClassVar[str] = " at top level"
    name: Name = "custom"
    clock_mhz: number(MIN_CLOCK_MHZ, MAX_CLOCK_MHZ, unit="MHz") = 200.0
    word_bits: Annotated[dict, PlainValidator(_word_bits)] = {"W": 16, "I": 16, "O": 16}
    array: Annotated[list[ArrayDimSpec], BeforeValidator(_array_list), AfterValidator(_total_pes)]
    array_timing: Optional[TimingSpec] = None
    stores_padding: Flag = False
    narrow_outputs_at: one_of(NARROW_AT, "narrow_outputs_at", "must be one of") = "dram"
    rf: OnChipLevelSpec
    glb: OnChipLevelSpec
    dram: DramLevelSpec
    mac_energy_pj: Energy = None
    noc_energy_pj: Energy = None
    energy_table: Annotated[Optional[str], PlainValidator(_table_ref)] = None
    notes: Notes = ""

    @model_validator(mode="after")
    def _level_rules(self):
        if self.rf.access_bits is not None:
            raise ValueError("rf: access_bits: the register file is accessed one word per MAC; "
                             "the option is for glb and dram")
        if self.narrow_outputs_at == "glb" and "O" in self.glb.bypass:
            raise ValueError("narrow_outputs_at: glb, but the global buffer bypasses O (it stores no outputs)")
        return self


# ---- energy table ----------------------------------------------------------------------------
Ratio = number(0, MAX_ENERGY_RATIO, unit="x a MAC")


class RatiosSpec(Spec):
    """Energy per access of each level (and per NoC transfer) relative to one MAC."""

    rf: Ratio
    noc: Ratio
    glb: Ratio
    dram: Ratio


class ReferenceBytesSpec(Spec):
    """The capacity at which a level's ratio holds (levels left out are not scaled)."""

    rf: Optional[CapacityInt] = None
    glb: Optional[CapacityInt] = None
    dram: Optional[CapacityInt] = None


class EnergyTableSpec(Spec):
    """An energy-table YAML (``energy_tables/*.yaml``)."""

    _mapping_hint: ClassVar[str] = " at top level"
    name: Name
    mac_pj: Energy
    mac_ref_bits: WordBitsInt
    mac_bits_exponent: number(0, MAX_EXPONENT) = 1.0
    ratios: RatiosSpec
    reference_bytes: ReferenceBytesSpec = ReferenceBytesSpec()
    scaling_exponent: number(0, MAX_EXPONENT) = 0.5
