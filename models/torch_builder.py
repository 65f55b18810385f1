"""``Network`` -> runnable ``torch.nn.Module`` with random weights, for measured-latency backends.

The module runs every MAC layer of the network exactly once with its exact shape
(``Conv2d`` with the layer's groups, stride, dilation and padding; ``Linear``; batched
``torch.matmul``). A ``Network`` records layers, not the wiring between them, so each layer
takes the most recent earlier tensor that fits its input (the previous layer's output in a
chain); where none fits, a cheap adapter derives one: max-pool or crop a larger map, global
average pool to a vector, or reshape / slice / tile an earlier tensor. Every tensor comes from
the single graph input, so an ONNX export cannot constant-fold any layer away, and every
layer output that nothing consumes is returned, so no layer is dead code.

Submodules are nested by the layer names (``layer1.0.conv1``), so tracing the module with
``models.importers.from_torch`` gives the same names back.
"""
from __future__ import annotations

import math
import re

from .errors import WorkloadError
from .layer import Layer
from .network import Network


# ---- planning (pure Python) ---------------------------------------------------------------------
def _axis(out: int, kernel: int, stride: int, dilation: int, padding: int) -> tuple[int, int, int]:
    """(padding, smallest input, largest input) that give ``out`` positions along one axis."""
    pad = min(padding, dilation * (kernel - 1))
    while True:
        lo = (out - 1) * stride + dilation * (kernel - 1) + 1 - 2 * pad
        hi = lo + stride - 1
        if hi >= 1 or pad == 0:
            return pad, max(lo, 1), hi
        pad -= 1


class _Spec:
    """The input a layer needs: an exact shape, or for conv a range of rows/cols."""

    def __init__(self, shape: tuple[int, ...], rows: tuple[int, int] | None = None,
                 cols: tuple[int, int] | None = None):
        self.shape, self.rows, self.cols = shape, rows, cols

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def fits(self, shape: tuple[int, ...]) -> bool:
        if self.rows is None:
            return shape == self.shape
        return (len(shape) == 4 and shape[:2] == self.shape[:2]
                and self.rows[0] <= shape[2] <= self.rows[1] and self.cols[0] <= shape[3] <= self.cols[1])


def _conv_geometry(layer: Layer) -> tuple[int, int, _Spec]:
    pad_h, lo_h, hi_h = _axis(layer.P, layer.R, layer.stride, layer.dilation, layer.padding)
    pad_w, lo_w, hi_w = _axis(layer.Q, layer.S, layer.stride, layer.dilation, layer.padding)
    spec = _Spec((layer.N, layer.G * layer.C, hi_h, hi_w), (lo_h, hi_h), (lo_w, hi_w))
    return pad_h, pad_w, spec


def _input_specs(layer: Layer) -> list[_Spec]:
    if layer.op == "matmul":
        return [_Spec((layer.G, layer.N, layer.C)), _Spec((layer.G, layer.C, layer.K))]
    if layer.op == "fc" and layer.G == 1 and layer.P == layer.Q == layer.R == layer.S == 1:
        return [_Spec((layer.N, layer.C))]
    return [_conv_geometry(layer)[2]]


def _output_shape(layer: Layer) -> tuple[int, ...]:
    if layer.op == "matmul":
        return (layer.G, layer.N, layer.K)
    if len(_input_specs(layer)[0].shape) == 2:
        return (layer.N, layer.K)
    return (layer.N, layer.G * layer.K, layer.P, layer.Q)


def _resolve(spec: _Spec, produced: list[tuple[int, ...]]) -> tuple[int, tuple, tuple[int, ...]]:
    """Pick a source tensor and an adapter for ``spec``: (source index, adapter, resulting shape)."""
    order = range(len(produced) - 1, -1, -1)
    for j in order:
        if spec.fits(produced[j]):
            return j, (), produced[j]
    if spec.rows is not None:  # a larger map with the right channels: pool or crop it
        for j in order:
            s = produced[j]
            if len(s) != 4 or s[:2] != spec.shape[:2] or s[2] < spec.rows[0] or s[3] < spec.cols[0]:
                continue
            for h in range(spec.rows[1], spec.rows[0] - 1, -1):
                f = s[2] // h
                if f > 1 and s[2] == f * h and s[3] % f == 0 and spec.cols[0] <= s[3] // f <= spec.cols[1]:
                    return j, ("pool", f), (s[0], s[1], h, s[3] // f)
            h, w = min(s[2], spec.rows[1]), min(s[3], spec.cols[1])
            return j, ("crop", h, w), (s[0], s[1], h, w)
    if len(spec.shape) == 2:  # a vector per sample from a feature map: global average pool
        for j in order:
            s = produced[j]
            if len(s) == 4 and s[:2] == spec.shape:
                return j, ("gap",), spec.shape
    for j in order:
        if math.prod(produced[j]) == spec.numel:
            return j, ("view", spec.shape), spec.shape
    for j in order:
        if math.prod(produced[j]) > spec.numel:
            return j, ("prefix", spec.numel, spec.shape), spec.shape
    j = max(range(len(produced)), key=lambda i: math.prod(produced[i]))
    reps = -(-spec.numel // math.prod(produced[j]))
    return j, ("tile", reps, spec.numel, spec.shape), spec.shape


def _first_input(spec: _Spec, resolution: int | None) -> tuple[int, ...]:
    if spec.rows is None:
        return spec.shape
    n, c, h, w = spec.shape
    if resolution is not None and spec.fits((n, c, resolution, resolution)):
        return (n, c, resolution, resolution)
    return (n, c, h, w)


def _plan(network: Network):
    """Steps ``(layer index, [(source, adapter), ...])``, the input shape and the output indices."""
    first = _input_specs(network.layers[0])[0]
    produced = [_first_input(first, network.resolution)]
    consumed: set[int] = set()
    steps = []
    for i, layer in enumerate(network.layers):
        srcs = []
        for spec in _input_specs(layer):
            j, adapter, _ = _resolve(spec, produced)
            consumed.add(j)
            srcs.append((j, adapter))
        steps.append((i, srcs))
        produced.append(_output_shape(layer))
    outputs = [j for j in range(1, len(produced)) if j not in consumed]
    return steps, produced[0], outputs


# ---- module ---------------------------------------------------------------------------------------
def _module_paths(names: list[str]) -> list[list[str]]:
    """Split names on '.' for nesting; fall back to flat unique names where nesting cannot work."""
    import torch.nn as nn
    reserved = set(dir(nn.Module()))
    split = [n.split(".") for n in names]
    leaves = {tuple(p) for p in split}
    prefixes = {tuple(p[:k]) for p in split for k in range(1, len(p))}
    ok = all(all(seg and seg not in reserved and not seg.startswith("_") for seg in p) for p in split)
    if ok and not (leaves & prefixes):
        return split
    return [[f"l{i}_" + re.sub(r"\W", "_", n)] for i, n in enumerate(names)]


def _adapt(t, adapter):
    import torch.nn.functional as F
    if not adapter:
        return t
    kind = adapter[0]
    if kind == "pool":
        return F.max_pool2d(t, adapter[1], adapter[1])
    if kind == "crop":
        return t[:, :, :adapter[1], :adapter[2]]
    if kind == "gap":
        return t.mean(dim=(2, 3))
    if kind == "view":
        return t.reshape(adapter[1])
    if kind == "prefix":
        return t.reshape(-1)[:adapter[1]].reshape(adapter[2])
    return t.reshape(-1).repeat(adapter[1])[:adapter[2]].reshape(adapter[3])  # tile


def _make_layer(layer: Layer):
    import torch
    import torch.nn as nn
    from torch.nn.utils import skip_init
    if layer.op == "matmul":
        return _classes()[0]()
    if len(_input_specs(layer)[0].shape) == 2:
        mod = skip_init(nn.Linear, layer.C, layer.K, bias=layer.bias)
    else:
        pad_h, pad_w, _ = _conv_geometry(layer)
        mod = skip_init(nn.Conv2d, layer.G * layer.C, layer.G * layer.K, (layer.R, layer.S), stride=layer.stride,
                        padding=(pad_h, pad_w), dilation=layer.dilation, groups=layer.G, bias=layer.bias)
    # Gaussian weights with variance 1/fan-in keep activations bounded through deep chains;
    # normal_ is several times faster than the default uniform init on large matrices.
    with torch.no_grad():
        mod.weight.normal_(0.0, 1.0 / math.sqrt(layer.C * layer.R * layer.S))
        if mod.bias is not None:
            mod.bias.normal_(0.0, 0.01)
    return mod


def _module_classes():
    import torch
    import torch.nn as nn

    class _MatMul(nn.Module):
        """``a @ b`` of two activations (a layer with no parameters)."""

        def forward(self, a, b):
            return torch.matmul(a, b)

    class _Built(nn.Module):
        """Runs a network's MAC layers in order; see ``build_module``."""

        def __init__(self, network: Network):
            super().__init__()
            self.network_name = network.name
            steps, self.input_shape, self.outputs = _plan(network)
            paths = _module_paths([l.name for l in network.layers])
            mods = []
            for layer, path in zip(network.layers, paths):
                parent = self
                for seg in path[:-1]:
                    if seg not in parent._modules:
                        parent.add_module(seg, nn.Module())
                    parent = parent._modules[seg]
                mod = _make_layer(layer)
                parent.add_module(path[-1], mod)
                mods.append(mod)
            self._steps = [(mods[i], srcs) for i, srcs in steps]

        def forward(self, x):
            values = [x]
            for mod, srcs in self._steps:
                args = [_adapt(values[j], adapter) for j, adapter in srcs]
                values.append(mod(*args))
            return tuple(values[j] for j in self.outputs)

    return _MatMul, _Built


def lazy_classes(module_name: str, names: tuple[str, ...], factory):
    """A module-level ``__getattr__`` that serves the torch module classes ``factory()`` returns
    (``{name: class}``, keys ``names``): made on first use, so that importing the module does not
    import torch, and registered under ``module_name`` so that built modules pickle."""
    made: dict = {}

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        if not made:
            for key, cls in factory().items():
                cls.__module__, cls.__qualname__ = module_name, key
                made[key] = cls
        return made[name]

    return __getattr__


_CLASSES = None


def _classes():
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _module_classes()
    return _CLASSES


def build_module(network: Network, seed: int = 0):
    """Return ``(module, example_inputs)``: an eval-mode module with random weights whose forward
    runs every MAC layer of ``network`` once, and a tuple with one random input tensor.

    The forward returns a tuple of the layer outputs nothing else consumes. The module exports
    with ``torch.onnx.export`` and runs under ONNX Runtime.
    """
    import torch
    if not isinstance(network, Network):
        raise WorkloadError(f"build_module needs a Network, got {type(network).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _classes()[1](network).eval()
        x = torch.randn(module.input_shape)
    return module, (x,)


def count_macs(module, example_inputs) -> int:
    """MACs executed by ``module(*example_inputs)``, counted by ``torch.utils.flop_counter``
    (FLOPs / 2): an independent check of the analytic ``Network.macs``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*example_inputs)
    return counter.get_total_flops() // 2
