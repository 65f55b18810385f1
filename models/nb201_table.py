"""NAS-Bench-201 measured table (HW-NAS-Bench-360, CIFAR-100, Raspberry Pi 5).

``nasbench201/hw360_cifar100_pi5.csv.gz`` holds every one of the 15,625 cells: the CIFAR-100
top-1 accuracy (percent in the file, a fraction here) and the median latency (ms) and energy
(mJ) measured with three runtimes. Because the whole space is tabulated, a search over it can
be scored against the true Pareto front.
"""
from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .assets import asset_path
from .errors import AssetMissing, CodesignError
from .spaces.nasbench201 import NasBench201Space, arch_from_string, arch_to_string

HW360_ASSET = "nasbench201/hw360_cifar100_pi5.csv.gz"
HW360_ORIGIN = "the HW-NAS-Bench-360 public results (NAS-Bench-201 cells on a Raspberry Pi 5)"
RUNTIMES = ("litert", "onnx", "torchmobile")


@dataclass(frozen=True)
class Hw360Table:
    """One row per cell, in file order; ``index`` maps a canonical arch string to its row."""

    arch_strs: tuple[str, ...]
    accuracy: np.ndarray           # fraction, CIFAR-100 top-1
    latency_ms: dict               # runtime -> np.ndarray
    energy_mj: dict                # runtime -> np.ndarray
    index: dict

    def __len__(self) -> int:
        return len(self.arch_strs)

    def row(self, arch) -> int:
        """Row of ``arch`` (an arch string or ``{"ops": [...]}``)."""
        s = NasBench201Space.to_string(arch)
        try:
            return self.index[s]
        except KeyError:
            raise CodesignError(f"nasbench201 table has no row for {s}") from None

    def rows(self, archs) -> np.ndarray:
        return np.array([self.row(a) for a in archs], dtype=np.int64)

    def latency(self, runtime: str = "onnx") -> np.ndarray:
        if runtime not in self.latency_ms:
            raise CodesignError(f"unknown nasbench201 runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
        return self.latency_ms[runtime]


@lru_cache(maxsize=None)
def load_hw360() -> Hw360Table:
    """The HW-NAS-Bench-360 CIFAR-100 / Raspberry Pi 5 table (read once)."""
    path = asset_path(HW360_ASSET, HW360_ORIGIN)
    try:
        with gzip.open(path, "rt", newline="") as f:
            rows = list(csv.DictReader(f))
        strs = tuple(arch_to_string(arch_from_string(r["arch_str"])["ops"]) for r in rows)
        acc = np.array([float(r["accuracy"]) / 100.0 for r in rows])
        lat = {rt: np.array([float(r[f"lat_ms_median_pi5_{rt}"]) for r in rows]) for rt in RUNTIMES}
        en = {rt: np.array([float(r[f"energy_mj_pi5_{rt}"]) for r in rows]) for rt in RUNTIMES}
    except (OSError, EOFError, KeyError, ValueError, csv.Error) as e:
        raise AssetMissing(f"{path}: not a readable HW-NAS-Bench-360 table ({type(e).__name__}: {e}); "
                           f"fetch it again") from None
    index = {s: i for i, s in enumerate(strs)}
    if len(index) != len(strs):
        raise AssetMissing(f"{path}: repeated cells ({len(strs) - len(index)} duplicates)")
    return Hw360Table(arch_strs=strs, accuracy=acc, latency_ms=lat, energy_mj=en, index=index)


class TableAccuracy:
    """Accuracy "predictor" that looks cells up in the measured table (same ``predict`` interface
    as ``models.predictors.AccuracyPredictor``)."""

    space_name = "nasbench201"

    def __init__(self, table: Hw360Table | None = None):
        self.table = table if table is not None else load_hw360()
        self.space = NasBench201Space()

    def predict(self, archs) -> np.ndarray:
        """CIFAR-100 top-1 (fraction) of each cell."""
        archs = list(archs)
        if not archs:
            return np.zeros(0)
        return self.table.accuracy[self.table.rows(archs)]

    def __repr__(self) -> str:
        return f"<TableAccuracy nasbench201: {len(self.table)} cells>"
