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

from pathlib import Path

from .errors import WorkloadError
from .inputs import load_json_file, validate
from .schema import (MAX_DIM, NC_BLOCK_TYPES, NC_MBCONV_TYPES, NcBlock, NcLayer, NetConfigSpec, RunConfigSpec,
                     check_resolution, int_range_problem)
from .network import Network
from .zoo._builder import NetBuilder, make_divisible

DEFAULT_RESOLUTION = 224
BLOCK_TYPES = NC_BLOCK_TYPES
MBCONV_TYPES = NC_MBCONV_TYPES
SE_REDUCTION = 4  # OFA's SEModule: squeeze to make_divisible(mid // 4, 8) channels


def load_net_config(path) -> dict:
    """Read a ``net.config`` JSON file (or the ``net.config`` inside a directory); safe, bounded."""
    p = Path(path)
    if p.is_dir():
        p = p / "net.config"
    cfg = load_json_file(p, error=WorkloadError)
    if not isinstance(cfg, dict):
        raise WorkloadError(f"{p}: a net.config must be a JSON object, got {type(cfg).__name__}")
    return cfg


def run_config_resolution(path) -> int | None:
    """``image_size`` from the ``run.config`` beside a ``net.config`` (or in a directory), if any.

    A list of sizes (OFA's training resolutions) gives its largest entry.
    """
    p = Path(path)
    run = (p if p.is_dir() else p.parent) / "run.config"
    if not run.is_file():
        return None
    return validate(RunConfigSpec, load_json_file(run, error=WorkloadError), str(run), error=WorkloadError).image_size


def parse_net_config(cfg, source: str = "net.config") -> NetConfigSpec:
    """The schema-checked ``net.config`` (types and ranges of every field that shapes a layer)."""
    return validate(NetConfigSpec, cfg, source, error=WorkloadError)


def mbconv_mid_channels(cfg, where: str = "block") -> int:
    """Expanded width of an MBConv: ``mid_channels`` if given, else round(in * expand_ratio)."""
    if not isinstance(cfg, NcLayer):
        cfg = validate(NcLayer, {"name": "MBConvLayer", **cfg} if isinstance(cfg, dict) else cfg,
                       f"net.config: {where}", error=WorkloadError)
    if cfg.mid_channels is not None:
        return cfg.mid_channels
    if cfg.expand_ratio is None or cfg.in_channels is None:
        raise WorkloadError(f"net.config: {where} needs mid_channels, or expand_ratio and in_channels")
    return int(round(cfg.in_channels * cfg.expand_ratio))


# ---- layers ---------------------------------------------------------------------------------
class _Build:
    """Appends the layers of a validated net.config; errors name ``source`` and the config path."""

    def __init__(self, b: NetBuilder, source: str):
        self.b, self.source = b, source

    def error(self, where: str, msg: str) -> WorkloadError:
        return WorkloadError(f"{self.source}: {where}: {msg}")

    def check_in(self, layer: NcLayer, where: str) -> None:
        if layer.in_channels is not None and layer.in_channels != self.b.c:
            raise self.error(where, f"expects {layer.in_channels} input channels but receives {self.b.c}")

    def conv_layer(self, layer: NcLayer, where: str, name: str) -> None:
        """OFA ``ConvLayer``: conv (+BN +activation) with same padding."""
        self.check_in(layer, where)
        k, dil, groups = layer.kernel_size, layer.dilation, layer.groups or 1
        if self.b.c % groups or layer.out_channels % groups:
            raise self.error(where, f"channels {self.b.c}->{layer.out_channels} are not divisible by "
                                    f"groups={groups}")
        self.b.conv(name, layer.out_channels, k, stride=layer.stride, groups=groups, padding=dil * (k // 2),
                    dilation=dil, bias=bool(layer.bias))

    def mbconv(self, layer: NcLayer, where: str, prefix: str) -> None:
        """Inverted bottleneck: [expand 1x1] -> depthwise kxk (stride) -> [SE] -> project 1x1."""
        self.check_in(layer, where)
        if layer.groups not in (None, 1):
            raise self.error(where, f"grouped point-wise convolutions (groups={layer.groups}) are not supported")
        if layer.mid_channels is None and layer.in_channels is None:
            layer = layer.model_copy(update={"in_channels": self.b.c})
        mid = mbconv_mid_channels(layer, where)
        if layer.expand_ratio != 1:
            self.b.conv(f"{prefix}.expand", mid, 1)
        elif mid != self.b.c:
            raise self.error(where, f"expand_ratio 1 but mid_channels {mid} != {self.b.c}")
        self.b.dwconv(f"{prefix}.depthwise", layer.kernel_size, stride=layer.stride)
        if layer.use_se:
            self.b.se(f"{prefix}.se", make_divisible(mid // SE_REDUCTION, 8))
        self.b.conv(f"{prefix}.project", layer.out_channels, 1)

    def block(self, block: NcBlock, i: int) -> None:
        prefix, where = f"blocks.{i}", f"blocks[{i}]"
        body = block.body
        if body is None or body.name == "ZeroLayer":
            return  # the block passes its input through unchanged
        field = "mobile_inverted_conv" if block.mobile_inverted_conv is not None else "conv"
        entry = self.b.state()
        if body.name in MBCONV_TYPES:
            self.mbconv(body, f"{where}.{field}", prefix)
        else:
            self.conv_layer(body, f"{where}.{field}", f"{prefix}.conv")
        if block.shortcut is not None and block.shortcut.name == "IdentityLayer":
            if self.b.state()[:3] != entry[:3]:
                raise self.error(where, f"an identity shortcut but the block changes the shape "
                                        f"{entry[:3]} -> {self.b.state()[:3]}")
            self.b.add(f"{prefix}.add", entry)

    def linear(self, layer: NcLayer, name: str) -> None:
        b = self.b
        if layer.in_features != b.c * b.h * b.w:
            raise self.error(name, f"expects {layer.in_features} features but receives {b.c * b.h * b.w}")
        b.fc(name, layer.out_features, bias=True if layer.bias is None else layer.bias)


def network_from_net_config(cfg, resolution: int | None = None, name: str | None = None,
                            batch: int = 1, source: str = "net.config") -> Network:
    """Build the layer list of an OFA MobileNetV3 or ProxylessNAS ``net.config`` at ``resolution``.

    ``cfg`` is a parsed JSON object (or a ``NetConfigSpec``); ``source`` names it in errors.
    """
    if not isinstance(cfg, dict) and not isinstance(cfg, NetConfigSpec):
        raise WorkloadError(f"{source}: a net.config must be a JSON object, got {type(cfg).__name__}")
    spec = cfg if isinstance(cfg, NetConfigSpec) else parse_net_config(cfg, source)
    r = check_resolution(DEFAULT_RESOLUTION if resolution is None else resolution)
    problem = int_range_problem(batch, 1, MAX_DIM)
    if problem:
        raise WorkloadError(f"batch: {problem} (got {batch!r})")
    name = name or spec.name or "net_config"
    nb = NetBuilder(name, 3, r, int(batch))
    b = _Build(nb, source)
    b.conv_layer(spec.first_conv, "first_conv", "first_conv")
    for i, block in enumerate(spec.blocks):
        b.block(block, i)
    if spec.final_expand_layer is not None:  # MobileNetV3: expand, pool, then mix on the 1x1 map
        b.conv_layer(spec.final_expand_layer, "final_expand_layer", "final_expand_layer")
        nb.adaptive_pool("global_pool", 1)
        if spec.feature_mix_layer is not None:
            b.conv_layer(spec.feature_mix_layer, "feature_mix_layer", "feature_mix_layer")
    else:  # ProxylessNAS / MobileNetV2: mix, then pool
        if spec.feature_mix_layer is not None:
            b.conv_layer(spec.feature_mix_layer, "feature_mix_layer", "feature_mix_layer")
        nb.adaptive_pool("global_pool", 1)
    b.linear(spec.classifier, "classifier")
    return nb.build(r, source="net.config")
