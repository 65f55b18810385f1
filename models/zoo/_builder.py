"""A shape-tracking builder with which the zoo functions append layers in forward order."""
from __future__ import annotations

from ..errors import WorkloadError
from ..layer import Layer
from ..network import NETWORK_INPUT, AuxOp, Network


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution along one axis (floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out(size: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
    """Output length of a pooling window along one axis, PyTorch semantics (incl. ceil_mode)."""
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or the left padding
    return out


class NetBuilder:
    """Appends layers while tracking the activation ``(channels, rows, cols)`` and the node
    that produced it (``src``; ``"input"`` at first), so that every layer and operator records
    the nodes it reads (the network's graph edges)."""

    def __init__(self, name: str, channels: int, hw: int | tuple[int, int], batch: int = 1):
        self.name = name
        self.batch = batch
        self.c = channels
        self.h, self.w = (hw, hw) if isinstance(hw, int) else hw
        self.src = NETWORK_INPUT
        self.layers: list[Layer] = []
        self.aux: list[AuxOp] = []
        self.inputs: dict[str, tuple[str, ...]] = {}

    # ---- state ----------------------------------------------------------------------------
    @property
    def elems(self) -> int:
        return self.batch * self.c * self.h * self.w

    def state(self) -> tuple[int, int, int, str]:
        """``(channels, rows, cols, producer)`` of the current activation."""
        return self.c, self.h, self.w, self.src

    def restore(self, state: tuple[int, int, int, str]) -> "NetBuilder":
        self.c, self.h, self.w, self.src = state
        return self

    def _reads(self, name: str, inputs: tuple[str, ...] | None = None) -> None:
        """Record that node ``name`` reads ``inputs`` (the current activation by default) and
        produces the new current activation."""
        self.inputs[name] = tuple(inputs) if inputs is not None else (self.src,)
        self.src = name

    def _check(self, name: str, h: int, w: int) -> None:
        if h <= 0 or w <= 0:
            raise WorkloadError(f"{self.name}: the input is too small; layer '{name}' would have an empty output")

    # ---- MAC layers -----------------------------------------------------------------------
    def conv(self, name: str, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
             padding: int | None = None, dilation: int = 1, bias: bool = False) -> "NetBuilder":
        if padding is None:
            padding = dilation * (kernel - 1) // 2
        p = conv_out(self.h, kernel, stride, padding, dilation)
        q = conv_out(self.w, kernel, stride, padding, dilation)
        self._check(name, p, q)
        self.layers.append(Layer.conv(name, self.c, out_ch, (p, q), kernel, stride=stride, groups=groups,
                                      batch=self.batch, dilation=dilation, padding=padding, bias=bias))
        self._reads(name)
        self.c, self.h, self.w = out_ch, p, q
        return self

    def dwconv(self, name: str, kernel: int, stride: int = 1, dilation: int = 1, bias: bool = False) -> "NetBuilder":
        return self.conv(name, self.c, kernel, stride=stride, groups=self.c, dilation=dilation, bias=bias)

    def fc(self, name: str, out_features: int, bias: bool = True) -> "NetBuilder":
        """A fully-connected layer on the flattened current activation."""
        self.layers.append(Layer.fc(name, self.c * self.h * self.w, out_features, batch=self.batch, bias=bias))
        self._reads(name)
        self.c, self.h, self.w = out_features, 1, 1
        return self

    def layer(self, layer: Layer, inputs: tuple[str, ...] | None = None) -> "NetBuilder":
        """Append a layer built by hand (matmuls, sequence layers) reading ``inputs`` (default: the
        current activation); the tracked shape is unchanged."""
        self.layers.append(layer)
        self._reads(layer.name, inputs)
        return self

    # ---- non-MAC operators ----------------------------------------------------------------
    def op(self, name: str, kind: str, in_elems: int, out_elems: int,
           inputs: tuple[str, ...] | None = None) -> "NetBuilder":
        """A non-MAC operator reading ``inputs`` (default: the current activation)."""
        self.aux.append(AuxOp(name, kind, in_elems, out_elems))
        self._reads(name, inputs)
        return self

    def pool(self, name: str, kernel: int, stride: int | None = None, padding: int = 0,
             ceil_mode: bool = False) -> "NetBuilder":
        stride = kernel if stride is None else stride
        before = self.elems
        h, w = pool_out(self.h, kernel, stride, padding, ceil_mode), pool_out(self.w, kernel, stride, padding, ceil_mode)
        self._check(name, h, w)
        self.h, self.w = h, w
        return self.op(name, "pool", before, self.elems)

    def adaptive_pool(self, name: str, out_hw: int = 1) -> "NetBuilder":
        before = self.elems
        self.h = self.w = out_hw
        return self.op(name, "pool", before, self.elems)

    def add(self, name: str, skip: tuple) -> "NetBuilder":
        """Element-wise sum of the current activation and the one of ``skip`` (a ``state()``
        of the same shape): a residual connection."""
        return self.op(name, "add", 2 * self.elems, self.elems, inputs=(self.src, skip[3]))

    def se(self, prefix: str, squeeze_ch: int) -> "NetBuilder":
        """Squeeze-and-excitation: global pool, FC down, FC up, channel-wise scale."""
        state, full = self.state(), self.elems
        self.adaptive_pool(f"{prefix}.avgpool", 1)
        self.fc(f"{prefix}.fc1", squeeze_ch)
        self.fc(f"{prefix}.fc2", state[0])
        gate = self.src
        self.restore(state)
        return self.op(f"{prefix}.scale", "mul", full + self.batch * self.c, full, inputs=(self.src, gate))

    # ---- result ---------------------------------------------------------------------------
    def build(self, resolution: int | None, **meta) -> Network:
        meta.setdefault("batch", self.batch)
        return Network(self.name, tuple(self.layers), tuple(self.aux), resolution=resolution, meta=meta,
                       inputs=dict(self.inputs))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10 %."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new
