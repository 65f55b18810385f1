"""Per-shape cache of mapping results.

Key: the layer's shape key, the accelerator fingerprint, the objective and the optimizer
settings (optimizer, budget, seed, mapper version). Layers with equal keys have identical costs
on the accelerator, so a network with repeated shapes, or a search that visits thousands of
sub-networks, maps each shape once.

Always in memory; optionally also on disk as one small JSON file per key (safe with several
processes: files are written atomically). The disk cache is opt-in: pass ``directory=``, or set
``CODESIGN_MAPPING_CACHE`` to a directory (or to ``1`` for ``~/.cache/codesign/mappings``).
Entries read from disk are re-costed with the current cost model; one that no longer is a
valid mapping counts as a miss.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from accelerators.cost import evaluate_mapping
from accelerators.spec import Accelerator
from models.layer import Layer

from .mapping import Mapping
from .optimizers import MapResult

ENV_VAR = "CODESIGN_MAPPING_CACHE"
DEFAULT_DIR = Path("~/.cache/codesign/mappings")
MAPPER_VERSION = 4  # bump when the optimizers or the cost model change what a mapping returns


def cache_key(layer: Layer, acc: Accelerator, objective: str, settings: dict) -> str:
    """Stable hex key of (shape, accelerator fingerprint, objective, optimizer settings)."""
    blob = json.dumps({"shape": list(layer.shape_key), "accelerator": acc.fingerprint(),
                       "objective": objective, "settings": settings, "version": MAPPER_VERSION},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def disk_dir_from_env() -> Path | None:
    """The cache directory ``CODESIGN_MAPPING_CACHE`` asks for, or None when it is off."""
    v = os.environ.get(ENV_VAR, "").strip()
    if v.lower() in ("", "0", "off", "false", "no"):
        return None
    if v.lower() in ("1", "on", "true", "yes"):
        return DEFAULT_DIR.expanduser()
    return Path(v).expanduser()


class MappingCache:
    """In-memory (and optionally on-disk) store of ``MapResult`` by cache key."""

    def __init__(self, directory=None):
        self.directory = Path(directory).expanduser() if directory is not None else None
        self._mem: dict[str, MapResult] = {}
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0

    def __len__(self):
        return len(self._mem)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, layer: Layer, acc: Accelerator, objective: str, settings: dict) -> MapResult | None:
        key = cache_key(layer, acc, objective, settings)
        hit = self._mem.get(key)
        if hit is None and self.directory is not None:
            hit = self._load(self._path(key), layer, acc)
            if hit is not None:
                self._mem[key] = hit
                self.disk_hits += 1
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put(self, layer: Layer, acc: Accelerator, objective: str, settings: dict, result: MapResult) -> None:
        key = cache_key(layer, acc, objective, settings)
        self._mem[key] = result
        if self.directory is not None:
            self._store(self._path(key), result)

    def get_or_compute(self, layer, acc, objective, settings, compute) -> tuple[MapResult, bool]:
        """``(result, was_cached)``; ``compute()`` runs only on a miss."""
        hit = self.get(layer, acc, objective, settings)
        if hit is not None:
            return hit, True
        result = compute()
        self.put(layer, acc, objective, settings, result)
        return result, False

    def stats(self) -> dict:
        return {"entries": len(self._mem), "hits": self.hits, "disk_hits": self.disk_hits,
                "misses": self.misses, "directory": str(self.directory) if self.directory else None}

    def clear(self) -> None:
        """Forget the in-memory entries (files on disk stay)."""
        self._mem.clear()

    # ---- disk ---------------------------------------------------------------------------
    @staticmethod
    def _load(path: Path, layer: Layer, acc: Accelerator) -> MapResult | None:
        try:
            d = json.loads(path.read_text())
            mapping = Mapping.from_dict(d["mapping"])
            cost = evaluate_mapping(layer, acc, *mapping.to_arrays())
            if not cost.valid:
                return None
            return MapResult(mapping=mapping, cost=cost, evaluated=int(d["evaluated"]),
                             seconds=float(d["seconds"]), optimizer=d["optimizer"], objective=d["objective"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or unreadable entry: recompute

    @staticmethod
    def _store(path: Path, result: MapResult) -> None:
        d = {"mapping": result.mapping.to_dict(), "evaluated": result.evaluated, "seconds": result.seconds,
             "optimizer": result.optimizer, "objective": result.objective}
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(d, f)
            os.replace(tmp, path)
        except OSError:  # a read-only or full disk only costs recomputation
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)


_DEFAULT: dict = {}


def default_cache() -> MappingCache:
    """The process-wide cache (memory, plus disk when ``CODESIGN_MAPPING_CACHE`` is set)."""
    directory = disk_dir_from_env()
    c = _DEFAULT.get(directory)
    if c is None:
        c = _DEFAULT[directory] = MappingCache(directory)
    return c
