"""Per-operator latency lookup tables (``lut:`` specs).

A table maps operator keys to measured latencies on a device, in the format the Once-for-All
and ProxylessNAS authors publish::

    expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:0:
      mean: 4.81      # ms
      std: 0.09       # or var:

The network's latency is the sum of its operators' means; the spread is the root of the sum
of their variances. Keys come from the target's OFA-format ``net.config`` and its input
resolution, the way the authors' own latency estimators walk a network:

- ``Conv`` (first conv), one ``expanded_conv`` per MBConv block (blocks whose conv is empty
  are skipped), then the head: MobileNetV3 ``Conv_1`` (final expand), ``AvgPool2D``,
  ``Conv_2`` (feature mix), ``Logits``; ProxylessNAS ``Conv_1`` (feature mix), ``Logits``;
- two key styles, chosen by the table: OFA (``expand`` = expanded channels, ``-se:``/``-hs:``
  flags) and ProxylessNAS (``expand`` = expand ratio, no flags).

Specs: ``lut:<table.yaml>`` (a ``{r}`` in the path is replaced by the input resolution),
``lut:note10`` (the OFA Samsung Note10 tables, one per resolution 160..224) and
``lut:proxyless-mobile`` (the ProxylessNAS mobile table).
"""
from __future__ import annotations

import math
import os
from functools import lru_cache

import yaml

from models.errors import CodesignError

from .base import LatencyBackend, LatencyError, LatencyResult, Target, register, split_spec

OFA_ORIGIN = "the Once-for-All authors' public release files (github.com/han-cai/files)"
PROXYLESS_ORIGIN = "the ProxylessNAS authors' public release files (github.com/han-cai/files)"
# shorthand -> (asset path, with {r} for per-resolution tables; resolutions; where it comes from)
TABLES = {
    "note10": ("ofa/note10/{r}_lookup_table.yaml", (160, 176, 192, 208, 224), OFA_ORIGIN),
    "proxyless-mobile": ("proxylessnas/mobile_trim.yaml", None, PROXYLESS_ORIGIN),
}
MBCONV_TYPES = ("MBInvertedConvLayer", "MBConvLayer")
SHOW_MISSING = 3


@lru_cache(maxsize=16)
def _load_table(path: str, mtime: float) -> dict[str, tuple[float, float]]:
    """``{key: (mean_ms, variance)}`` of a table file (cached per path and modification time)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.load(f, Loader=loader)
    except OSError as e:
        raise LatencyError(f"cannot read latency table {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise LatencyError(f"{name}: malformed YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not raw:
        raise LatencyError(f"{name}: a latency table must be a non-empty mapping of operator keys")
    out = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict) or "mean" not in entry:
            raise LatencyError(f"{name}: entry {key!r} has no 'mean'")
        try:
            mean = float(entry["mean"])
            var = float(entry["var"]) if "var" in entry else float(entry.get("std", 0.0)) ** 2
        except (TypeError, ValueError):
            raise LatencyError(f"{name}: entry {key!r} has a non-numeric mean/std/var") from None
        if not (math.isfinite(mean) and math.isfinite(var)) or mean < 0 or var < 0:
            raise LatencyError(f"{name}: entry {key!r} has a negative or non-finite mean/variance")
        out[str(key)] = (mean, var)
    return out


def table_style(table: dict) -> str:
    """``"ofa"`` when the table's MBConv keys carry ``-se:``/``-hs:`` flags, else ``"proxyless"``."""
    return "ofa" if any(k.startswith("expanded_conv") and "-se:" in k for k in table) else "proxyless"


def _shape(*dims) -> str:
    return "x".join(str(int(d)) for d in dims)


def _int(v, where: str) -> int:
    if isinstance(v, list) and len(v) == 1:  # OFA writes some channel counts as one-element lists
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise LatencyError(f"net.config: {where}={v!r} must be a positive integer")
    return v


def _ratio(e) -> str:
    e = float(e)
    return str(int(e)) if e.is_integer() else f"{e:g}"


def operator_keys(cfg: dict, resolution: int, style: str = "ofa") -> list[str]:
    """The table keys of an OFA MobileNetV3 / ProxylessNAS ``net.config`` at ``resolution``,
    in network order (``style``: ``"ofa"`` or ``"proxyless"``, see the module docstring)."""
    from models.netconfig import mbconv_mid_channels

    if style not in ("ofa", "proxyless"):
        raise LatencyError(f"unknown table key style {style!r} (ofa or proxyless)")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("blocks"), list) or "first_conv" not in cfg:
        raise LatencyError("a lookup table needs an OFA-format net.config (first_conv, blocks, ...)")
    first = cfg["first_conv"]
    stride = _int(first.get("stride", 1), "first_conv.stride")
    f = (resolution - 1) // stride + 1
    keys = [f"Conv-input:{_shape(resolution, resolution, 3)}-output:"
            f"{_shape(f, f, _int(first.get('out_channels'), 'first_conv.out_channels'))}"]
    for i, block in enumerate(cfg["blocks"]):
        conv = (block or {}).get("mobile_inverted_conv", (block or {}).get("conv"))
        kind = None if conv is None else conv.get("name")
        if kind in (None, "ZeroLayer"):
            continue
        if kind not in MBCONV_TYPES:
            raise LatencyError(f"net.config: blocks.{i} is a {kind!r}; lookup tables cover MBConv blocks only")
        where = f"blocks.{i}"
        s = _int(conv.get("stride", 1), f"{where}.stride")
        out = (f - 1) // s + 1
        shortcut = block.get("shortcut")
        idskip = int(isinstance(shortcut, dict) and shortcut.get("name") == "IdentityLayer")
        c_in = _int(conv.get("in_channels"), f"{where}.in_channels")
        c_out = _int(conv.get("out_channels"), f"{where}.out_channels")
        k = _int(conv.get("kernel_size"), f"{where}.kernel_size")
        if style == "ofa":
            try:
                mid = mbconv_mid_channels(conv, where)
            except CodesignError as e:  # keep the latency error type
                raise LatencyError(str(e)) from None
            expand = str(mid)
            tail = f"-se:{int(bool(conv.get('use_se')))}-hs:{int(conv.get('act_func') == 'h_swish')}"
        else:
            expand, tail = _ratio(conv.get("expand_ratio", 1)), ""
        keys.append(f"expanded_conv-input:{_shape(f, f, c_in)}-output:{_shape(out, out, c_out)}"
                    f"-expand:{expand}-kernel:{k}-stride:{s}-idskip:{idskip}{tail}")
        f = out
    final, mix, cls = cfg.get("final_expand_layer"), cfg.get("feature_mix_layer"), cfg.get("classifier") or {}
    n_cls = _int(cls.get("out_features"), "classifier.out_features")
    n_feat = _int(cls.get("in_features"), "classifier.in_features")
    if final is not None:  # MobileNetV3: expand, pool, mix on the 1x1 map, classifier
        c_i = _int(final.get("in_channels"), "final_expand_layer.in_channels")
        c_o = _int(final.get("out_channels"), "final_expand_layer.out_channels")
        keys.append(f"Conv_1-input:{_shape(f, f, c_i)}-output:{_shape(f, f, c_o)}")
        keys.append(f"AvgPool2D-input:{_shape(f, f, c_o)}-output:{_shape(1, 1, c_o)}")
        if mix is not None:
            keys.append(f"Conv_2-input:{_shape(1, 1, _int(mix.get('in_channels'), 'feature_mix_layer.in_channels'))}"
                        f"-output:{_shape(1, 1, _int(mix.get('out_channels'), 'feature_mix_layer.out_channels'))}")
        keys.append(f"Logits-input:{_shape(1, 1, n_feat)}-output:{n_cls}")
    else:  # ProxylessNAS / MobileNetV2: mix, then pool + classifier ("Logits" on the map)
        if mix is not None:
            keys.append(f"Conv_1-input:{_shape(f, f, _int(mix.get('in_channels'), 'feature_mix_layer.in_channels'))}"
                        f"-output:{_shape(f, f, _int(mix.get('out_channels'), 'feature_mix_layer.out_channels'))}")
        keys.append(f"Logits-input:{_shape(f, f, n_feat)}-output:{n_cls}")
    return keys


@register("lut")
class LutBackend(LatencyBackend):
    """Sum of per-operator latencies from a lookup table (see the module docstring)."""
    scheme = "lut"

    def __init__(self, spec: str, **options):
        super().__init__(spec)
        if options:
            raise LatencyError(f"{spec}: unknown option(s) {', '.join(sorted(options))} (a table takes none)")
        _, arg = split_spec(spec)
        if not arg:
            raise LatencyError(f"{spec!r}: name a table: lut:{' | lut:'.join(TABLES)} | lut:<table.yaml>")
        self.table_name = arg
        if arg.lower() in TABLES:
            self._pattern, self.resolutions, self._origin = TABLES[arg.lower()]
            self._asset = True
        else:
            if not arg.lower().endswith((".yaml", ".yml")):
                raise LatencyError(f"unknown latency table {arg!r}: use one of {', '.join(TABLES)} "
                                   f"or a path to a .yaml table")
            self._pattern, self.resolutions, self._origin, self._asset = arg, None, "", False

    def _table_path(self, resolution: int | None) -> str:
        per_res = "{r}" in self._pattern
        if per_res:
            if resolution is None:
                raise LatencyError(f"lut:{self.table_name} has one table per input resolution; "
                                   "the target has no resolution")
            if self.resolutions is not None and resolution not in self.resolutions:
                raise LatencyError(f"lut:{self.table_name} has tables for resolutions "
                                   f"{', '.join(map(str, self.resolutions))}; the target is at {resolution}")
        rel = self._pattern.replace("{r}", str(resolution)) if per_res else self._pattern
        if self._asset:
            from models.assets import asset_path
            return str(asset_path(rel, self._origin))
        if not os.path.isfile(rel):
            raise LatencyError(f"latency table not found: {rel}")
        return rel

    def table(self, resolution: int | None) -> dict[str, tuple[float, float]]:
        """``{key: (mean_ms, variance)}`` of the table used at ``resolution``."""
        path = self._table_path(resolution)
        return _load_table(path, os.path.getmtime(path))

    def _lookup(self, target: Target) -> list[tuple[str, float, float]]:
        if target.net_config is None:
            raise LatencyError(f"lut:{self.table_name} needs an OFA-format net.config (an arch of an OFA space, "
                               f"or a net.config file); {target.network.name} is a layer list only")
        r = target.network.resolution or 224
        table = self.table(r)
        keys = operator_keys(target.net_config, r, table_style(table))
        missing = [k for k in keys if k not in table]
        if missing:
            shown = "; ".join(missing[:SHOW_MISSING])
            more = f" (and {len(missing) - SHOW_MISSING} more)" if len(missing) > SHOW_MISSING else ""
            raise LatencyError(f"lut:{self.table_name}: {len(missing)} operator(s) of {target.network.name} "
                               f"at {r}px not in the table: {shown}{more}")
        return [(k, *table[k]) for k in keys]

    def layer_latencies(self, target, *, space: str | None = None) -> list[tuple[str, float]]:
        """``[(operator key, mean ms)]`` of ``target`` in network order."""
        from .base import as_target
        return [(k, m) for k, m, _ in self._lookup(as_target(target, space=space))]

    def _measure(self, target: Target) -> LatencyResult:
        ops = self._lookup(target)
        ms = sum(m for _, m, _ in ops)
        spread = math.sqrt(sum(v for _, _, v in ops))
        return LatencyResult(ms, spread, 1, self.spec,
                             {"table": self.table_name, "resolution": target.network.resolution or 224,
                              "operators": [[k, m] for k, m, _ in ops]})
