"""A network: an ordered list of named MAC layers plus non-MAC operators that move data, and,
when known, the graph edges (which nodes each layer and operator reads)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .errors import WorkloadError
from .layer import Layer
from .schema import MAX_AUX_ELEMS, MAX_AUX_OPS, MAX_LAYERS, NETWORK_INPUT, int_range_problem


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


def _with_inputs(d: dict, inputs: dict) -> dict:
    return {**d, "inputs": list(inputs[d["name"]])} if inputs else d


@dataclass(frozen=True)
class Network:
    """``inputs`` maps every layer and operator name to the names of the nodes it reads
    (``NETWORK_INPUT`` for the network's input), in the order the layers run; empty when the
    graph is unknown (then only layer-by-layer scheduling applies)."""

    name: str
    layers: tuple[Layer, ...]
    aux: tuple[AuxOp, ...] = ()
    resolution: int | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    inputs: dict = field(default_factory=dict, compare=False, hash=False)

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
        if self.inputs:
            self._check_graph()

    def _check_graph(self) -> None:
        nodes = [l.name for l in self.layers] + [a.name for a in self.aux]
        where = f"network '{self.name}'"
        dup = [n for n, c in Counter(nodes).items() if c > 1]
        if dup:
            raise WorkloadError(f"{where}: layer and operator names must be distinct when the graph is "
                                f"given; {dup[:5]} repeat")
        if NETWORK_INPUT in nodes:
            raise WorkloadError(f"{where}: '{NETWORK_INPUT}' names the network's input; rename that node")
        missing = [n for n in nodes if n not in self.inputs]
        extra = [n for n in self.inputs if n not in set(nodes)]
        if missing or extra:
            raise WorkloadError(f"{where}: the graph must give the inputs of every layer and operator"
                                + (f"; none for {missing[:5]}" if missing else "")
                                + (f"; unknown node(s) {extra[:5]}" if extra else ""))
        known = set(nodes) | {NETWORK_INPUT}
        for n in nodes:
            srcs = self.inputs[n]
            bad = [x for x in srcs if x not in known]
            if not srcs or bad:
                raise WorkloadError(f"{where}: node '{n}' reads " + (f"unknown node(s) {bad[:5]}" if bad
                                                                    else "nothing"))
        # acyclic, and layers run after the layers they depend on
        import networkx as nx
        g = self.graph()
        if not nx.is_directed_acyclic_graph(g):
            cycle = [u for u, _ in nx.find_cycle(g)]
            raise WorkloadError(f"{where}: the graph has a cycle through {cycle[:5]}")
        pos = {l.name: i for i, l in enumerate(self.layers)}
        for l in self.layers:
            late = [a for a in nx.ancestors(g, l.name) if pos.get(a, -1) > pos[l.name]]
            if late:
                raise WorkloadError(f"{where}: layer '{l.name}' depends on '{late[0]}', which comes "
                                    f"after it in 'layers'")

    def graph(self):
        """The data-flow graph (``networkx.DiGraph``, producer -> consumer) with a ``kind``
        attribute per node (the layer's ``op``, the operator's ``kind``, or ``"input"``)."""
        import networkx as nx
        if not self.inputs:
            raise WorkloadError(f"network '{self.name}' has no graph edges")
        g = nx.DiGraph()
        g.add_node(NETWORK_INPUT, kind="input")
        for l in self.layers:
            g.add_node(l.name, kind=l.op)
        for a in self.aux:
            g.add_node(a.name, kind=a.kind)
        for n, srcs in self.inputs.items():
            for x in srcs:
                g.add_edge(x, n)
        return g

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
            "layers": [_with_inputs(_layer_json(l), self.inputs) for l in self.layers],
            "aux": [_with_inputs(a.to_dict(), self.inputs) for a in self.aux],
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
        given = [n.inputs is not None for n in (*spec.layers, *spec.aux)]
        if any(given) and not all(given):
            raise WorkloadError(f"{source}: 'inputs' (the graph edges) must be given for every layer and "
                                f"operator or for none")
        inputs = {n.name: tuple(n.inputs) for n in (*spec.layers, *spec.aux)} if any(given) else {}
        try:
            net = cls(name=spec.name, layers=layers, aux=aux, resolution=spec.resolution, inputs=inputs)
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
