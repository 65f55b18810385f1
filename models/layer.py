"""The loop nest of one layer: eight dimensions ``G N K C P Q R S`` plus stride and dilation.

Convention (the one every package uses):

- ``G`` groups, ``N`` batch, ``K`` output channels per group, ``C`` input channels per group,
  ``P``/``Q`` output rows/cols, ``R``/``S`` filter rows/cols.
- Depthwise conv is ``G=channels, K=C=1``; a fully-connected layer or a matmul is
  ``P=Q=R=S=1`` (a matmul ``[M,Kd] x [Kd,Nd]`` maps to ``N=M, C=Kd, K=Nd``).
- Data spaces: weights ``W[G,K,C,R,S]``, inputs ``I[G,N,C,H,W]`` with
  ``H=(P-1)*stride+(R-1)*dilation+1`` (the halo included), outputs ``O[G,N,K,P,Q]``.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .errors import WorkloadError
from .schema import LAYER_DIMS, LAYER_OPS, MAX_DIM, check_layer, int_range_problem

DIMS: tuple[str, ...] = LAYER_DIMS
DIM_INDEX = {d: i for i, d in enumerate(DIMS)}
DATA_SPACES: tuple[str, ...] = ("W", "I", "O")

# Which loop dimensions index each data space (inputs also depend on P/Q/R/S via the window).
RELEVANT = {
    "W": frozenset("GKCRS"),
    "I": frozenset("GNCPQRS"),
    "O": frozenset("GNKPQ"),
}
REDUCTION_DIMS = frozenset("CRS")

OPS = LAYER_OPS


@dataclass(frozen=True)
class Layer:
    """One MAC loop nest. Sizes are per group; ``op`` is descriptive (cost is shape-driven)."""

    name: str = "layer"
    G: int = 1
    N: int = 1
    K: int = 1
    C: int = 1
    P: int = 1
    Q: int = 1
    R: int = 1
    S: int = 1
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    op: str = "conv"
    bias: bool = False

    def __post_init__(self):
        # the bounds of models.schema, checked here so that every loader and builder obeys them
        check_layer(self.name, {d: getattr(self, d) for d in DIMS}, self.stride, self.dilation,
                    self.padding, self.op)

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def conv(cls, name, in_ch, out_ch, out_hw, kernel, stride=1, groups=1, batch=1,
             dilation=1, padding=None, bias=False):
        """A 2-D convolution with square output ``out_hw`` (int or (rows, cols)) and kernel."""
        for what, v in (("groups", groups), ("in_ch", in_ch), ("out_ch", out_ch)):
            problem = int_range_problem(v, 1, MAX_DIM, python_int=True)
            if problem:
                raise WorkloadError(f"layer '{name}': {what}={v!r} {problem}")
        if in_ch % groups or out_ch % groups:
            raise WorkloadError(f"layer '{name}': channels {in_ch}->{out_ch} not divisible by groups={groups}")
        p, q = (out_hw, out_hw) if isinstance(out_hw, int) else out_hw
        r, s = (kernel, kernel) if isinstance(kernel, int) else kernel
        if padding is None:
            padding = dilation * (r - 1) // 2
        cpg, kpg = in_ch // groups, out_ch // groups
        op = "dwconv" if groups > 1 and cpg == 1 and kpg == 1 else "conv"
        return cls(name=name, G=groups, N=batch, K=kpg, C=cpg, P=p, Q=q, R=r, S=s,
                   stride=stride, dilation=dilation, padding=padding, op=op, bias=bias)

    @classmethod
    def fc(cls, name, in_features, out_features, batch=1, bias=True):
        return cls(name=name, N=batch, K=out_features, C=in_features, op="fc", bias=bias)

    @classmethod
    def matmul(cls, name, m, k, n, batch=1):
        """``[batch][m,k] x [batch][k,n]`` with both operands activations (no parameters)."""
        return cls(name=name, G=batch, N=m, C=k, K=n, op="matmul")

    # ---- sizes --------------------------------------------------------------------------
    @property
    def dims(self) -> dict[str, int]:
        return {d: getattr(self, d) for d in DIMS}

    @property
    def bounds(self) -> tuple[int, ...]:
        return tuple(getattr(self, d) for d in DIMS)

    @property
    def H(self) -> int:
        return (self.P - 1) * self.stride + (self.R - 1) * self.dilation + 1

    @property
    def W_in(self) -> int:
        return (self.Q - 1) * self.stride + (self.S - 1) * self.dilation + 1

    @property
    def macs(self) -> int:
        out = 1
        for d in DIMS:
            out *= getattr(self, d)
        return out

    @property
    def weight_elems(self) -> int:
        return self.G * self.K * self.C * self.R * self.S

    @property
    def input_elems(self) -> int:
        return self.G * self.N * self.C * self.H * self.W_in

    @property
    def output_elems(self) -> int:
        return self.G * self.N * self.K * self.P * self.Q

    @property
    def params(self) -> int:
        """Trainable parameters (zero for an activation x activation matmul)."""
        if self.op == "matmul":
            return 0
        return self.weight_elems + (self.G * self.K if self.bias else 0)

    def elems(self, space: str) -> int:
        return {"W": self.weight_elems, "I": self.input_elems, "O": self.output_elems}[space]

    def bytes(self, space: str, word_bits: int = 8) -> int:
        """Size of a data space in bytes for a word width in bits."""
        return -(-self.elems(space) * word_bits // 8)

    @property
    def shape_key(self) -> tuple:
        """Hashable key: layers with equal keys have identical costs on any accelerator."""
        return self.bounds + (self.stride, self.dilation, self.padding)

    def renamed(self, name: str) -> "Layer":
        return Layer(**{**asdict(self), "name": name})

    # ---- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "layer") -> "Layer":
        """A layer from ``to_dict()`` output (dimensions flat or under ``dims``), schema-checked."""
        from .inputs import validate
        from .schema import LayerSpec
        if isinstance(d, dict) and "name" not in d:
            d = {"name": "layer", **d}
        return cls.from_spec(validate(LayerSpec, d, source, error=WorkloadError))

    @classmethod
    def from_spec(cls, spec) -> "Layer":
        """A layer from a validated ``models.schema.LayerSpec``."""
        d = spec.dims
        return cls(spec.name, d.G, d.N, d.K, d.C, d.P, d.Q, d.R, d.S, spec.stride, spec.dilation, spec.padding,
                   spec.op, spec.bias)

    @classmethod
    def parse(cls, text: str, name: str = "layer") -> "Layer":
        """Parse ``"K=64,C=64,P=56,Q=56,R=3,S=3[,stride=1,...]"`` (missing dims default to 1).

        Unknown or repeated keys, non-integers and values out of ``models.schema`` bounds are
        one ``WorkloadError`` naming the key, the value and the accepted range.
        """
        from .inputs import validate
        from .schema import LayerArgs
        known = tuple(LayerArgs.model_fields)
        if not isinstance(text, str) or len(text) > 4096:
            raise WorkloadError("layer spec: expected a short text such as 'K=64,C=64,P=56,Q=56,R=3,S=3'")
        kw: dict = {}
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            if "=" not in part:
                raise WorkloadError(f"layer spec: expected KEY=VALUE, got {part!r}")
            k, v = part.split("=", 1)
            if k not in known:
                raise WorkloadError(f"layer spec: unknown key {k!r} (known: {' '.join(known)})")
            if k in kw:
                raise WorkloadError(f"layer spec: {k} is given twice ({k}={kw[k]} and {k}={v})")
            kw[k] = int(v) if re.fullmatch(r"[+-]?[0-9]{1,40}", v) else v
        args = validate(LayerArgs, kw, "layer spec", error=WorkloadError)
        return cls(name=name, **args.model_dump())
