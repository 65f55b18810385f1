"""Mappings of layers onto accelerators: representation, space, encoding, optimizers, cache,
and whole-network evaluation."""
from .mapping import Mapping
from .space import MappingSpace

__all__ = ["Mapping", "MappingSpace", "MapResult", "optimize", "OPTIMIZERS", "OBJECTIVES",
           "MappingCache", "default_cache", "evaluate_network", "NetworkCost", "encode", "decode"]


def __getattr__(name):
    # the optimizers pull in the numba kernel: import them only when asked for
    if name in ("MapResult", "optimize", "OPTIMIZERS", "OBJECTIVES"):
        from . import optimizers
        return getattr(optimizers, name)
    if name in ("MappingCache", "default_cache"):
        from . import cache
        return getattr(cache, name)
    if name in ("evaluate_network", "NetworkCost"):
        from . import evaluate
        return getattr(evaluate, name)
    if name in ("encode", "decode"):
        from . import encoding
        return getattr(encoding, name)
    raise AttributeError(f"module 'mappings' has no attribute {name!r}")
