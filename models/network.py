"""A network: an ordered list of named MAC layers plus non-MAC operators that move data."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .errors import WorkloadError
from .layer import Layer
from .schema import MAX_AUX_ELEMS, MAX_AUX_OPS, MAX_LAYERS, int_range_problem


@dataclass(frozen=True)
class AuxOp:
    """A non-MAC operator (pooling, element-wise add, activation) that costs memory traffic."""

    name: str
    kind: str  # "pool" | "add" | "act" | "concat" | ...
    in_elems: int
    out_elems: int

    def __post_init__(self):
        for attr in ("in_elems", "out_elems"):
            v = getattr(self, attr)
            if type(v) is not int or not 0 <= v <= MAX_AUX_ELEMS:
                problem = int_range_problem(v, 0, MAX_AUX_ELEMS, python_int=True)
                if problem:
                    raise WorkloadError(f"operator '{self.name}': {attr}={v!r} {problem}")

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
        if len(self.layers) > MAX_LAYERS or len(self.aux) > MAX_AUX_OPS:
            raise WorkloadError(f"network '{self.name}': {len(self.layers):,} layers and {len(self.aux):,} other "
                                f"operators; at most {MAX_LAYERS:,} and {MAX_AUX_OPS:,} are accepted")
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
    def from_dict(cls, d: dict, source: str = "network") -> "Network":
        """A network from ``to_dict()`` output or a hand-written workload JSON (``models.schema.NetworkSpec``).

        Derived fields (``macs`` and ``params`` of a layer, ``total``, ``unique_shapes``) are
        optional; when present they must agree with the layers.
        """
        from .inputs import validate
        from .schema import NetworkSpec
        spec = validate(NetworkSpec, d, source, error=WorkloadError)
        layers = tuple(Layer.from_spec(l) for l in spec.layers)
        aux = tuple(AuxOp(a.name, a.kind, a.in_elems, a.out_elems) for a in spec.aux)
        try:
            net = cls(name=spec.name, layers=layers, aux=aux, resolution=spec.resolution)
        except WorkloadError as e:
            raise WorkloadError(f"{source}: {e}") from None
        for i, (l, ls) in enumerate(zip(layers, spec.layers)):
            if ls.params is not None and ls.params != l.params:
                raise WorkloadError(f"{source}: layers[{i}].params: {ls.params:,} contradicts the layer "
                                    f"({l.params:,}); correct or drop it")
        derived = {"total.macs": net.macs, "total.params": net.params, "total.layers": len(layers)}
        given = {f"total.{k}": v for k, v in (spec.total.model_dump() if spec.total else {}).items()}
        given["unique_shapes"] = spec.unique_shapes
        derived["unique_shapes"] = len(net.unique_shapes()) if spec.unique_shapes is not None else None
        for key, v in given.items():
            if v is not None and v != derived[key]:
                raise WorkloadError(f"{source}: {key}: {v:,} contradicts the layers ({derived[key]:,}); "
                                    f"correct or drop it")
        return net
