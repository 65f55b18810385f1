"""Per-access energy tables (data files in ``energy_tables/``) and capacity scaling."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from models.errors import AcceleratorError

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


@lru_cache(maxsize=None)
def load_energy_table(name_or_path: str) -> EnergyTable:
    p = Path(name_or_path)
    if not p.is_file():
        p = TABLE_DIR / f"{name_or_path}.yaml"
    if not p.is_file():
        raise AcceleratorError(f"unknown energy table '{name_or_path}' (known: {', '.join(table_names())})")
    try:
        d = yaml.safe_load(p.read_text())
        return EnergyTable(
            name=d["name"], mac_pj=float(d["mac_pj"]), mac_ref_bits=int(d["mac_ref_bits"]),
            mac_bits_exponent=float(d.get("mac_bits_exponent", 1.0)), ratios=dict(d["ratios"]),
            reference_bytes=dict(d.get("reference_bytes", {})),
            scaling_exponent=float(d.get("scaling_exponent", 0.5)),
        )
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as e:
        raise AcceleratorError(f"energy table {p.name}: malformed ({e})") from None
