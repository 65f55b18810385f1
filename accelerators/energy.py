"""Per-access energy tables (data files in ``energy_tables/``) and capacity scaling."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from models.errors import AcceleratorError
from models.inputs import load_yaml_file, validate

from .schema import EnergyTableSpec

TABLE_DIR = Path(__file__).parent / "energy_tables"


@dataclass(frozen=True)
class EnergyTable:
    name: str
    mac_pj: float
    mac_ref_bits: int
    mac_bits_exponent: float
    ratios: dict
    reference_bytes: dict
    scaling_exponent: float

    def mac_energy_pj(self, word_bits: dict) -> float:
        """MAC energy for the operand widths, scaled from the reference width."""
        scale = (word_bits["W"] * word_bits["I"]) / (self.mac_ref_bits ** 2)
        return self.mac_pj * scale ** self.mac_bits_exponent

    def noc_energy_pj(self) -> float:
        return self.mac_pj * self.ratios["noc"]

    def access_energy_pj(self, level: str, capacity_bytes: int | None) -> float:
        """Energy of one word access at ``level`` ("rf", "glb" or "dram") of a given capacity."""
        base = self.mac_pj * self.ratios[level]
        ref = self.reference_bytes.get(level)
        if ref is None or capacity_bytes is None:
            return base
        return base * (capacity_bytes / ref) ** self.scaling_exponent


def table_names() -> list[str]:
    return sorted(p.stem for p in TABLE_DIR.glob("*.yaml"))


def load_energy_table(name_or_path) -> EnergyTable:
    """A table by name (``eyeriss-65nm``) or an energy-table YAML by path, validated by
    ``schema.EnergyTableSpec``."""
    if isinstance(name_or_path, Path):
        name_or_path = str(name_or_path)
    if not isinstance(name_or_path, str):
        raise AcceleratorError(f"an energy table is the name of a known table or the path of an energy-table "
                               f"YAML, not {type(name_or_path).__name__}")
    return _load(name_or_path)


@lru_cache(maxsize=None)
def _load(name_or_path: str) -> EnergyTable:
    if name_or_path in table_names():
        p = TABLE_DIR / f"{name_or_path}.yaml"
        what = p.name
    elif name_or_path.endswith((".yaml", ".yml")) or _is_file(Path(name_or_path)):
        p = Path(name_or_path)
        what = f"energy table {name_or_path}"
    else:
        shown = name_or_path if len(name_or_path) <= 80 else name_or_path[:77] + "..."
        raise AcceleratorError(f"unknown energy table '{shown}' (known: {', '.join(table_names())}; "
                               f"or give a YAML path)")
    spec = validate(EnergyTableSpec, load_yaml_file(p, what, error=AcceleratorError), what, error=AcceleratorError)
    return EnergyTable(
        name=spec.name, mac_pj=float(spec.mac_pj), mac_ref_bits=spec.mac_ref_bits,
        mac_bits_exponent=float(spec.mac_bits_exponent), ratios=spec.ratios.model_dump(),
        reference_bytes={k: v for k, v in spec.reference_bytes.model_dump().items() if v is not None},
        scaling_exponent=float(spec.scaling_exponent),
    )


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False
