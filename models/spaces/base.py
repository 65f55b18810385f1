"""The search-space protocol every architecture family implements.

An architecture is a plain JSON-serializable dict (or, for cell spaces, whatever
``validate`` accepts). Spaces generate layer lists (``to_network``) without torch.
Stochastic operators take a ``numpy.random.Generator`` so that a seed fixes the result;
they never modify their inputs and always return a valid architecture in canonical form.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import WorkloadError
from ..network import Network


class SearchSpace(ABC):
    """Sample, mutate, cross over, encode and build architectures of one family."""

    name: str = "space"

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> dict:
        """A uniformly random architecture."""

    @abstractmethod
    def mutate(self, arch: dict, rng: np.random.Generator, prob: float) -> dict:
        """Resample each gene of ``arch`` independently with probability ``prob``."""

    @abstractmethod
    def crossover(self, a: dict, b: dict, rng: np.random.Generator) -> dict:
        """Uniform crossover: each gene from one of the two parents."""

    @abstractmethod
    def encode(self, arch: dict) -> np.ndarray:
        """Fixed-length numeric feature vector of ``arch``."""

    @abstractmethod
    def decode(self, vec) -> dict:
        """Inverse of ``encode`` (``decode(encode(a)) == a`` for canonical archs)."""

    @abstractmethod
    def size(self) -> int:
        """Exact number of distinct architectures."""

    @abstractmethod
    def validate(self, arch) -> dict:
        """Check ``arch``; return it in canonical form or raise ``WorkloadError``."""

    @abstractmethod
    def to_network(self, arch) -> Network:
        """The layer list of ``arch``."""

    def encode_batch(self, archs) -> np.ndarray:
        """``encode`` applied to a sequence of architectures, stacked as rows."""
        return np.stack([self.encode(a) for a in archs]) if len(archs) else np.zeros((0, 0), np.float32)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# ---- shared by the spaces ----------------------------------------------------------
def short(value, n: int = 60) -> str:
    """``repr(value)`` cut to ``n`` characters, for error lines."""
    s = repr(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def check_prob(prob) -> float:
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
        raise WorkloadError(f"mutation probability must be in [0, 1], got {prob!r}")
    return float(prob)


def int_list(arch: dict, key: str, length: int, choices, space: str) -> list[int]:
    """``arch[key]`` as a list of ``length`` values each in ``choices`` (ints stay ints)."""
    v = arch.get(key) if isinstance(arch, dict) else None
    if not isinstance(v, (list, tuple)):
        raise WorkloadError(f"{space}: arch['{key}'] must be a list of {length} values from {list(choices)}, "
                            f"got {short(v)}")
    if len(v) != length:
        raise WorkloadError(f"{space}: arch['{key}'] must have {length} entries from {list(choices)}, got {len(v)}")
    out = []
    for i, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise WorkloadError(f"{space}: arch['{key}'][{i}]={short(x)} is not a number (accepted: {list(choices)})")
        match = [c for c in choices if c == x]
        if not match:
            raise WorkloadError(f"{space}: arch['{key}'][{i}]={short(x)} is not one of {list(choices)}")
        out.append(match[0])
    return out


def check_keys(arch, required: tuple[str, ...], space: str) -> None:
    if not isinstance(arch, dict):
        raise WorkloadError(f"{space}: an architecture is a JSON object, got {type(arch).__name__}")
    missing = [k for k in required if k not in arch]
    extra = [k for k in arch if k not in required]
    if missing:
        raise WorkloadError(f"{space}: arch is missing {missing} (expected keys {list(required)})")
    if extra:
        raise WorkloadError(f"{space}: arch has unknown key(s) {short(extra)} (expected keys {list(required)})")


def choose(rng: np.random.Generator, choices):
    """One element of ``choices`` as a plain Python value."""
    v = choices[int(rng.integers(len(choices)))]
    return v.item() if hasattr(v, "item") else v
