"""One mapping of a layer onto an accelerator: temporal tiling, loop orders, spatial unrolling.

The arrays follow the layout of the cost model (``accelerators.cost``): ``temporal[l][d]`` is
the temporal factor of loop dimension ``d`` (``DIMS`` order) at memory level ``l`` (0 = register
file, 1 = global buffer, 2 = DRAM); ``spatial[a][d]`` the unrolling of ``d`` on array dimension
``a`` (three rows, unused rows all ones); ``order[l]`` a permutation of the eight dimension
indices, innermost loop first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.errors import MappingError
from models.layer import DATA_SPACES, DIMS, Layer

LEVELS = ("rf", "glb", "dram")
LEVEL_TITLES = {"rf": "register file (per PE)", "glb": "global buffer", "dram": "DRAM"}
NUM_LEVELS = 3
MAX_ARRAY_DIMS = 3


def _rows(x, nrows: int, what: str) -> tuple:
    try:
        rows = tuple(tuple(int(v) for v in row) for row in x)
    except (TypeError, ValueError):
        raise MappingError(f"mapping: {what} must be rows of integers") from None
    if len(rows) > nrows or any(len(r) != len(DIMS) for r in rows):
        raise MappingError(f"mapping: {what} must have at most {nrows} rows of {len(DIMS)} entries")
    return rows + tuple((1,) * len(DIMS) for _ in range(nrows - len(rows)))


@dataclass(frozen=True)
class Mapping:
    """Temporal factors ``[3][8]``, spatial factors ``[3][8]`` and loop orders ``[3][8]``."""

    temporal: tuple
    spatial: tuple
    order: tuple

    def __post_init__(self):
        for what in ("temporal", "order"):
            try:
                n = len(getattr(self, what))
            except TypeError:
                raise MappingError(f"mapping: {what} must be rows of integers") from None
            if n != NUM_LEVELS:
                raise MappingError(f"mapping: {what} needs one row per memory level ({NUM_LEVELS}), got {n}")
        object.__setattr__(self, "temporal", _rows(self.temporal, NUM_LEVELS, "temporal"))
        object.__setattr__(self, "spatial", _rows(self.spatial, MAX_ARRAY_DIMS, "spatial"))
        object.__setattr__(self, "order", _rows(self.order, NUM_LEVELS, "order"))
        for row in self.order:
            if sorted(row) != list(range(len(DIMS))):
                raise MappingError(f"mapping: loop order {list(row)} is not a permutation of 0..7")

    # ---- arrays -------------------------------------------------------------------------
    def to_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(temporal[3,8], spatial[3,8], order[3,8])`` as int64 arrays."""
        return (np.array(self.temporal, dtype=np.int64), np.array(self.spatial, dtype=np.int64),
                np.array(self.order, dtype=np.int64))

    @classmethod
    def from_arrays(cls, temporal, spatial, order) -> "Mapping":
        s = np.asarray(spatial, dtype=np.int64).reshape(-1, len(DIMS))
        return cls(temporal=np.asarray(temporal, dtype=np.int64).reshape(NUM_LEVELS, len(DIMS)).tolist(),
                   spatial=s.tolist(),
                   order=np.asarray(order, dtype=np.int64).reshape(NUM_LEVELS, len(DIMS)).tolist())

    # ---- derived ------------------------------------------------------------------------
    def factor(self, dim: str) -> int:
        """Product of the temporal and spatial factors of ``dim`` (its covered extent)."""
        d = DIMS.index(dim)
        return math.prod(r[d] for r in self.temporal) * math.prod(r[d] for r in self.spatial)

    def tile_extents(self, level: int) -> tuple[int, ...]:
        """Loop extents below and at ``level`` (0 = RF, 1 = GLB incl. the array, 2 = all)."""
        out = []
        for d in range(len(DIMS)):
            e = math.prod(self.temporal[l][d] for l in range(level + 1))
            if level >= 1:
                e *= math.prod(r[d] for r in self.spatial)
            out.append(e)
        return tuple(out)

    # ---- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Readable JSON: non-unit factors by dimension letter, orders as letter strings."""
        def factors(row):
            return {DIMS[d]: int(f) for d, f in enumerate(row) if f != 1}
        return {
            "temporal": {lvl: factors(self.temporal[l]) for l, lvl in enumerate(LEVELS)},
            "spatial": [factors(r) for r in self.spatial],
            "order": {lvl: "".join(DIMS[d] for d in self.order[l]) for l, lvl in enumerate(LEVELS)},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Mapping":
        """Inverse of ``to_dict`` (also accepts rows of eight integers)."""
        def row(v, what):
            if isinstance(v, dict):
                bad = set(v) - set(DIMS)
                if bad:
                    raise MappingError(f"mapping: {what}: unknown dimension(s) {sorted(bad)}")
                return [int(v.get(x, 1)) for x in DIMS]
            return list(v)

        def order_row(v, what):
            if isinstance(v, str):
                if sorted(v) != sorted(DIMS):
                    raise MappingError(f"mapping: {what} order {v!r} must use each of {''.join(DIMS)} once")
                return [DIMS.index(c) for c in v]
            return list(v)

        try:
            t, s, o = d["temporal"], d["spatial"], d["order"]
            if isinstance(t, dict):
                t = [t.get(lvl, {}) for lvl in LEVELS]
            if isinstance(o, dict):
                o = [o[lvl] for lvl in LEVELS]
            return cls(temporal=[row(r, f"temporal[{i}]") for i, r in enumerate(t)],
                       spatial=[row(r, f"spatial[{i}]") for i, r in enumerate(s)],
                       order=[order_row(r, f"level {i}") for i, r in enumerate(o)])
        except (KeyError, TypeError) as e:
            raise MappingError(f"malformed mapping description: {e}") from None

    # ---- text ---------------------------------------------------------------------------
    def pretty(self, layer: Layer | None = None, acc=None) -> str:
        """The loop nest, outermost first, as a user reads it.

        Temporal loops are named by dimension and level (``k2``: K at DRAM, ``c0``: C in the
        register file); spatial loops by dimension and array dimension (``cs0``: C unrolled on
        array dimension 0). With ``layer`` and ``acc`` each level shows its tile sizes.
        """
        from accelerators.cost import tile_elems

        lines, depth = [], 0
        for l in reversed(range(NUM_LEVELS)):
            lvl = LEVELS[l]
            head = f"[{LEVEL_TITLES[lvl]}]"
            if layer is not None and acc is not None and l < 2:
                ext = self.tile_extents(l)
                level = acc.level(lvl)
                held = [x for x in DATA_SPACES if level.holds(x)]
                words = {x: tile_elems(x, ext, layer, acc.stores_padding, capacity=True) for x in held}
                need = {x: words[x] * acc.word_bits[x] / 8 for x in held}
                if level.split_bytes:
                    use = ", ".join(f"{x} {_fmt_bytes(need[x])} of {_fmt_bytes(level.split_bytes.get(x, 0))}"
                                    for x in held)
                else:
                    use = f"{_fmt_bytes(sum(need.values()))} of {_fmt_bytes(level.capacity_bytes)}"
                tiles = " ".join(f"{x} {words[x]}" if x in words else f"{x} bypassed" for x in DATA_SPACES)
                double = ", double-buffered when refilled" if level.buffering == "double" else ""
                head += f"  tile {tiles} words: {use}{double}"
            lines.append("  " * depth + head)
            for d in reversed(self.order[l]):
                f = self.temporal[l][d]
                if f > 1:
                    lines.append("  " * depth + f"for {DIMS[d].lower()}{l} in [0:{f})")
                    depth += 1
            if l == 1:
                for a, srow in enumerate(self.spatial):
                    prod = math.prod(srow)
                    if acc is not None and a < len(acc.array) and acc.array[a].fused and prod > acc.array[a].size:
                        lines.append("  " * depth + f"# array dimension {a} (fused, {acc.array[a].size} PEs) folds "
                                                    f"{prod} iterations in {-(-prod // acc.array[a].size)} passes")
                    for d in range(len(DIMS)):
                        if srow[d] > 1:
                            lines.append("  " * depth + f"spatial_for {DIMS[d].lower()}s{a} in [0:{srow[d]})")
                            depth += 1
        lines.append("  " * depth + "mac")
        return "\n".join(lines)


def _fmt_bytes(n) -> str:
    n = float(n)
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n:g} B"
