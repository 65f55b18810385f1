"""The network zoo: reference networks built from their stage tables at any input size.

``get_network("resnet50")`` returns a ``Network`` whose MAC total matches the published value
at 224x224; names are case-insensitive and accept ``-`` or ``_``.
"""
from __future__ import annotations

from ..errors import WorkloadError
from ..network import Network
from . import bert, classic, mobile, resnet, unet

DEFAULT_RESOLUTION = 224

# name -> (build function, kind); "image" nets take a square input size, "sequence" nets a length.
_ZOO = {
    "alexnet": (classic.alexnet, "image"),
    "vgg16": (classic.vgg16, "image"),
    "resnet18": (resnet.resnet18, "image"),
    "resnet50": (resnet.resnet50, "image"),
    "mobilenet_v2": (mobile.mobilenet_v2, "image"),
    "mobilenet_v3_large": (mobile.mobilenet_v3_large, "image"),
    "mnasnet1_0": (mobile.mnasnet1_0, "image"),
    "squeezenet1_1": (classic.squeezenet1_1, "image"),
    "unet": (unet.unet, "image"),
    "bert_base_layer": (bert.bert_base_layer, "sequence"),
}
_DEFAULT_SIZE = {"unet": unet.DEFAULT_RESOLUTION}


def names() -> list[str]:
    """Canonical names of the zoo networks."""
    return list(_ZOO)


def _squash(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


_BY_SQUASHED = {_squash(n): n for n in _ZOO}


def canonical_name(name: str) -> str | None:
    """The zoo name ``name`` refers to, or None. Case and the separators ``- _ .`` and spaces are
    ignored, so ``ResNet-50``, ``mobilenetv2`` and ``MnasNet-1.0`` all resolve."""
    return _BY_SQUASHED.get(_squash(name))


def default_resolution(name: str) -> int | None:
    """Input size used when none is given (None for sequence models)."""
    key = canonical_name(name)
    if key is None or _ZOO[key][1] != "image":
        return None
    return _DEFAULT_SIZE.get(key, DEFAULT_RESOLUTION)


def _positive(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise WorkloadError(f"{what} must be a positive integer, got {value!r}")
    return value


def get_network(name: str, resolution: int | None = None, batch: int = 1,
                seq_len: int | None = None) -> Network:
    """Build zoo network ``name`` at an input size (square images) or sequence length (BERT)."""
    key = canonical_name(name)
    if key is None:
        raise WorkloadError(f"unknown network {name!r} (known: {', '.join(_ZOO)})")
    fn, kind = _ZOO[key]
    batch = _positive(batch, "batch")
    if kind == "sequence":
        if resolution is not None:
            raise WorkloadError(f"{key} takes a sequence length (seq_len), not an input resolution")
        seq_len = bert.DEFAULT_SEQ_LEN if seq_len is None else _positive(seq_len, "seq_len")
        return fn(seq_len=seq_len, batch=batch)
    if seq_len is not None:
        raise WorkloadError(f"{key} takes an input resolution, not a sequence length")
    resolution = default_resolution(key) if resolution is None else _positive(resolution, "resolution")
    return fn(resolution=resolution, batch=batch)
