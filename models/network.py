"""A network: an ordered list of named MAC layers plus non-MAC operators that move data."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .errors import WorkloadError
from .layer import Layer


@dataclass(frozen=True)
class AuxOp:
    """A non-MAC operator (pooling, element-wise add, activation) that costs memory traffic."""

    name: str
    kind: str  # "pool" | "add" | "act" | "concat" | ...
    in_elems: int
    out_elems: int

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "in_elems": self.in_elems, "out_elems": self.out_elems}


def _layer_json(l: Layer) -> dict:
    return {"name": l.name, "op": l.op, "dims": l.dims, "stride": l.stride, "dilation": l.dilation,
            "padding": l.padding, "bias": l.bias, "macs": l.macs, "params": l.params}


@dataclass(frozen=True)
class Network:
    name: str
    layers: tuple[Layer, ...]
    aux: tuple[AuxOp, ...] = ()
    resolution: int | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "aux", tuple(self.aux))
        if not self.layers:
            raise WorkloadError(f"network '{self.name}' has no MAC layers")
        names = [l.name for l in self.layers]
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise WorkloadError(f"network '{self.name}': duplicate layer name(s) {dup[:5]}")

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def params(self) -> int:
        return sum(l.params for l in self.layers)

    def unique_shapes(self) -> list[tuple[Layer, int]]:
        """Distinct shapes in first-seen order with their multiplicities."""
        first: dict[tuple, Layer] = {}
        count: Counter = Counter()
        for l in self.layers:
            first.setdefault(l.shape_key, l)
            count[l.shape_key] += 1
        return [(first[k], count[k]) for k in first]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "resolution": self.resolution,
            "layers": [_layer_json(l) for l in self.layers],
            "aux": [a.to_dict() for a in self.aux],
            "total": {"macs": self.macs, "params": self.params, "layers": len(self.layers)},
            "unique_shapes": len(self.unique_shapes()),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Network":
        try:
            layers = []
            for ld in d["layers"]:
                ld = dict(ld)
                ld.update(ld.pop("dims", {}))
                ld = {k: v for k, v in ld.items() if k not in ("macs", "params")}
                layers.append(Layer.from_dict(ld))
            aux = [AuxOp(**a) for a in d.get("aux", [])]
            return cls(name=d["name"], layers=tuple(layers), aux=tuple(aux), resolution=d.get("resolution"))
        except (KeyError, TypeError) as e:
            raise WorkloadError(f"malformed network description: {e}") from None
