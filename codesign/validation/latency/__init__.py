"""Latency backends: one protocol over analytical models, per-operator lookup tables,
measured PyTorch / ONNX Runtime and a remote board agent (see :mod:`.base`)."""
from .base import (BackendUnavailable, LatencyBackend, LatencyError, LatencyResult, Target, as_target,
                   backend_schemes, get_backend, register, split_spec)

__all__ = ["BackendUnavailable", "LatencyBackend", "LatencyError", "LatencyResult", "Target", "as_target",
           "backend_schemes", "get_backend", "register", "split_spec"]
