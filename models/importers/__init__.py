"""Importers: a zoo name, an ONNX file, a Network JSON or an OFA ``net.config`` -> ``Network``."""
from __future__ import annotations

import os

from ..errors import WorkloadError
from ..network import Network


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
