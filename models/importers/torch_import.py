"""``torch.nn.Module`` -> ``Network`` by tracing with ``torch.fx`` and propagating shapes.

MAC layers: ``Conv1d``/``Conv2d`` (groups, stride, dilation, padding), ``Linear``, matmuls
(``torch.matmul``, ``bmm``, ``mm``, ``@``, ``addmm``, ``baddbmm``), their functional forms,
``scaled_dot_product_attention`` (two matmuls) and non-overlapping ``ConvTranspose2d``
(kernel == stride, recorded as the equivalent 1x1 convolution). Pooling, residual adds,
tensor x tensor products and concatenations become ``AuxOp``; activations and norms are
ignored. Any other operator that carries MACs raises ``WorkloadError`` naming it.
"""
from __future__ import annotations

import math
import operator
from collections import Counter

from ..errors import WorkloadError
from ..layer import Layer
from ..network import AuxOp, Network
from ..schema import MAX_DIM, int_range_problem
from . import EdgeRecorder, Unattributed


_INPLACE_DUNDERS = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__ipow__", "__iand__",
                    "__ior__", "__ixor__", "__ilshift__", "__irshift__", "__imatmul__"}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _shape(node) -> tuple[int, ...] | None:
    meta = getattr(node, "meta", {}).get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(int(s) for s in meta.shape)


def _numel(shape) -> int:
    return math.prod(shape) if shape is not None else 0


def _pair(v, what: str, name: str) -> int:
    """Collapse a (rows, cols) attribute to one int; the loop-nest model has one stride/dilation."""
    if isinstance(v, int):
        return v
    v = tuple(v)
    if len(set(v)) != 1:
        raise WorkloadError(f"{name}: {what} {v} differs between rows and columns; only square {what}s are supported")
    return int(v[0])


def _padding(v, kernel: tuple[int, ...], dilation: int) -> int:
    if isinstance(v, str):
        return 0 if v == "valid" else max(dilation * (k - 1) // 2 for k in kernel)
    if isinstance(v, int):
        return v
    return int(max(v))  # the model keeps one padding value; it does not enter the cost


class _Collector:
    """Walks a shape-propagated fx graph and collects layers and auxiliary operators."""

    def __init__(self, gm):
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        self.torch, self.nn, self.F = torch, nn, F
        self.gm = gm
        self.layers: list[Layer] = []
        self.aux: list[AuxOp] = []
        self.used: Counter = Counter()
        self.mac_paths: Counter = Counter()
        # graph edges: each fx node's value for ``EdgeRecorder`` (constants are None)
        self.edges = EdgeRecorder()
        self.value: dict = {}
        self.aux_inputs: list = []
        # they read only the shape of their argument
        self.factory_like = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like,
                             torch.rand_like, torch.randn_like, torch.randint_like}
        self.setitem = {operator.setitem}

        self.matmul_fns = {torch.matmul, operator.matmul, torch.bmm, torch.mm, torch.Tensor.matmul,
                           torch.Tensor.bmm, torch.Tensor.mm}
        self.matmul_methods = {"matmul", "bmm", "mm", "__matmul__"}
        self.addmm_fns = {torch.addmm, torch.baddbmm}
        self.conv_fns = {F.conv1d: 1, F.conv2d: 2, torch.conv1d: 1, torch.conv2d: 2}
        self.linear_fns = {F.linear}
        self.sdpa_fns = {F.scaled_dot_product_attention}
        self.unsupported_fns = {
            torch.einsum: "torch.einsum", F.conv3d: "conv3d", torch.conv3d: "conv3d",
            F.conv_transpose1d: "conv_transpose1d", F.conv_transpose2d: "conv_transpose2d",
            F.conv_transpose3d: "conv_transpose3d", F.bilinear: "bilinear", torch.tensordot: "torch.tensordot",
            torch.addbmm: "torch.addbmm", F.multi_head_attention_forward: "multi_head_attention_forward",
        }
        self.add_fns = {operator.add, operator.iadd, torch.add}
        self.mul_fns = {operator.mul, operator.imul, torch.mul}
        self.cat_fns = {torch.cat, torch.concat}
        self.pool_fns = {F.max_pool1d, F.max_pool2d, F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d,
                         F.adaptive_avg_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d}
        self.pool_modules = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
                             nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
        self.unsupported_modules = (nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose3d, nn.MultiheadAttention,
                                    nn.RNNBase, nn.RNNCellBase, nn.Bilinear, nn.Transformer,
                                    nn.TransformerEncoderLayer, nn.TransformerDecoderLayer,
                                    nn.TransformerEncoder, nn.TransformerDecoder)
        # Modules with matrix-shaped parameters that still do no multiply-accumulate.
        self.param_no_mac = (nn.Embedding, nn.EmbeddingBag, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.PReLU,
                             nn.modules.batchnorm._NormBase)

    # ---- naming ---------------------------------------------------------------------------
    @staticmethod
    def _scope(node) -> str:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            return ""
        last = list(stack.values())[-1]
        return last[0] if isinstance(last, tuple) else str(last)

    def _fn_name(self, node) -> str:
        """A function call is named by its module when it is that module's only MAC operation."""
        scope = self._scope(node)
        if scope and self.mac_paths[scope] == 1:
            return scope
        return f"{scope}.{node.name}" if scope else node.name

    def _unique(self, name: str) -> str:
        self.used[name] += 1
        return name if self.used[name] == 1 else f"{name}#{self.used[name]}"

    # ---- helpers --------------------------------------------------------------------------
    def _is_param(self, node) -> bool:
        """Does ``node`` come from a module parameter (possibly transposed or reshaped)?"""
        views = {"t", "transpose", "permute", "view", "reshape", "contiguous", "to", "float", "half"}
        while hasattr(node, "op"):
            if node.op == "get_attr":
                return True
            tgt = node.target
            tname = tgt if isinstance(tgt, str) else getattr(tgt, "__name__", "")
            if node.op in ("call_method", "call_function") and tname in views and node.args:
                node = node.args[0]
                continue
            return False
        return False

    def _arg(self, node, idx: int, key: str, default=None):
        if len(node.args) > idx:
            return node.args[idx]
        return node.kwargs.get(key, default)

    def _aux(self, node, kind: str, inputs) -> None:
        if node.op == "call_module":
            name = str(node.target)
        else:
            scope = self._scope(node)
            name = f"{scope}.{node.name}" if scope else node.name
        inputs = [a for a in inputs if hasattr(a, "meta")]
        if all(self._value(a) is None for a in inputs):
            return  # computed from parameters and constants only: no data moves at run time
        in_elems = sum(_numel(_shape(a)) for a in inputs)
        out_elems = _numel(_shape(node))
        if in_elems and out_elems:
            self.aux.append(AuxOp(name, kind, in_elems, out_elems))
            self.aux_inputs = inputs

    # ---- layer builders ---------------------------------------------------------------------
    def _conv(self, name, x, w_shape, out, stride, padding, dilation, groups, bias, spatial) -> None:
        if x is None or out is None:
            raise WorkloadError(f"{name}: could not infer the shapes around this convolution")
        if len(x) == spatial + 1:  # unbatched input
            x, out = (1,) + x, (1,) + out
        n, c_in = x[0], x[1]
        k_out = out[1]
        kernel = tuple(w_shape[2:])
        if spatial == 1:
            hw, kernel = (1, out[2]), (1, kernel[0])
        else:
            hw = (out[2], out[3])
        stride = _pair(stride, "stride", name)
        dilation = _pair(dilation, "dilation", name)
        pad = _padding(padding, kernel, dilation)
        self.layers.append(Layer.conv(self._unique(name), c_in, k_out, hw, kernel, stride=stride,
                                      groups=groups, batch=n, dilation=dilation, padding=pad, bias=bool(bias)))

    def _matmul(self, name, a, b, a_param=False, b_param=False, bias=False) -> None:
        if a is None or b is None:
            raise WorkloadError(f"{name}: could not infer the operand shapes of this matmul")
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        m, k = a2[-2], a2[-1]
        if b2[-2] != k:
            raise WorkloadError(f"{name}: matmul operands {a} x {b} do not agree")
        n = b2[-1]
        batch_a, batch_b = a2[:-2], b2[:-2]
        if b_param and len(b) <= 2:
            self.layers.append(Layer.fc(self._unique(name), k, n, batch=_numel(batch_a) * m, bias=bias))
        elif a_param and len(a) <= 2:
            self.layers.append(Layer.fc(self._unique(name), k, m, batch=_numel(batch_b) * n, bias=bias))
        else:
            try:
                batch = math.prod(self.torch.broadcast_shapes(tuple(batch_a), tuple(batch_b)))
            except RuntimeError:
                raise WorkloadError(f"{name}: matmul batch dimensions {a} x {b} do not broadcast") from None
            self.layers.append(Layer.matmul(self._unique(name), m, k, n, batch=batch))

    # ---- node dispatch ----------------------------------------------------------------------
    def _is_mac_fn(self, node) -> bool:
        t = node.target
        if node.op == "call_method":
            return t in self.matmul_methods
        return node.op == "call_function" and (t in self.matmul_fns or t in self.addmm_fns or t in self.conv_fns
                                               or t in self.linear_fns or t in self.sdpa_fns)

    def run(self) -> None:
        nodes = list(self.gm.graph.nodes)
        for node in nodes:
            if self._is_mac_fn(node):
                self.mac_paths[self._scope(node)] += 1
        for node in nodes:
            n_layers, n_aux = len(self.layers), len(self.aux)
            if node.op == "call_module":
                self._module(node)
            elif node.op in ("call_function", "call_method"):
                self._function(node)
            try:
                self._track(node, n_layers, n_aux)
            except (ArithmeticError, AttributeError, IndexError, KeyError, TypeError, ValueError) as e:
                self.edges.fail(f"node '{node.name}': {type(e).__name__}")

    # ---- graph edges ------------------------------------------------------------------------
    _METADATA = (int, float, bool, str, type(None))

    def _value(self, node):
        """The ``EdgeRecorder`` value of an fx node's output (``None`` for anything not a node)."""
        if not hasattr(node, "op"):
            return None
        if node in self.value:
            return self.value[node]
        return Unattributed(node.name)

    def _layer_inputs(self, node) -> list:
        """The nodes a MAC operator reads: its activation, and weights when they are computed."""
        if node.op == "call_module":
            return list(node.all_input_nodes)
        t = node.target
        if (node.op == "call_method" and t in self.matmul_methods) or t in self.matmul_fns:
            return list(node.args[:2])
        if t in self.addmm_fns:
            return [*node.args[1:3], node.args[0]]
        return list(node.all_input_nodes)  # conv / linear: input, weight, bias

    def _track(self, node, n_layers: int, n_aux: int) -> None:
        """Record who the layers and operators ``node`` created read, and the value of its output."""
        torch = self.torch
        if node.op == "placeholder":
            self.value[node] = EdgeRecorder.INPUT
            return
        if node.op in ("get_attr", "output"):
            self.value[node] = None
            return
        key = None
        new_layers = range(n_layers, len(self.layers))
        if node.op == "call_function" and node.target in self.sdpa_fns and len(new_layers) == 2:
            ins = [self._arg(node, i, kw) for i, kw in enumerate(("query", "key", "value", "attn_mask"))]
            scores = self.edges.record("layer", new_layers[0], [self._value(a) for a in (ins[0], ins[1], ins[3])],
                                       self.layers[new_layers[0]].name)
            key = self.edges.record("layer", new_layers[1], [scores, self._value(ins[2])],
                                    self.layers[new_layers[1]].name)
        else:
            for i in new_layers:
                key = self.edges.record("layer", i, [self._value(a) for a in self._layer_inputs(node)],
                                        self.layers[i].name)
        for i in range(n_aux, len(self.aux)):
            key = self.edges.record("aux", i, [self._value(a) for a in self.aux_inputs], self.aux[i].name)
        kind = node.meta.get("type")
        if key is not None:
            out = key
        elif node.op == "call_method" and node.target in ("size", "dim", "numel", "new_zeros", "new_ones",
                                                          "new_empty", "new_full"):
            out = None
        elif node.op == "call_function" and node.target in self.factory_like:
            out = None
        elif isinstance(kind, type) and (issubclass(kind, self._METADATA) or issubclass(kind, torch.Size)):
            out = None  # sizes and flags: they describe tensors, they carry none of their data
        else:
            out = EdgeRecorder.merge([self._value(a) for a in node.all_input_nodes], node.name)
        self.value[node] = out
        # an in-place operator (x.add_(y), x[i] = y) changes what its first argument holds from here on
        t = node.target
        name = t if isinstance(t, str) else getattr(t, "__name__", "")
        inplace = (name.endswith("_") and not name.endswith("__")) or name in _INPLACE_DUNDERS \
            or t in (operator.iadd, operator.imul, operator.isub, operator.itruediv) or t in self.setitem
        if inplace and node.args and hasattr(node.args[0], "op"):
            self.value[node.args[0]] = out

    def _module(self, node) -> None:
        nn = self.nn
        m = self.gm.get_submodule(node.target)
        name = str(node.target)
        x = _shape(node.args[0]) if node.args else None
        out = _shape(node)
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            spatial = 1 if isinstance(m, nn.Conv1d) else 2
            self._conv(name, x, tuple(m.weight.shape), out, m.stride, m.padding, m.dilation, m.groups,
                       m.bias is not None, spatial)
        elif isinstance(m, nn.Linear):
            if x is None:
                raise WorkloadError(f"{name}: could not infer the input shape of this Linear")
            rows = _numel(x) // m.in_features
            self.layers.append(Layer.fc(self._unique(name), m.in_features, m.out_features, batch=rows,
                                        bias=m.bias is not None))
        elif isinstance(m, nn.ConvTranspose2d):
            self._conv_transpose(name, m, x)
        elif isinstance(m, self.unsupported_modules):
            raise WorkloadError(f"unsupported operator {type(m).__name__} at '{name}' "
                                f"(supported MAC layers: Conv1d, Conv2d, Linear, matmul)")
        elif isinstance(m, self.pool_modules):
            self._aux(node, "pool", node.args[:1])
        elif not isinstance(m, self.param_no_mac) and any(p.dim() >= 2 for p in m.parameters()):
            raise WorkloadError(f"unsupported operator {type(m).__name__} at '{name}': it has weight matrices "
                                f"but is not a known MAC layer")

    def _conv_transpose(self, name, m, x) -> None:
        kh, kw = m.kernel_size
        if (tuple(m.stride) != (kh, kw) or any(m.padding) or any(m.output_padding) or m.groups != 1
                or any(d != 1 for d in m.dilation)):
            raise WorkloadError(f"unsupported operator ConvTranspose2d at '{name}': only kernel == stride "
                                f"without padding or groups (a 1x1 conv plus pixel shuffle) is supported")
        if x is None:
            raise WorkloadError(f"{name}: could not infer the input shape")
        if len(x) == 3:
            x = (1,) + x
        self.layers.append(Layer.conv(self._unique(name), x[1], m.out_channels * kh * kw, (x[2], x[3]), 1,
                                      batch=x[0], bias=m.bias is not None))

    def _function(self, node) -> None:
        t = node.target
        if node.op == "call_function" and t in self.unsupported_fns:
            raise WorkloadError(f"unsupported operator {self.unsupported_fns[t]} at '{self._fn_name(node)}' "
                                f"(supported MAC layers: Conv1d, Conv2d, Linear, matmul)")
        if self._is_mac_fn(node):
            name = self._fn_name(node)
            args = node.args
            if (node.op == "call_method" and t in self.matmul_methods) or t in self.matmul_fns:
                a, b = args[0], args[1]
                self._matmul(name, _shape(a), _shape(b), self._is_param(a), self._is_param(b))
            elif t in self.addmm_fns:
                bias, a, b = args[0], args[1], args[2]
                self._matmul(name, _shape(a), _shape(b), self._is_param(a), self._is_param(b),
                             bias=self._is_param(bias))
            elif t in self.linear_fns:
                x, w = args[0], self._arg(node, 1, "weight")
                b = self._arg(node, 2, "bias")
                ws = _shape(w)
                if ws is None or _shape(x) is None:
                    raise WorkloadError(f"{name}: could not infer the shapes of this linear")
                self.layers.append(Layer.fc(self._unique(name), ws[-1], ws[0], batch=_numel(_shape(x)) // ws[-1],
                                            bias=b is not None))
            elif t in self.conv_fns:
                w = self._arg(node, 1, "weight")
                ws = _shape(w)
                if ws is None:
                    raise WorkloadError(f"{name}: could not infer the weight shape of this convolution")
                self._conv(name, _shape(args[0]), ws, _shape(node), self._arg(node, 3, "stride", 1),
                           self._arg(node, 4, "padding", 0), self._arg(node, 5, "dilation", 1),
                           self._arg(node, 6, "groups", 1), self._arg(node, 2, "bias") is not None,
                           self.conv_fns[t])
            elif t in self.sdpa_fns:
                q, k, v = (_shape(args[i]) if len(args) > i else _shape(node.kwargs.get(kw))
                           for i, kw in enumerate(("query", "key", "value")))
                if q is None or k is None or v is None:
                    raise WorkloadError(f"{name}: could not infer the shapes of this attention")
                batch = math.prod(q[:-2])
                self.layers.append(Layer.matmul(self._unique(f"{name}.scores"), q[-2], q[-1], k[-2], batch=batch))
                self.layers.append(Layer.matmul(self._unique(f"{name}.context"), q[-2], k[-2], v[-1], batch=batch))
            return
        tensors = [a for a in node.args if hasattr(a, "meta") and _shape(a) is not None]
        tname = t if isinstance(t, str) else None
        if t in self.add_fns or tname in ("add", "add_", "__add__", "__iadd__"):
            if len(tensors) == 2:
                self._aux(node, "add", tensors)
        elif t in self.mul_fns or tname in ("mul", "mul_", "__mul__"):
            if len(tensors) == 2 and all(_numel(_shape(a)) > 1 for a in tensors):
                self._aux(node, "mul", tensors)
        elif t in self.cat_fns or tname == "cat":
            parts = node.args[0] if node.args else node.kwargs.get("tensors", ())
            self._aux(node, "concat", [a for a in parts if hasattr(a, "meta")])
        elif t in self.pool_fns:
            self._aux(node, "pool", node.args[:1])


TORCH_MAX_INPUT_ELEMS = 2 ** 28   # elements of one example input (1 GiB of float32; it is allocated)
TORCH_MAX_RANK = 8
TORCH_MAX_INPUTS = 64


def _input_shapes(input_shape) -> list[tuple[int, ...]]:
    try:
        shape = tuple(input_shape)
        shapes = [tuple(s) for s in shape] if shape and not isinstance(shape[0], int) else [shape]
    except TypeError:
        raise WorkloadError(f"input shape {input_shape!r} must be a tuple of positive integers") from None
    if len(shapes) > TORCH_MAX_INPUTS:
        raise WorkloadError(f"{len(shapes)} input shapes, more than the {TORCH_MAX_INPUTS} accepted")
    for s in shapes:
        if not s or len(s) > TORCH_MAX_RANK or any(int_range_problem(d, 1, MAX_DIM, python_int=True) for d in s):
            raise WorkloadError(f"input shape {s} must be a tuple of 1 to {TORCH_MAX_RANK} integers, "
                                f"each from 1 to {MAX_DIM:,}")
        if math.prod(s) > TORCH_MAX_INPUT_ELEMS:
            raise WorkloadError(f"input shape {s} has {math.prod(s):,} elements, more than the "
                                f"{TORCH_MAX_INPUT_ELEMS:,} accepted (the example input is allocated)")
    return shapes


def _propagate(gm, shapes) -> None:
    """Annotate every node with its output shape; fake tensors first (no compute), real as fallback."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp
    inputs = [torch.zeros(s) for s in shapes]
    try:
        from torch._subclasses.fake_tensor import FakeTensorMode
        ShapeProp(gm, fake_mode=FakeTensorMode(allow_non_fake_inputs=True)).propagate(*inputs)
        return
    except Exception:  # noqa: BLE001 - some models do not run on fake tensors; run them for real
        pass
    with torch.no_grad():
        ShapeProp(gm).propagate(*inputs)


def from_torch(module, input_shape: tuple, name: str = "torch") -> Network:
    """Trace ``module`` on an input of ``input_shape`` (a tuple, or a tuple of tuples for several
    inputs) and return its MAC layers named by their module paths."""
    import torch
    import torch.fx as fx

    if not isinstance(module, torch.nn.Module):
        raise WorkloadError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    shapes = _input_shapes(input_shape)
    try:
        gm = fx.symbolic_trace(module)
    except Exception as e:  # noqa: BLE001 - fx raises many types for untraceable code
        raise WorkloadError(f"cannot trace {type(module).__name__} with torch.fx: {_first_line(e)}") from None
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(shapes):
        raise WorkloadError(f"{type(module).__name__}.forward takes {len(placeholders)} input(s), "
                            f"{len(shapes)} shape(s) given")
    was_training = module.training
    module.eval()
    try:
        _propagate(gm, shapes)
    except Exception as e:  # noqa: BLE001
        raise WorkloadError(f"cannot run {type(module).__name__} on input shape(s) {shapes}: {_first_line(e)}") from None
    finally:
        module.train(was_training)
    col = _Collector(gm)
    col.run()
    if not col.layers:
        raise WorkloadError(f"{type(module).__name__} has no MAC layers (conv, linear, matmul)")
    first = shapes[0]
    resolution = first[-1] if len(first) >= 3 and first[-1] == first[-2] else None
    return col.edges.network(name, col.layers, col.aux, resolution,
                             {"source": f"torch:{type(module).__name__}", "input_shapes": shapes})
