"""Schemas of the workload formats and the bounds every layer obeys.

One place for the rules of each format a user hands in:

- the bounds of one ``Layer`` (checked by its constructor, so every loader obeys them);
- ``NetworkSpec``: a workload JSON (``Network.to_dict()`` output, or a hand-written one);
- ``LayerArgs``: the ``--layer "K=64,C=3,..."`` string;
- ``NetConfigSpec`` / ``RunConfigSpec``: an OFA / ProxylessNAS ``net.config`` and ``run.config``.

Schema errors become one line ``SOURCE: field.path: message (got VALUE)`` through
``models.inputs.validate``; every message states the accepted range.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from .errors import WorkloadError

# ---- bounds of one layer (far above any real network; they keep sizes inside int64 arithmetic) ----
MAX_DIM = 2 ** 20               # any loop bound G N K C P Q R S
MAX_STRIDE = 2 ** 12            # stride (audio front ends use a few hundred)
MAX_DILATION = 2 ** 12          # dilation (WaveNet-style stacks reach 512)
MAX_PADDING = 2 ** 20           # padding per side
MAX_LAYER_MACS = 2 ** 50        # ~1.1e15 MACs: ~1000x the largest LLM matmul at batch 1
MAX_TENSOR_ELEMS = 2 ** 50      # weights, inputs (halo included) or outputs of one layer
MAX_NAME_CHARS = 1024           # a layer, operator or network name
MAX_AUX_ELEMS = 2 ** 53         # elements read or written by one non-MAC operator (exact as a float)

# ---- a network ----
MAX_LAYERS = 100_000            # MAC layers of one network
MAX_AUX_OPS = 100_000           # non-MAC operators of one network
MAX_NODE_INPUTS = 1024          # nodes one layer or operator reads (graph edges)
NETWORK_INPUT = "input"         # the graph's name for the network's input
MAX_RESOLUTION = 4096            # input image side in pixels (ImageNet models run at 128-600)
MAX_SEED = 2 ** 32 - 1           # any seed (numpy's RandomState range); here as the lowest shared place

# ---- OFA / ProxylessNAS net.config ----
NC_MAX_CHANNELS = 2 ** 16       # in / out / mid channels and groups of a net.config layer
NC_MAX_KERNEL = 64              # kernel_size (large-kernel ConvNets use up to 51)
NC_MAX_STRIDE = 32
NC_MAX_DILATION = 64            # atrous rates in segmentation nets reach 24
NC_MAX_EXPAND = 64.0            # expand_ratio in (0, 64]
NC_MAX_FEATURES = MAX_DIM       # in / out features of the classifier
NC_MAX_BLOCKS = 4096
RC_MAX_IMAGE_SIZES = 64         # entries of a run.config ``image_size`` list

LAYER_DIMS = ("G", "N", "K", "C", "P", "Q", "R", "S")
LAYER_OPS = ("conv", "dwconv", "fc", "matmul")


def _range_text(lo: int, hi: int) -> str:
    return f"a positive integer up to {hi:,}" if lo == 1 else f"an integer from {lo:,} to {hi:,}"


def int_range_problem(v, lo: int, hi: int, *, python_int: bool = False) -> str | None:
    """Why ``v`` is not an integer in ``[lo, hi]`` (``None`` if it is); booleans are not integers.

    ``python_int``: numpy integers are refused too (their products wrap around silently)."""
    if isinstance(v, bool) or not isinstance(v, int if python_int else Integral):
        return f"not an integer (accepted: {_range_text(lo, hi)})"
    if not lo <= v <= hi:
        return f"must be {_range_text(lo, hi)}"
    return None


def IntIn(lo: int, hi: int):
    """An ``int`` field in ``[lo, hi]`` (strict: no bool, float or string)."""
    def check(v):
        if type(v) is int and lo <= v <= hi:  # the common case, cheaply
            return v
        problem = int_range_problem(v, lo, hi)
        if problem:
            raise ValueError(problem)
        return int(v)
    return Annotated[int, BeforeValidator(check)]


def FloatIn(lo: float, hi: float, *, lo_open: bool = False):
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); no bool or string."""
    text = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"

    def check(v):
        if isinstance(v, bool) or not isinstance(v, Real):
            raise ValueError(f"not a number (accepted: {text})")
        v = float(v)
        if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
            raise ValueError(f"must be a finite number in {text}")
        return v
    return Annotated[float, BeforeValidator(check)]


def TextIn(max_chars: int = MAX_NAME_CHARS, *, empty: bool = False):
    """A string of 1 (0 with ``empty``) to ``max_chars`` characters; no other type."""
    def check(v):
        if not isinstance(v, str):
            raise ValueError("must be a string")
        if len(v) > max_chars or (not empty and not v):
            raise ValueError(f"must be a string of {0 if empty else 1} to {max_chars:,} characters")
        return v
    return Annotated[str, BeforeValidator(check)]


def _strict_bool(v):
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


Dim = IntIn(1, MAX_DIM)
Name = TextIn()
StrictBool = Annotated[bool, BeforeValidator(_strict_bool)]


class SchemaModel(BaseModel):
    """Unknown keys are refused with the list of known ones (``extra = forbid`` says less)."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data):
        if not isinstance(data, dict):
            raise ValueError(f"must be an object, got {type(data).__name__}")
        if cls.model_config.get("extra") != "ignore":
            known = set(cls.model_fields)
            unknown = [k for k in data if k not in known]
            if unknown:
                raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(cls.model_fields)})")
        return data


class _OpenModel(SchemaModel):
    """Unknown keys are ignored (formats with free-form extras such as ``act_func``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# ---- one layer ------------------------------------------------------------------------------
def layer_problem(name, dims: dict, stride, dilation, padding, op) -> str | None:
    """Why these layer fields are out of bounds (``None`` if they are fine); the one rule set."""
    vals = tuple(map(dims.__getitem__, LAYER_DIMS))
    fast = (set(map(type, vals)) == {int} and min(vals) > 0 and max(vals) <= MAX_DIM  # cheap test first
            and type(stride) is int and 0 < stride <= MAX_STRIDE and type(dilation) is int
            and 0 < dilation <= MAX_DILATION and type(padding) is int and 0 <= padding <= MAX_PADDING)
    if not fast:
        for d, v in zip(LAYER_DIMS, vals):
            if int_range_problem(v, 1, MAX_DIM, python_int=True):
                return f"{d}={v!r} must be {_range_text(1, MAX_DIM)}"
        for attr, v, hi in (("stride", stride, MAX_STRIDE), ("dilation", dilation, MAX_DILATION)):
            if int_range_problem(v, 1, hi, python_int=True):
                return f"{attr}={v!r} must be {_range_text(1, hi)}"
        if int_range_problem(padding, 0, MAX_PADDING, python_int=True):
            return f"padding={padding!r} must be {_range_text(0, MAX_PADDING)} (>= 0)"
    if op not in LAYER_OPS:
        return f"unknown op {op!r} (known: {', '.join(LAYER_OPS)})"
    g, n, k, c, p, q, r, s = vals if fast else map(int, vals)
    macs = g * n * k * c * p * q * r * s
    if macs > MAX_LAYER_MACS:
        return f"{macs:.3g} MACs, more than the {MAX_LAYER_MACS:.3g} accepted for one layer"
    h = (p - 1) * stride + (r - 1) * dilation + 1
    w = (q - 1) * stride + (s - 1) * dilation + 1
    for space, elems in (("weights", g * k * c * r * s), ("inputs", g * n * c * h * w), ("outputs", g * n * k * p * q)):
        if elems > MAX_TENSOR_ELEMS:
            return f"{space} of {elems:.3g} elements, more than the {MAX_TENSOR_ELEMS:.3g} accepted for one layer"
    return None


def check_layer(name, dims: dict, stride, dilation, padding, op) -> None:
    """``WorkloadError`` naming the layer if its fields are out of bounds."""
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise WorkloadError(f"layer name must be a string of at most {MAX_NAME_CHARS:,} characters, "
                            f"got {str(name)[:40]!r}...")
    problem = layer_problem(name, dims, stride, dilation, padding, op)
    if problem:
        raise WorkloadError(f"layer '{name}': {problem}")


class DimsSpec(SchemaModel):
    G: Dim = 1
    N: Dim = 1
    K: Dim = 1
    C: Dim = 1
    P: Dim = 1
    Q: Dim = 1
    R: Dim = 1
    S: Dim = 1


class LayerArgs(DimsSpec):
    """The fields of ``--layer "K=64,C=3,...,stride=2"`` (dimensions default to 1)."""

    stride: IntIn(1, MAX_STRIDE) = 1
    dilation: IntIn(1, MAX_DILATION) = 1
    padding: IntIn(0, MAX_PADDING) = 0

    @model_validator(mode="after")
    def _sizes(self):
        problem = layer_problem("layer", self.__dict__, self.stride,
                                self.dilation, self.padding, "conv")
        if problem:
            raise ValueError(problem)
        return self


def _bounded_list(max_len: int, what: str):
    def check(v):
        if not isinstance(v, list):
            raise ValueError(f"must be a list of {what}")
        if len(v) > max_len:
            raise ValueError(f"has {len(v):,} {what}, more than the {max_len:,} accepted")
        return v
    return BeforeValidator(check)


Inputs = Optional[Annotated[list[Name], _bounded_list(MAX_NODE_INPUTS, "inputs")]]


class LayerSpec(SchemaModel):
    """One layer of a workload JSON: ``dims`` nested (as written by ``to_dict``) or flat."""

    name: Name
    op: Literal[LAYER_OPS] = "conv"
    dims: DimsSpec = DimsSpec()
    stride: IntIn(1, MAX_STRIDE) = 1
    dilation: IntIn(1, MAX_DILATION) = 1
    padding: IntIn(0, MAX_PADDING) = 0
    bias: StrictBool = False
    macs: Optional[IntIn(1, MAX_LAYER_MACS)] = None      # derived; checked against the dims if given
    params: Optional[IntIn(0, 2 * MAX_TENSOR_ELEMS)] = None
    inputs: Inputs = None  # graph edges: the nodes this layer reads

    @model_validator(mode="before")
    @classmethod
    def _flat_dims(cls, data):
        if not isinstance(data, dict):
            return data
        flat = [d for d in LAYER_DIMS if d in data]
        if not flat:
            return data
        dims = data.get("dims", {})
        if not isinstance(dims, dict):
            return data
        both = [d for d in flat if d in dims]
        if both:
            raise ValueError(f"dimension {both[0]} is given both in 'dims' and beside it")
        out = {k: v for k, v in data.items() if k not in flat}
        out["dims"] = {**dims, **{d: data[d] for d in flat}}
        return out

    @model_validator(mode="after")
    def _sizes(self):
        dims = self.dims.__dict__
        problem = layer_problem(self.name, dims, self.stride, self.dilation, self.padding, self.op)
        if problem:
            raise ValueError(problem)
        if self.macs is not None and self.macs != math.prod(dims[d] for d in LAYER_DIMS):
            raise ValueError(f"macs {self.macs:,} contradicts the dims (their product is "
                             f"{math.prod(dims[d] for d in LAYER_DIMS):,}); correct or drop it")
        return self


class AuxSpec(SchemaModel):
    name: Name
    kind: TextIn(64)
    in_elems: IntIn(0, MAX_AUX_ELEMS)
    out_elems: IntIn(0, MAX_AUX_ELEMS)
    inputs: Inputs = None


class _Totals(SchemaModel):
    macs: Optional[IntIn(0, MAX_LAYERS * MAX_LAYER_MACS)] = None
    params: Optional[IntIn(0, MAX_LAYERS * 2 * MAX_TENSOR_ELEMS)] = None
    layers: Optional[IntIn(0, MAX_LAYERS)] = None


class NetworkSpec(SchemaModel):
    """A workload JSON: ``Network.to_dict()`` output (derived ``total`` / ``unique_shapes``
    are checked against the layers when present)."""

    name: Name
    resolution: Optional[IntIn(1, MAX_RESOLUTION)] = None
    layers: Annotated[list[LayerSpec], _bounded_list(MAX_LAYERS, "layers")]
    aux: Annotated[list[AuxSpec], _bounded_list(MAX_AUX_OPS, "operators")] = []
    total: Optional[_Totals] = None
    unique_shapes: Optional[IntIn(0, MAX_LAYERS)] = None

    @model_validator(mode="after")
    def _not_empty(self):
        if not self.layers:
            raise ValueError("a network needs at least one MAC layer in 'layers'")
        return self


# ---- OFA / ProxylessNAS net.config ----------------------------------------------------------
def _one_elem(v):
    """OFA writes some channel counts as one-element lists."""
    return v[0] if isinstance(v, list) and len(v) == 1 else v


Channels = Annotated[IntIn(1, NC_MAX_CHANNELS), BeforeValidator(_one_elem)]
Kernel = IntIn(1, NC_MAX_KERNEL)
NcStride = IntIn(1, NC_MAX_STRIDE)
NcDilation = IntIn(1, NC_MAX_DILATION)


class NcLayer(_OpenModel):
    """A layer entry of a net.config (extra keys such as ``act_func`` or ``use_bn`` are ignored)."""

    name: Name
    in_channels: Optional[Channels] = None
    out_channels: Optional[Channels] = None
    kernel_size: Optional[Kernel] = None
    stride: NcStride = 1
    dilation: NcDilation = 1
    groups: Optional[Channels] = None
    bias: Optional[StrictBool] = None
    expand_ratio: Optional[FloatIn(0, NC_MAX_EXPAND, lo_open=True)] = None
    mid_channels: Optional[Channels] = None
    use_se: Optional[StrictBool] = None
    in_features: Optional[IntIn(1, NC_MAX_FEATURES)] = None
    out_features: Optional[IntIn(1, NC_MAX_FEATURES)] = None

    def need(self, *keys: str) -> None:
        missing = [k for k in keys if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a {self.name} needs {missing[0]!r}")


NC_CONV_TYPES = ("ConvLayer",)
NC_MBCONV_TYPES = ("MBInvertedConvLayer", "MBConvLayer")
NC_BLOCK_TYPES = ("MobileInvertedResidualBlock", "ResidualBlock")
NC_SHORTCUT_TYPES = ("IdentityLayer", "ZeroLayer")


def _layer_of(kinds: tuple[str, ...], required: tuple[str, ...]):
    def check(layer: NcLayer):
        if layer.name not in kinds:
            raise ValueError(f"unsupported layer type {layer.name!r} (supported: {', '.join(kinds)})")
        layer.need(*required)
        return layer
    return AfterValidator(check)


ConvCfg = Annotated[NcLayer, _layer_of(NC_CONV_TYPES, ("kernel_size", "out_channels"))]
LinearCfg = Annotated[NcLayer, _layer_of(("LinearLayer",), ("in_features", "out_features"))]


def _block_conv(layer: Optional[NcLayer]):
    if layer is None or layer.name == "ZeroLayer":
        return layer
    if layer.name in NC_MBCONV_TYPES:
        layer.need("kernel_size", "out_channels")
        if layer.mid_channels is None:
            layer.need("expand_ratio", "in_channels")
        return layer
    if layer.name in NC_CONV_TYPES:
        layer.need("kernel_size", "out_channels")
        return layer
    raise ValueError(f"unsupported layer type {layer.name!r} "
                     f"(supported: {', '.join(NC_MBCONV_TYPES + NC_CONV_TYPES + ('ZeroLayer',))})")


def _shortcut(layer: Optional[NcLayer]):
    if layer is not None and layer.name not in NC_SHORTCUT_TYPES:
        raise ValueError(f"unsupported shortcut type {layer.name!r} (supported: {', '.join(NC_SHORTCUT_TYPES)})")
    return layer


def _one_of(kinds: tuple[str, ...], what: str):
    def check(v):
        if v not in kinds:
            raise ValueError(f"unsupported {what} type {v!r} (supported: {', '.join(kinds)})")
        return v
    return AfterValidator(check)


class NcBlock(_OpenModel):
    name: Annotated[Name, _one_of(NC_BLOCK_TYPES, "block")]
    mobile_inverted_conv: Annotated[Optional[NcLayer], AfterValidator(_block_conv)] = None
    conv: Annotated[Optional[NcLayer], AfterValidator(_block_conv)] = None
    shortcut: Annotated[Optional[NcLayer], AfterValidator(_shortcut)] = None

    @model_validator(mode="after")
    def _kind(self):
        if self.mobile_inverted_conv is not None and self.conv is not None:
            raise ValueError("a block has either 'mobile_inverted_conv' or 'conv', not both")
        if not {"mobile_inverted_conv", "conv"} & self.model_fields_set:
            raise ValueError("a block needs 'mobile_inverted_conv' (or 'conv'); a block that passes its "
                             "input through says so with null or a ZeroLayer")
        return self

    @property
    def body(self) -> Optional[NcLayer]:
        return self.mobile_inverted_conv if self.mobile_inverted_conv is not None else self.conv


class NetConfigSpec(_OpenModel):
    """An OFA MobileNetV3 / ProxylessNAS ``net.config`` (only what shapes the layers is checked)."""

    name: Optional[TextIn()] = None
    first_conv: ConvCfg
    blocks: Annotated[list[NcBlock], _bounded_list(NC_MAX_BLOCKS, "blocks")]
    final_expand_layer: Optional[ConvCfg] = None
    feature_mix_layer: Optional[ConvCfg] = None
    classifier: LinearCfg


def _image_size(v):
    if isinstance(v, list):
        if not 1 <= len(v) <= RC_MAX_IMAGE_SIZES:
            raise ValueError(f"must be an integer or a list of 1 to {RC_MAX_IMAGE_SIZES} integers")
        for x in v:
            if int_range_problem(x, 1, MAX_RESOLUTION):
                raise ValueError(f"entries must be {_range_text(1, MAX_RESOLUTION)}")
        return max(v)
    return v


class RunConfigSpec(_OpenModel):
    """An OFA ``run.config``: only ``image_size`` (an int, or a list whose largest entry is used)."""

    image_size: Annotated[Optional[IntIn(1, MAX_RESOLUTION)], BeforeValidator(_image_size)] = None


def check_resolution(r: Any, what: str = "resolution") -> int:
    """``r`` if it is an integer in ``[1, MAX_RESOLUTION]``, else one ``WorkloadError``."""
    problem = int_range_problem(r, 1, MAX_RESOLUTION)
    if problem:
        raise WorkloadError(f"{what}: {problem} (got {r!r})")
    return int(r)


# ---- a schedule (fused stacks) ----------------------------------------------------------------
MAX_TILE = MAX_DIM  # rows or columns of a stack's output tile


class StackSpec(SchemaModel):
    """One fused stack: its first and last layer names, the tile (rows, cols) of its last layer's
    output (``null``: the whole map) and how overlapping tiles are handled."""

    layers: Annotated[list[Name], _bounded_list(2, "layer names (first and last)")]
    tile: Optional[Annotated[list[IntIn(1, MAX_TILE)], _bounded_list(2, "numbers (rows, cols)")]] = None
    overlap: Literal["recompute", "cache"] = "recompute"

    @model_validator(mode="after")
    def _shape(self):
        if not self.layers:
            raise ValueError("give the stack's first and last layer names (one name for a stack of one)")
        if self.tile is not None and len(self.tile) != 2:
            raise ValueError("a tile is two numbers: rows and cols")
        return self


class ScheduleSpec(SchemaModel):
    """A schedule file (``Schedule.to_dict`` output): stacks in layer order."""

    schedule: Optional[Name] = None
    network: Optional[Name] = None
    stacks: Annotated[list[StackSpec], _bounded_list(MAX_LAYERS, "stacks")]
