"""Importers: a zoo name, an ONNX file, a Network JSON or an OFA ``net.config`` -> ``Network``."""
from __future__ import annotations

import json
import os

from ..errors import CodesignError, WorkloadError
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
    if resolution is not None and resolution != net.resolution:
        raise WorkloadError(f"{spec}: the file fixes the input size ({net.resolution}); "
                            f"--resolution {resolution} cannot change it")
    return net


def network_from_json(cfg, name: str, resolution: int | None = None) -> Network:
    """A parsed JSON document: a ``Network.to_dict()`` description or an OFA ``net.config``."""
    if is_net_config(cfg):
        try:
            from ..netconfig import network_from_net_config
        except ImportError:
            raise WorkloadError(f"{name}: net.config files need models.netconfig, which is not available") from None
        return network_from_net_config(cfg, resolution=resolution, name=name)
    if isinstance(cfg, dict) and "layers" in cfg:
        try:
            net = Network.from_dict(cfg)
        except CodesignError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError) as e:
            raise WorkloadError(f"{name}: malformed network description ({e})") from None
        return _check_resolution(net, resolution, name)
    raise WorkloadError(f"{name}: JSON is neither a network description (no 'layers') "
                        f"nor an OFA net.config (no 'blocks')")


def _run_config_image_size(net_config_path: str) -> int | None:
    """The ``image_size`` of an OFA ``run.config`` beside a ``net.config`` (the size it was evaluated at)."""
    path = os.path.join(os.path.dirname(os.path.abspath(net_config_path)), "run.config")
    try:
        with open(path, encoding="utf-8") as f:
            size = json.load(f).get("image_size")
    except (OSError, ValueError, AttributeError):
        return None
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def load_workload(spec: str, resolution: int | None = None, *, batch: int = 1,
                  seq_len: int | None = None) -> Network:
    """Resolve ``spec``: a zoo name, or a path to an ``.onnx`` file, a Network JSON or a ``net.config``.

    ``batch`` and ``seq_len`` apply to zoo networks only; files fix their own shapes. A
    ``net.config`` without ``resolution`` takes the ``image_size`` of a ``run.config`` beside it.
    """
    from .. import zoo
    spec = str(spec)
    if os.path.isfile(spec) and (batch != 1 or seq_len is not None):
        raise WorkloadError(f"{spec}: batch and sequence length apply to zoo networks only; the file fixes its shapes")
    if os.path.isfile(spec):
        base = os.path.splitext(os.path.basename(spec))[0] or "network"
        if spec.lower().endswith(".onnx"):
            return _check_resolution(from_onnx(spec, name=base), resolution, spec)
        try:
            with open(spec, encoding="utf-8") as f:
                cfg = json.load(f)
        except UnicodeDecodeError:
            raise WorkloadError(f"{spec}: not a text JSON file (ONNX files need the .onnx suffix)") from None
        except json.JSONDecodeError as e:
            raise WorkloadError(f"{spec}: malformed JSON ({e.msg} at line {e.lineno} col {e.colno})") from None
        if base == "net" and os.path.basename(spec) == "net.config":
            base = os.path.basename(os.path.dirname(os.path.abspath(spec))) or "net"
        if resolution is None and is_net_config(cfg):
            resolution = _run_config_image_size(spec)
        return network_from_json(cfg, base, resolution)
    if zoo.canonical_name(spec) is not None:
        return zoo.get_network(spec, resolution=resolution, batch=batch, seq_len=seq_len)
    if os.path.exists(spec):
        raise WorkloadError(f"{spec}: not a regular file")
    if os.sep in spec or spec.lower().endswith((".json", ".onnx", ".config")):
        raise WorkloadError(f"file not found: {spec}")
    raise WorkloadError(f"unknown network {spec!r}: not a file, and not one of {', '.join(zoo.names())}")
