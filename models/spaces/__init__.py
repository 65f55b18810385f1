"""Architecture search spaces as layer generators (no torch needed).

``get_space("ofa-mbv3")`` returns a ``SearchSpace``; ``names()`` lists the known spaces.
"""
from __future__ import annotations

from ..errors import WorkloadError
from .base import SearchSpace
from .nasbench201 import NasBench201Space, arch_from_string, arch_to_string, nasbench201_from_onehot
from .ofa_mbv3 import OfaMbv3Space, arch_from_net_config, detect_width_mult
from .ofa_proxyless import OfaProxylessSpace
from .ofa_resnet50 import OfaResNet50Space

__all__ = ["SearchSpace", "get_space", "names", "OfaMbv3Space", "OfaProxylessSpace", "OfaResNet50Space",
           "NasBench201Space", "arch_from_net_config", "detect_width_mult", "arch_from_string",
           "arch_to_string", "nasbench201_from_onehot"]

_SPACES = {
    "ofa-mbv3": lambda: OfaMbv3Space(1.2, name="ofa-mbv3"),  # the width the accuracy predictor is for
    "ofa-mbv3-w1.0": lambda: OfaMbv3Space(1.0, name="ofa-mbv3-w1.0"),
    "ofa-proxyless": lambda: OfaProxylessSpace(1.3, name="ofa-proxyless"),
    "ofa-resnet50": lambda: OfaResNet50Space(),
    "nasbench201": lambda: NasBench201Space(),
}
_ALIASES = {"ofa-mbv3-w1.2": "ofa-mbv3", "ofa-proxyless-w1.3": "ofa-proxyless", "nas-bench-201": "nasbench201"}


def names() -> list[str]:
    """Names ``get_space`` accepts."""
    return list(_SPACES)


def get_space(name: str) -> SearchSpace:
    """The search space called ``name`` (case-insensitive, ``_`` or ``-``)."""
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _SPACES:
        raise WorkloadError(f"unknown search space {name!r} (known: {', '.join(_SPACES)})")
    return _SPACES[key]()
