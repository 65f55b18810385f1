"""Importers: a zoo name, an ONNX file, a Network JSON or an OFA ``net.config`` -> ``Network``."""
from __future__ import annotations

import os

from dataclasses import replace

from ..errors import WorkloadError
from ..network import Network
from ..schema import MAX_NODE_INPUTS, NETWORK_INPUT


class Unattributed:
    """The value of a tensor an importer cannot trace back to one recorded node (an operator it
    does not model that reads several of them); ``where`` names that operator."""

    __slots__ = ("where",)

    def __init__(self, where: str):
        self.where = where


class EdgeRecorder:
    """Graph edges collected while an importer walks a model in topological order.

    Every tensor of the model has a *value*: the key of the recorded node (layer or operator)
    that produced it, ``INPUT`` for a graph input, ``None`` for a constant (weights and what is
    computed from them or from shapes only), or an ``Unattributed``. Operators the importer does
    not record (activations, norms, reshapes, ...) pass the value of their inputs on
    (``merge``). When a recorded node reads an ``Unattributed`` tensor, or nothing attributable,
    the network gets no edges at all (``Network.inputs == {}``), never guessed ones.
    """

    INPUT = -1

    def __init__(self):
        self.nodes: list[tuple[str, int]] = []       # ("layer" | "aux", index), in creation order
        self.reads: list[tuple[int, ...]] = []       # the keys each node reads
        self.problem: str | None = None

    def fail(self, why: str) -> None:
        if self.problem is None:
            self.problem = why

    @staticmethod
    def merge(values, where: str):
        """The value of the output of an operator that is not recorded and reads ``values``."""
        out = []
        for v in values:
            if isinstance(v, Unattributed):
                return v
            if v is not None and v not in out:
                out.append(v)
        if not out:
            return None
        return out[0] if len(out) == 1 else Unattributed(where)

    def record(self, kind: str, index: int, values, where: str) -> int:
        """Record layer / aux ``index`` reading ``values``; returns its key."""
        reads = []
        for v in values:
            if isinstance(v, Unattributed):
                self.fail(f"'{where}' reads the output of '{v.where}', which joins several tensors in a way "
                          f"the importer does not model")
            elif v is not None and v not in reads:
                reads.append(v)
        if not reads:
            self.fail(f"'{where}' reads no tensor the importer can trace to the input or a layer")
        self.nodes.append((kind, index))
        self.reads.append(tuple(reads))
        return len(self.nodes) - 1

    # ---- the result -------------------------------------------------------------------------
    def _inputs(self, layers: list, aux: list):
        """``(layers, aux, inputs)`` with the residual adds' main branch first and names made distinct."""
        if sorted(self.nodes) != sorted([("aux", i) for i in range(len(aux))]
                                        + [("layer", i) for i in range(len(layers))]):
            raise WorkloadError("not every layer and operator was traced")
        too_many = [k for k, r in enumerate(self.reads) if len(r) > MAX_NODE_INPUTS]
        if too_many:
            raise WorkloadError(f"a node reads more than {MAX_NODE_INPUTS} tensors")
        # depth: MAC layers on the longest path from the input
        depth = []
        for k, (kind, _) in enumerate(self.nodes):
            d = max((depth[r] if r >= 0 else 0) for r in self.reads[k])
            depth.append(d + (kind == "layer"))
        reads = list(self.reads)
        for k, (kind, i) in enumerate(self.nodes):
            if kind == "aux" and aux[i].kind == "add" and len(reads[k]) >= 2:
                # the main branch has more layers since the block input (an identity or projection
                # shortcut has fewer); on a tie the more recent producer comes first
                reads[k] = tuple(sorted(reads[k], key=lambda r: (depth[r] if r >= 0 else 0, r), reverse=True))
        # names: a layer may not be called like the network input, and operator names must
        # differ from layer names and from each other (an operator gets a '#n' suffix)
        layers, aux = list(layers), list(aux)
        taken = {l.name for l in layers} | {NETWORK_INPUT}

        def fresh(base: str) -> str:
            n = 2
            while f"{base}#{n}" in taken:
                n += 1
            taken.add(f"{base}#{n}")
            return f"{base}#{n}"

        for i, l in enumerate(layers):
            if l.name == NETWORK_INPUT:
                layers[i] = replace(l, name=fresh(l.name))
        for i, a in enumerate(aux):
            if a.name in taken:
                aux[i] = replace(a, name=fresh(a.name))
            else:
                taken.add(a.name)
        names = [layers[i].name if kind == "layer" else aux[i].name for kind, i in self.nodes]
        inputs = {names[k]: tuple(names[r] if r >= 0 else NETWORK_INPUT for r in reads[k])
                  for k in range(len(self.nodes))}
        return layers, aux, inputs

    def network(self, name: str, layers, aux, resolution, meta: dict) -> Network:
        """The ``Network`` with its graph edges, or without any where they are not all known
        (``meta["graph"]`` then says why)."""
        if self.problem is None:
            try:
                l2, a2, inputs = self._inputs(list(layers), list(aux))
                return Network(name, tuple(l2), tuple(a2), resolution=resolution, meta=meta, inputs=inputs)
            except WorkloadError as e:
                self.fail(str(e))
        meta = {**meta, "graph": f"no graph edges: {self.problem}"}
        return Network(name, tuple(layers), tuple(aux), resolution=resolution, meta=meta)


def from_torch(module, input_shape: tuple, name: str = "torch") -> Network:
    """See ``models.importers.torch_import.from_torch``."""
    from .torch_import import from_torch as _from_torch
    return _from_torch(module, input_shape, name=name)


def from_onnx(path_or_model, name: str | None = None) -> Network:
    """See ``models.importers.onnx_import.from_onnx``."""
    from .onnx_import import from_onnx as _from_onnx
    return _from_onnx(path_or_model, name=name)


def is_net_config(cfg) -> bool:
    """Does a parsed JSON look like an OFA / ProxylessNAS ``net.config``?"""
    return isinstance(cfg, dict) and "blocks" in cfg and ("first_conv" in cfg or "classifier" in cfg)


def _check_resolution(net: Network, resolution: int | None, spec: str) -> Network:
    if resolution is not None and net.resolution is None:
        raise WorkloadError(f"{spec}: a list of layers has no input resolution to change; --resolution applies "
                            f"to zoo networks, net.configs and search-space archs")
    if resolution is not None and resolution != net.resolution:
        raise WorkloadError(f"{spec}: the file fixes the input size ({net.resolution}); "
                            f"--resolution {resolution} cannot change it")
    return net


def network_from_json(cfg, name: str, resolution: int | None = None, source: str | None = None) -> Network:
    """A parsed JSON document: a ``Network.to_dict()`` description or an OFA ``net.config``.

    ``source`` (the file) prefixes schema errors; it defaults to ``name``.
    """
    source = source or name
    if is_net_config(cfg):
        from ..netconfig import network_from_net_config
        return network_from_net_config(cfg, resolution=resolution, name=name, source=source)
    if isinstance(cfg, dict) and "layers" in cfg:
        return _check_resolution(Network.from_dict(cfg, source=source), resolution, source)
    raise WorkloadError(f"{source}: JSON is neither a network description (no 'layers') "
                        f"nor an OFA net.config (no 'blocks')")


def load_workload(spec: str, resolution: int | None = None, *, batch: int = 1,
                  seq_len: int | None = None) -> Network:
    """Resolve ``spec``: a zoo name, or a path to an ``.onnx`` file, a Network JSON or a ``net.config``.

    ``batch`` and ``seq_len`` apply to zoo networks only; files fix their own shapes. A
    ``net.config`` without ``resolution`` takes the ``image_size`` of a ``run.config`` beside it.
    """
    from .. import zoo
    from ..inputs import load_json_file
    spec = str(spec)
    if os.path.isfile(spec) and (batch != 1 or seq_len is not None):
        raise WorkloadError(f"{spec}: batch and sequence length apply to zoo networks only; the file fixes its shapes")
    if os.path.isfile(spec):
        base = os.path.splitext(os.path.basename(spec))[0] or "network"
        if spec.lower().endswith(".onnx"):
            return _check_resolution(from_onnx(spec, name=base), resolution, spec)
        try:
            with open(spec, "rb") as f:
                head = f.read(64)
        except OSError:
            head = b""  # load_json_file names the problem
        if head[:1] == b"\x08":  # an ONNX protobuf starts with field 1 (ir_version); JSON never does
            raise WorkloadError(f"{spec}: a binary file, not JSON (ONNX files need the .onnx suffix)")
        cfg = load_json_file(spec, error=WorkloadError)
        if base == "net" and os.path.basename(spec) == "net.config":
            base = os.path.basename(os.path.dirname(os.path.abspath(spec))) or "net"
        if resolution is None and is_net_config(cfg):
            from ..netconfig import run_config_resolution
            resolution = run_config_resolution(spec)
        return network_from_json(cfg, base, resolution, source=spec)
    if zoo.canonical_name(spec) is not None:
        return zoo.get_network(spec, resolution=resolution, batch=batch, seq_len=seq_len)
    if os.path.exists(spec):
        raise WorkloadError(f"{spec}: not a regular file")
    if os.sep in spec or spec.lower().endswith((".json", ".onnx", ".config")):
        raise WorkloadError(f"file not found: {spec}")
    raise WorkloadError(f"unknown network {spec!r}: not a file, and not one of {', '.join(zoo.names())}")
