"""OFA / ProxylessNAS ``net.config`` JSON -> ``Network``.

The format is the one the Once-for-All and ProxylessNAS authors publish for their networks:
``first_conv``, a list of ``blocks`` (``MobileInvertedResidualBlock`` / ``ResidualBlock``
holding an ``MBInvertedConvLayer`` / ``MBConvLayer`` or a ``ZeroLayer``, and an
``IdentityLayer`` / ``ZeroLayer`` / null shortcut), then either

- MobileNetV3 style: ``final_expand_layer`` (1x1 conv), global pool, ``feature_mix_layer``
  (1x1 conv on the pooled 1x1 map), ``classifier``; or
- ProxylessNAS / MobileNetV2 style: ``feature_mix_layer`` (1x1 conv), global pool,
  ``classifier``.

Convolutions use "same" padding (``kernel // 2`` times the dilation), as OFA does. Batch
norms and activations carry no MACs and are not listed; residual adds, the global pool and
the squeeze-and-excitation pool/scale are ``AuxOp``. Layer names: ``first_conv``,
``blocks.<i>.expand``, ``blocks.<i>.depthwise``, ``blocks.<i>.se.fc1`` / ``.se.fc2``,
``blocks.<i>.project``, ``blocks.<i>.add``, ``final_expand_layer``, ``global_pool``,
``feature_mix_layer``, ``classifier``.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import WorkloadError
from .network import Network
from .zoo._builder import NetBuilder, make_divisible

DEFAULT_RESOLUTION = 224
BLOCK_TYPES = ("MobileInvertedResidualBlock", "ResidualBlock")
MBCONV_TYPES = ("MBInvertedConvLayer", "MBConvLayer")
SE_REDUCTION = 4  # OFA's SEModule: squeeze to make_divisible(mid // 4, 8) channels


def load_net_config(path) -> dict:
    """Read a ``net.config`` JSON file (or the ``net.config`` inside a directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / "net.config"
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise WorkloadError(f"net.config not found: {p}") from None
    except OSError as e:
        raise WorkloadError(f"cannot read net.config {p}: {e.strerror or e}") from None
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise WorkloadError(f"{p}: malformed JSON ({e.msg} at line {e.lineno} col {e.colno})") from None
    if not isinstance(cfg, dict):
        raise WorkloadError(f"{p}: a net.config must be a JSON object, got {type(cfg).__name__}")
    return cfg


def run_config_resolution(path) -> int | None:
    """``image_size`` from the ``run.config`` beside a ``net.config`` (or in a directory), if any."""
    p = Path(path)
    run = (p if p.is_dir() else p.parent) / "run.config"
    if not run.is_file():
        return None
    try:
        size = json.loads(run.read_text()).get("image_size")
    except (json.JSONDecodeError, OSError, AttributeError):
        raise WorkloadError(f"{run}: malformed run.config") from None
    if isinstance(size, list) and size:
        size = max(size)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise WorkloadError(f"{run}: image_size {size!r} is not a positive integer")
    return size


# ---- field access with clear errors ---------------------------------------------------------
def _get(d: dict, key: str, where: str, default=...):
    if not isinstance(d, dict):
        raise WorkloadError(f"net.config: {where} must be an object, got {type(d).__name__}")
    if key not in d:
        if default is ...:
            raise WorkloadError(f"net.config: {where} has no '{key}'")
        return default
    return d[key]


def _int(d: dict, key: str, where: str, default=...) -> int:
    v = _get(d, key, where, default)
    if isinstance(v, list) and len(v) == 1:  # OFA writes some channel counts as one-element lists
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise WorkloadError(f"net.config: {where}.{key}={v!r} must be a positive integer")
    return v


def _check_in(b: NetBuilder, cfg: dict, where: str) -> None:
    c_in = _int(cfg, "in_channels", where, b.c)
    if c_in != b.c:
        raise WorkloadError(f"net.config: {where} expects {c_in} input channels but receives {b.c}")


# ---- layers ---------------------------------------------------------------------------------
def _conv_layer(b: NetBuilder, cfg: dict, name: str) -> None:
    """OFA ``ConvLayer``: conv (+BN +activation) with same padding."""
    if _get(cfg, "name", name) != "ConvLayer":
        raise WorkloadError(f"net.config: {name} is a {cfg.get('name')!r}, expected ConvLayer")
    _check_in(b, cfg, name)
    k = _int(cfg, "kernel_size", name)
    dil = _int(cfg, "dilation", name, 1)
    b.conv(name, _int(cfg, "out_channels", name), k, stride=_int(cfg, "stride", name, 1),
           groups=_int(cfg, "groups", name, 1), padding=dil * (k // 2), dilation=dil,
           bias=bool(cfg.get("bias", False)))


def mbconv_mid_channels(cfg: dict, where: str = "block") -> int:
    """Expanded width of an MBConv: ``mid_channels`` if given, else round(in * expand_ratio)."""
    mid = cfg.get("mid_channels")
    if mid is not None:
        return _int(cfg, "mid_channels", where)
    e = _get(cfg, "expand_ratio", where)
    if isinstance(e, bool) or not isinstance(e, (int, float)) or e <= 0:
        raise WorkloadError(f"net.config: {where}.expand_ratio={e!r} must be a positive number")
    return int(round(_int(cfg, "in_channels", where) * e))


def _mbconv(b: NetBuilder, cfg: dict, prefix: str) -> None:
    """Inverted bottleneck: [expand 1x1] -> depthwise kxk (stride) -> [SE] -> project 1x1."""
    _check_in(b, cfg, prefix)
    groups = cfg.get("groups")
    if groups not in (None, 1):
        raise WorkloadError(f"net.config: {prefix} uses grouped point-wise convolutions (groups={groups}), "
                            "which are not supported")
    k = _int(cfg, "kernel_size", prefix)
    stride = _int(cfg, "stride", prefix, 1)
    mid = mbconv_mid_channels(cfg, prefix)
    if _get(cfg, "expand_ratio", prefix, None) != 1:
        b.conv(f"{prefix}.expand", mid, 1)
    elif mid != b.c:
        raise WorkloadError(f"net.config: {prefix} has expand_ratio 1 but mid_channels {mid} != {b.c}")
    b.dwconv(f"{prefix}.depthwise", k, stride=stride)
    if cfg.get("use_se"):
        b.se(f"{prefix}.se", make_divisible(mid // SE_REDUCTION, 8))
    b.conv(f"{prefix}.project", _int(cfg, "out_channels", prefix), 1)


def _block(b: NetBuilder, cfg: dict, i: int) -> None:
    prefix = f"blocks.{i}"
    kind = _get(cfg, "name", prefix)
    if kind not in BLOCK_TYPES:
        raise WorkloadError(f"net.config: {prefix} has unsupported block type {kind!r} "
                            f"(supported: {', '.join(BLOCK_TYPES)})")
    conv = cfg.get("mobile_inverted_conv", cfg.get("conv"))
    shortcut = cfg.get("shortcut")
    sc_kind = None if shortcut is None else _get(shortcut, "name", f"{prefix}.shortcut")
    if sc_kind not in (None, "IdentityLayer", "ZeroLayer"):
        raise WorkloadError(f"net.config: {prefix}.shortcut has unsupported type {sc_kind!r}")
    conv_kind = None if conv is None else _get(conv, "name", prefix)
    if conv_kind in (None, "ZeroLayer"):
        return  # the block passes its input through unchanged
    entry = b.state()
    if conv_kind in MBCONV_TYPES:
        _mbconv(b, conv, prefix)
    elif conv_kind == "ConvLayer":
        _conv_layer(b, conv, f"{prefix}.conv")
    else:
        raise WorkloadError(f"net.config: {prefix} has unsupported layer type {conv_kind!r} "
                            f"(supported: {', '.join(MBCONV_TYPES + ('ConvLayer', 'ZeroLayer'))})")
    if sc_kind == "IdentityLayer":
        if b.state() != entry:
            raise WorkloadError(f"net.config: {prefix} has an identity shortcut but changes the shape "
                                f"{entry} -> {b.state()}")
        b.add(f"{prefix}.add")


def _linear(b: NetBuilder, cfg: dict, name: str) -> None:
    if _get(cfg, "name", name) != "LinearLayer":
        raise WorkloadError(f"net.config: {name} is a {cfg.get('name')!r}, expected LinearLayer")
    c_in = _int(cfg, "in_features", name)
    if c_in != b.c * b.h * b.w:
        raise WorkloadError(f"net.config: {name} expects {c_in} features but receives {b.c * b.h * b.w}")
    b.fc(name, _int(cfg, "out_features", name), bias=bool(cfg.get("bias", True)))


def network_from_net_config(cfg: dict, resolution: int | None = None, name: str | None = None,
                            batch: int = 1) -> Network:
    """Build the layer list of an OFA MobileNetV3 or ProxylessNAS ``net.config`` at ``resolution``."""
    if not isinstance(cfg, dict):
        raise WorkloadError(f"net.config must be a JSON object, got {type(cfg).__name__}")
    r = DEFAULT_RESOLUTION if resolution is None else resolution
    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise WorkloadError(f"resolution must be a positive integer, got {r!r}")
    name = name or str(cfg.get("name") or "net_config")
    blocks = _get(cfg, "blocks", "net.config")
    if not isinstance(blocks, list):
        raise WorkloadError("net.config: 'blocks' must be a list")
    b = NetBuilder(name, 3, r, batch)
    _conv_layer(b, _get(cfg, "first_conv", "net.config"), "first_conv")
    for i, block in enumerate(blocks):
        _block(b, block, i)
    final_expand = cfg.get("final_expand_layer")
    mix = cfg.get("feature_mix_layer")
    if final_expand is not None:  # MobileNetV3: expand, pool, then mix on the 1x1 map
        _conv_layer(b, final_expand, "final_expand_layer")
        b.adaptive_pool("global_pool", 1)
        if mix is not None:
            _conv_layer(b, mix, "feature_mix_layer")
    else:  # ProxylessNAS / MobileNetV2: mix, then pool
        if mix is not None:
            _conv_layer(b, mix, "feature_mix_layer")
        b.adaptive_pool("global_pool", 1)
    _linear(b, _get(cfg, "classifier", "net.config"), "classifier")
    return b.build(r, source="net.config")
