"""The latency-backend protocol: targets, results, the registry and spec strings.

A *spec string* names a backend everywhere (CLI, configs, studies): ``scheme`` or
``scheme:argument`` — ``analytical:eyeriss``, ``fpga:zcu102:zcu102-1``, ``lut:note10``,
``torch-cpu``, ``torch-cuda``, ``onnxruntime``, ``remote:http://host:port``. Each scheme is
implemented by one module of this package, imported only when a spec names it (so asking
for ``lut:`` never imports torch).
"""
from __future__ import annotations

import base64
import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from models.errors import CodesignError
from models.network import Network

# scheme -> module of this package that registers it
_SCHEME_MODULES = {
    "analytical": "analytical",
    "fpga": "analytical",
    "lut": "lut",
    "torch-cpu": "measured",
    "torch-cuda": "measured",
    "onnxruntime": "measured",
    "remote": "remote",
}
_REGISTRY: dict[str, type] = {}


class LatencyError(CodesignError):
    """A backend cannot measure the target (bad spec, missing operator, unavailable device)."""


class BackendUnavailable(LatencyError):
    """The backend's device or runtime is not present on this machine (e.g. no CUDA GPU)."""


@dataclass(frozen=True)
class LatencyResult:
    """Latency of one network on one backend: ``ms`` is the median (measured), the sum of
    per-operator means (table) or the model's value (analytical); ``spread`` the interquartile
    range of the samples (measured), the root-sum-square of per-operator standard deviations
    (table) or 0 (analytical)."""
    ms: float
    spread: float
    samples: int
    backend: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"ms": self.ms, "spread": self.spread, "samples": self.samples,
                "backend": self.backend, "details": self.details}

    @classmethod
    def from_dict(cls, d: dict) -> "LatencyResult":
        try:
            return cls(float(d["ms"]), float(d["spread"]), int(d["samples"]), str(d["backend"]),
                       dict(d.get("details") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise LatencyError(f"malformed latency result: {e}") from None


@dataclass
class Target:
    """What a backend measures: the layer-level ``network``, and where known the search-space
    ``arch`` (with its ``space`` name) and the OFA-format ``net_config`` a faithful torch
    module is built from."""
    network: Network
    arch: dict | None = None
    space: str | None = None
    net_config: dict | None = None
    # the ONNX model the network was imported from, run as is by onnxruntime: a file here, or
    # its bytes (as a remote agent receives it)
    onnx_path: str | None = None
    onnx_bytes: bytes | None = field(default=None, repr=False)

    def onnx_model(self) -> bytes | None:
        """The ONNX model's bytes, when the target has one."""
        if self.onnx_bytes is not None:
            return self.onnx_bytes
        if self.onnx_path is None:
            return None
        try:
            with open(self.onnx_path, "rb") as f:
                return f.read()
        except OSError as e:
            raise LatencyError(f"cannot read the ONNX file {self.onnx_path!r}: {e.strerror}") from None

    @property
    def key(self) -> str:
        """Stable cache key: the architecture when known, else the network's layer list (and
        the ONNX model's content when there is one)."""
        if self.arch is not None:
            payload = {"space": self.space, "arch": self.arch}
        elif self.net_config is not None:
            payload = {"net_config": self.net_config, "r": self.network.resolution}
        else:
            payload = self.network.to_dict()
            model = self.onnx_model()
            if model is not None:
                payload = {"network": payload, "onnx_sha256": hashlib.sha256(model).hexdigest()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def to_request(self) -> dict:
        """The JSON a remote agent accepts (data only: an arch, a net.config, or a Network with,
        when the target has one, its ONNX model as base64 so an onnxruntime agent runs it as is)."""
        if self.arch is not None and self.space is not None:
            return {"space": self.space, "arch": self.arch}
        if self.net_config is not None:
            return {"net_config": self.net_config, "resolution": self.network.resolution}
        req = {"network": self.network.to_dict()}
        model = self.onnx_model()
        if model is not None:
            req["onnx"] = base64.b64encode(model).decode("ascii")
        return req


def as_target(obj, *, space: str | None = None, resolution: int | None = None) -> Target:
    """Resolve a Network, a Target, a search-space arch (with ``space``), a request dict
    (``{"space", "arch"}``, ``{"net_config", "resolution"}``, ``{"network"}``), an OFA
    ``net.config`` dict, or a workload spec string (zoo name or file) to a Target."""
    from models.importers import is_net_config, load_workload, network_from_json
    from models.spaces import get_space

    if isinstance(obj, Target):
        return obj
    if isinstance(obj, Network):
        return Target(obj)
    if isinstance(obj, str):
        net = load_workload(obj, resolution=resolution)
        if obj.lower().endswith(".onnx"):
            import os
            return Target(net, onnx_path=os.path.abspath(obj))
        return Target(net, net_config=_net_config_file(obj))
    if not isinstance(obj, dict):
        raise LatencyError(f"cannot measure a {type(obj).__name__}: give a Network, an arch or a net.config")
    if "arch" in obj and ("space" in obj or space):
        return as_target(obj["arch"], space=obj.get("space", space))
    if "net_config" in obj:
        return as_target(obj["net_config"], resolution=obj.get("resolution", resolution))
    if "network" in obj:
        return Target(network_from_json(obj["network"], obj["network"].get("name", "network")))
    if is_net_config(obj):
        net = network_from_json(obj, obj.get("name", "net"), resolution)
        return Target(net, net_config=obj)
    if space is None:
        raise LatencyError("an architecture dict needs its search space (e.g. space='ofa-mbv3')")
    sp = get_space(space)
    arch = sp.validate(obj)
    cfg = sp.to_net_config(arch) if hasattr(sp, "to_net_config") else None
    return Target(sp.to_network(arch), arch=arch, space=space, net_config=cfg)


def _net_config_file(path: str) -> dict | None:
    """The OFA-format JSON in ``path`` when it is one, else None."""
    import os

    from models.importers import is_net_config
    if not os.path.isfile(path) or path.lower().endswith(".onnx"):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return None
    return cfg if is_net_config(cfg) else None


class LatencyBackend(ABC):
    """One latency source. Subclasses set ``scheme`` and implement ``_measure``; results are
    cached per target key for the backend's lifetime."""
    scheme: str = ""

    def __init__(self, spec: str):
        self.spec = spec
        self._cache: dict[str, LatencyResult] = {}

    def measure(self, target, *, space: str | None = None) -> LatencyResult:
        """Latency of ``target`` (see :func:`as_target` for what it may be)."""
        t = as_target(target, space=space)
        key = t.key
        if key not in self._cache:
            self._cache[key] = self._measure(t)
        return self._cache[key]

    def measure_many(self, targets, *, space: str | None = None, progress=None) -> list[LatencyResult]:
        """Latency of each of ``targets``, in order. Measured backends interleave the timed
        runs of the targets (see :mod:`.measured`) so that a slow spell of the machine does
        not fall on one architecture; the others measure them one by one. ``progress``: an
        optional callable told each finished target."""
        out = []
        for t in targets:
            out.append(self.measure(t, space=space))
            if progress is not None:
                progress(1)
        return out

    @abstractmethod
    def _measure(self, target: Target) -> LatencyResult:
        ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


def register(*schemes: str):
    """Class decorator: make a backend class reachable by its scheme(s)."""
    def deco(cls):
        for s in schemes:
            _REGISTRY[s] = cls
        return cls
    return deco


def split_spec(spec: str) -> tuple[str, str]:
    """``"lut:note10"`` -> ``("lut", "note10")``; ``"torch-cpu"`` -> ``("torch-cpu", "")``."""
    spec = str(spec).strip()
    scheme, _, arg = spec.partition(":")
    return scheme.strip().lower(), arg.strip()


def get_backend(spec: str, **options) -> LatencyBackend:
    """The backend a spec string names; a clear error for an unknown scheme."""
    scheme, _ = split_spec(spec)
    if scheme not in _REGISTRY and scheme in _SCHEME_MODULES:
        importlib.import_module(f"{__package__}.{_SCHEME_MODULES[scheme]}")
    if scheme not in _REGISTRY:
        raise LatencyError(f"unknown latency backend {spec!r}: use one of {', '.join(backend_schemes())}")
    return _REGISTRY[scheme](spec, **options)


def backend_schemes() -> list[str]:
    return list(_SCHEME_MODULES)
