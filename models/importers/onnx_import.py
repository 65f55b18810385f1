"""ONNX model -> ``Network`` with shapes from ``onnx.shape_inference``.

MAC operators: ``Conv`` (1-D/2-D; group, strides, dilations, pads), ``Gemm``, ``MatMul``
(a constant operand makes it a fully-connected layer, two activations a matmul) and a
non-overlapping ``ConvTranspose`` (kernel == stride, recorded as the equivalent 1x1 conv).
Pooling, residual adds, tensor products and concatenations become ``AuxOp``. Symbolic input
dimensions (a dynamic batch) are fixed to 1. Any other MAC operator raises ``WorkloadError``.
"""
from __future__ import annotations

import math
import os

from ..errors import WorkloadError
from ..layer import Layer
from ..network import AuxOp, Network
from ..schema import MAX_DILATION, MAX_DIM, MAX_PADDING, MAX_STRIDE, int_range_problem
from . import EdgeRecorder, Unattributed

ONNX_MAX_BYTES = 2 ** 31          # protobuf's own limit for one message (weights included)
ONNX_MAX_NODES = 1_000_000        # nodes of the main graph
AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")

_UNSUPPORTED = {"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "Einsum", "LSTM", "GRU", "RNN",
                "Attention", "MultiHeadAttention", "DeformConv"}
_MAC_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
_PASS_THROUGH = {"Identity", "Transpose", "Cast", "Reshape", "Squeeze", "Unsqueeze", "DequantizeLinear", "Flatten"}
_POOL = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool"}
_CONTROL = {"If", "Loop", "Scan"}
# their outputs depend on the shape of their input only, none of its data
_SHAPE_OPS = {"Shape", "Size", "EyeLike", "RandomNormalLike", "RandomUniformLike"}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _check_opsets(model, label: str) -> None:
    import onnx
    newest = onnx.defs.onnx_opset_version()
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and not 1 <= op.version <= newest:
            raise WorkloadError(f"{label}: opset_import: ONNX opset {op.version} is not supported "
                                f"(the installed onnx knows opsets 1 to {newest})")
    if len(model.graph.node) > ONNX_MAX_NODES:
        raise WorkloadError(f"{label}: {len(model.graph.node):,} nodes, more than the {ONNX_MAX_NODES:,} accepted")


def _load(path_or_model):
    """(model, default network name, label for errors)."""
    import onnx
    if isinstance(path_or_model, onnx.ModelProto):
        name = path_or_model.graph.name or "onnx"
        _check_opsets(path_or_model, name)
        return path_or_model, name, name
    path = os.fspath(path_or_model)
    if not os.path.isfile(path):
        raise WorkloadError(f"file not found: {path}")
    size = os.path.getsize(path)
    if size > ONNX_MAX_BYTES:
        raise WorkloadError(f"{path}: {size:,} bytes, more than the {ONNX_MAX_BYTES:,} an ONNX file can hold")
    try:
        model = onnx.load(path)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a corrupt file
        raise WorkloadError(f"{path}: not a valid ONNX model ({_first_line(e)})") from None
    if not model.graph.node:
        raise WorkloadError(f"{path}: not a valid ONNX model (the graph has no nodes)")
    _check_opsets(model, path)
    return model, os.path.splitext(os.path.basename(path))[0], path


def _fix_dynamic_inputs(model, weight_names=frozenset()) -> list[str]:
    """Set symbolic or missing input dimensions to 1; returns the names of the fixed inputs.

    A fixed size that is zero, negative or above ``MAX_DIM`` is an error naming the input.
    """
    inits = {i.name for i in model.graph.initializer} | set(weight_names)
    fixed = []
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        for axis, d in enumerate(inp.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                problem = int_range_problem(d.dim_value, 1, MAX_DIM)
                if problem:
                    raise WorkloadError(f"graph input '{inp.name}': dimension {axis} {problem} (got {d.dim_value}); "
                                        f"leave a dynamic size symbolic")
                continue
            d.Clear()
            d.dim_value = 1
            fixed.append(inp.name)
    return sorted(set(fixed))


def _shapes(model) -> dict[str, tuple | None]:
    out: dict[str, tuple | None] = {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        out[vi.name] = dims
    for init in g.initializer:
        out[init.name] = tuple(init.dims)
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t is not None:
                    out[node.output[0]] = tuple(a.t.dims)
    return out


def _ints(a: dict, key: str, default: tuple, n: int, lo: int, hi: int) -> tuple[int, ...]:
    """Attribute ``key``: ``n`` integers in ``[lo, hi]``; the error names the attribute."""
    v = a.get(key, default)
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise WorkloadError(f"attribute {key}={v!r} must list {n} integers")
    for x in v:
        problem = int_range_problem(x, lo, hi)
        if problem:
            raise WorkloadError(f"attribute {key}={list(v)}: {x} {problem.replace('must be', 'is not')}")
    return tuple(int(x) for x in v)


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _subgraphs_have_macs(node) -> bool:
    import onnx
    for a in node.attribute:
        graphs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
        for g in graphs:
            for n in g.node:
                if n.op_type in _MAC_OPS or n.op_type in _UNSUPPORTED or _subgraphs_have_macs(n):
                    return True
    return False


class _Walker:
    def __init__(self, model, weight_names=frozenset()):
        self.g = model.graph
        self.shapes = _shapes(model)
        self.params = {i.name for i in self.g.initializer} | set(weight_names)
        self.consumers: dict[str, list] = {}
        for node in self.g.node:
            for i in node.input:
                self.consumers.setdefault(i, []).append(node)
        self.layers: list[Layer] = []
        self.aux: list[AuxOp] = []
        self.used: dict[str, int] = {}
        # graph edges: each tensor's value for ``EdgeRecorder`` (constants are None)
        self.edges = EdgeRecorder()
        self.const = set(self.params)
        self.produced = {o for node in self.g.node for o in node.output}
        self.value: dict = {}
        self.aux_inputs: list[str] = []

    def _shape(self, name: str, node, what: str, min_rank: int = 0) -> tuple[int, ...]:
        s = self.shapes.get(name)
        if s is None or any(d is None for d in s):
            raise WorkloadError(f"the shape of {what} '{name}' could not be inferred (check the node's attributes, "
                                f"or export the model with static shapes)")
        if any(d <= 0 for d in s):
            raise WorkloadError(f"{what} '{name}' has the empty shape {list(s)} (an input smaller than the "
                                f"kernel, or a zero-size tensor)")
        if len(s) < min_rank:
            raise WorkloadError(f"{what} '{name}' has rank {len(s)}; at least {min_rank} is needed")
        return s

    def _name(self, node, weight: str | None) -> str:
        if weight and weight.endswith(".weight"):
            base = weight[: -len(".weight")]
        elif node.name:
            parts = [p for p in node.name.strip("/").split("/") if p]
            base = ".".join(parts[:-1]) if len(parts) > 1 else (parts[0] if parts else node.op_type)
        else:
            base = f"{node.op_type}_{len(self.layers)}"
        self.used[base] = self.used.get(base, 0) + 1
        return base if self.used[base] == 1 else f"{base}#{self.used[base]}"

    def _numel(self, name: str) -> int:
        s = self.shapes.get(name)
        return math.prod(s) if s is not None and all(d is not None and d > 0 for d in s) else 0

    def _aux(self, node, kind: str, inputs) -> None:
        inputs = list(inputs)
        if all(i in self.const for i in inputs):
            return  # computed from constants and shapes only (a Reshape target): no data moves
        in_elems = sum(self._numel(i) for i in inputs)
        out_elems = self._numel(node.output[0])
        if in_elems and out_elems:
            self.aux.append(AuxOp(node.name or node.op_type, kind, in_elems, out_elems))
            self.aux_inputs = inputs

    def _bias_after(self, node, n: int) -> bool:
        """A MatMul followed only by an Add of an n-element constant is a Linear layer with bias."""
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Add":
            return False
        other = [i for i in users[0].input if i != node.output[0]]
        return len(other) == 1 and other[0] in self.params and self._numel(other[0]) == n

    # ---- operators ----------------------------------------------------------------------------
    def _value(self, name: str):
        """The ``EdgeRecorder`` value of tensor ``name``: a graph input, a constant, or what produced it."""
        if not name or name in self.const:
            return None
        if name in self.value:
            return self.value[name]
        return EdgeRecorder.INPUT if name not in self.produced else Unattributed(name)

    def _track(self, node, n_layers: int, n_aux: int) -> None:
        """Record who the layers and operators ``node`` created read, and the value of its outputs."""
        where = node.name or node.op_type
        key = None
        for i in range(n_layers, len(self.layers)):
            key = self.edges.record("layer", i, [self._value(x) for x in node.input], self.layers[i].name)
        for i in range(n_aux, len(self.aux)):
            key = self.edges.record("aux", i, [self._value(x) for x in self.aux_inputs], self.aux[i].name)
        if key is not None:
            out = key
        elif node.op_type in _SHAPE_OPS and node.domain in ("", "ai.onnx"):
            out = None
        elif node.op_type in _CONTROL:
            out = Unattributed(where)  # its subgraphs may read outer tensors that are not its inputs
        else:
            out = EdgeRecorder.merge([self._value(x) for x in node.input], where)
        for o in node.output:
            if not o:
                continue
            if out is None:
                self.const.add(o)
            else:
                self.value[o] = out

    def run(self) -> None:
        for node in self.g.node:
            n_layers, n_aux = len(self.layers), len(self.aux)
            try:
                self._node(node)
            except WorkloadError as e:
                text = str(e)
                if not text.startswith(("ONNX node", "unsupported ONNX")):
                    text = f"ONNX node '{node.name or node.op_type}' ({node.op_type}): {text}"
                raise WorkloadError(text) from None
            except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as e:
                raise WorkloadError(f"ONNX node '{node.name or node.op_type}' ({node.op_type}): malformed "
                                    f"({type(e).__name__}: {_first_line(e)})") from None
            try:
                self._track(node, n_layers, n_aux)
            except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as e:
                self.edges.fail(f"node '{node.name or node.op_type}': {type(e).__name__}")

    def _node(self, node) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            if op in _UNSUPPORTED or "Conv" in op or "MatMul" in op or "Attention" in op:
                raise WorkloadError(f"unsupported ONNX operator {node.domain}.{op} at '{node.name}'")
            return
        if op in _PASS_THROUGH or op == "Constant":
            if op == "Constant" or (node.input and node.input[0] in self.params):
                self.params.update(node.output)
            return
        if op == "Conv":
            self._conv(node)
        elif op == "ConvTranspose":
            self._conv_transpose(node)
        elif op in _UNSUPPORTED:
            raise WorkloadError(f"unsupported ONNX operator {op} at '{node.name or op}' "
                                f"(supported MAC operators: Conv, Gemm, MatMul)")
        elif op in _CONTROL and _subgraphs_have_macs(node):
            raise WorkloadError(f"unsupported ONNX operator {op} with MAC operators inside, at '{node.name or op}'")
        elif op == "Gemm":
            self._gemm(node)
        elif op == "MatMul":
            self._matmul(node)
        elif op in _POOL:
            self._aux(node, "pool", node.input[:1])
        elif op in ("Add", "Sum", "Mul"):
            acts = [i for i in node.input if i and i not in self.params and self._numel(i) > 1]
            if len(acts) == len(node.input) >= 2:
                self._aux(node, "mul" if op == "Mul" else "add", acts)
        elif op == "Concat":
            self._aux(node, "concat", [i for i in node.input if i])

    def _conv(self, node) -> None:
        a = _attrs(node)
        x = self._shape(node.input[0], node, "input", 3)
        w = self._shape(node.input[1], node, "weight", 3)
        if len(x) not in (3, 4):
            raise WorkloadError(f"unsupported ONNX operator Conv with {len(x) - 2}-D input at '{node.name}' "
                                f"(only 1-D and 2-D convolutions)")
        spatial = len(x) - 2
        kernel = tuple(w[2:])
        strides = _ints(a, "strides", (1,) * spatial, spatial, 1, MAX_STRIDE)
        dilations = _ints(a, "dilations", (1,) * spatial, spatial, 1, MAX_DILATION)
        pads = _ints(a, "pads", (0,) * 2 * spatial, 2 * spatial, 0, MAX_PADDING)
        if "kernel_shape" in a and tuple(a["kernel_shape"]) != kernel:
            raise WorkloadError(f"attribute kernel_shape={list(a['kernel_shape'])} contradicts the weight shape "
                                f"{list(w)}")
        groups = a.get("group", 1)
        problem = int_range_problem(groups, 1, MAX_DIM)
        if problem:
            raise WorkloadError(f"attribute group={groups!r} {problem}")
        if x[1] % groups or w[0] % groups or x[1] // groups != w[1]:
            raise WorkloadError(f"attribute group={groups} does not fit {x[1]} input channels, {w[0]} output "
                                f"channels and a weight of shape {list(w)}")
        for what, v in (("stride", strides), ("dilation", dilations)):
            if len(set(v)) != 1:
                raise WorkloadError(f"{what} {v} differs between axes; only square {what}s are supported")
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode(errors="replace") if isinstance(auto, bytes) else str(auto)
        if auto not in AUTO_PAD:
            raise WorkloadError(f"attribute auto_pad={auto[:40]!r} is not one of {', '.join(AUTO_PAD)}")
        y = self._shape(node.output[0], node, "output", len(x))
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            padding = max(dilations[0] * (k - 1) // 2 for k in kernel)
        elif auto == "VALID":
            padding = 0
        else:
            padding = max(pads) if pads else 0
        if spatial == 1:
            hw, kernel = (1, y[2]), (1, kernel[0])
        else:
            hw = (y[2], y[3])
        bias = len(node.input) > 2 and node.input[2] != ""
        self.layers.append(Layer.conv(self._name(node, node.input[1]), x[1], y[1], hw, kernel, stride=strides[0],
                                      groups=groups, batch=x[0], dilation=dilations[0], padding=padding, bias=bias))

    def _conv_transpose(self, node) -> None:
        a = _attrs(node)
        x = self._shape(node.input[0], node, "input", 4)
        w = self._shape(node.input[1], node, "weight", 4)
        kernel = tuple(w[2:])
        if (len(x) != 4 or tuple(a.get("strides", (1, 1))) != kernel or any(a.get("pads", ()))
                or any(a.get("output_padding", ())) or int(a.get("group", 1)) != 1
                or any(d != 1 for d in a.get("dilations", ()))):
            raise WorkloadError(f"unsupported ONNX operator ConvTranspose at '{node.name or 'ConvTranspose'}': only "
                                f"kernel == stride without padding or groups (a 1x1 conv plus pixel shuffle)")
        bias = len(node.input) > 2 and node.input[2] != ""
        self.layers.append(Layer.conv(self._name(node, node.input[1]), x[1], w[1] * kernel[0] * kernel[1],
                                      (x[2], x[3]), 1, batch=x[0], bias=bias))

    def _gemm(self, node) -> None:
        a = _attrs(node)
        sa = self._shape(node.input[0], node, "input A")
        sb = self._shape(node.input[1], node, "input B")
        if len(sa) != 2 or len(sb) != 2:
            raise WorkloadError(f"Gemm operands must be 2-D, got shapes {list(sa)} and {list(sb)}")
        m, k = (sa[1], sa[0]) if a.get("transA", 0) else (sa[0], sa[1])
        n = sb[0] if a.get("transB", 0) else sb[1]
        bias = len(node.input) > 2 and node.input[2] != ""
        self._emit(node, m, k, n, (), (), node.input[0] in self.params, node.input[1] in self.params, bias)

    def _matmul(self, node) -> None:
        sa = self._shape(node.input[0], node, "input A", 1)
        sb = self._shape(node.input[1], node, "input B", 1)
        a2 = (1,) + sa if len(sa) == 1 else sa
        b2 = sb + (1,) if len(sb) == 1 else sb
        b_param = node.input[1] in self.params
        bias = b_param and self._bias_after(node, b2[-1])
        self._emit(node, a2[-2], a2[-1], b2[-1], a2[:-2], b2[:-2], node.input[0] in self.params, b_param, bias)

    def _emit(self, node, m, k, n, batch_a, batch_b, a_param, b_param, bias) -> None:
        if b_param and not batch_b:
            self.layers.append(Layer.fc(self._name(node, node.input[1]), k, n,
                                        batch=math.prod(batch_a) * m, bias=bias))
        elif a_param and not batch_a:
            self.layers.append(Layer.fc(self._name(node, node.input[0]), k, m,
                                        batch=math.prod(batch_b) * n, bias=bias))
        else:
            import numpy as np
            try:
                batch = math.prod(np.broadcast_shapes(tuple(batch_a), tuple(batch_b)))
            except ValueError:
                raise WorkloadError(f"ONNX node '{node.name}': matmul batch dimensions do not broadcast") from None
            self.layers.append(Layer.matmul(self._name(node, None), m, k, n, batch=batch))


def _skeleton(model):
    """A copy without the data of large initializers (they become typed graph inputs), so that
    checking and shape inference do not serialize hundreds of MB of weights. Small tensors keep
    their values: shape inference reads them (Reshape targets, Slice bounds)."""
    import onnx
    out = onnx.ModelProto()
    graph = model.graph
    big = [i for i in graph.initializer if math.prod(i.dims) > 4096]
    if not big:
        out.CopyFrom(model)
        return out, set()
    big_names = {i.name for i in big}
    out.CopyFrom(onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import,
                                 producer_name=model.producer_name, domain=model.domain,
                                 model_version=model.model_version))
    g = out.graph
    g.name = graph.name
    g.node.extend(graph.node)
    g.input.extend(i for i in graph.input if i.name not in big_names)
    g.input.extend(onnx.helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in big)
    g.output.extend(graph.output)
    g.value_info.extend(graph.value_info)
    g.initializer.extend(i for i in graph.initializer if i.name not in big_names)
    return out, big_names


def from_onnx(path_or_modelproto, name: str | None = None) -> Network:
    """Read an ONNX file (or ``onnx.ModelProto``) into a ``Network`` of its MAC layers."""
    import onnx
    model, default_name, label = _load(path_or_modelproto)
    model_copy, weight_names = _skeleton(model)
    try:
        fixed = _fix_dynamic_inputs(model_copy, weight_names)
        onnx.checker.check_model(model_copy)
        inferred = onnx.shape_inference.infer_shapes(model_copy, data_prop=True)
    except WorkloadError as e:
        raise WorkloadError(f"{label}: {e}") from None
    except Exception as e:  # noqa: BLE001 - checker and inference raise their own types
        raise WorkloadError(f"{label}: invalid ONNX model ({_first_line(e)})") from None
    walker = _Walker(inferred, weight_names)
    try:
        walker.run()
    except WorkloadError as e:
        raise WorkloadError(f"{label}: {e}") from None
    if not walker.layers:
        raise WorkloadError(f"{label}: the ONNX graph has no MAC operators (Conv, Gemm, MatMul)")
    inits = {i.name for i in inferred.graph.initializer} | weight_names
    inputs = [i for i in inferred.graph.input if i.name not in inits]
    resolution = None
    if inputs:
        s = walker.shapes.get(inputs[0].name)
        if s is not None and len(s) == 4 and s[2] == s[3] and s[2] is not None:
            resolution = int(s[2])
    return walker.edges.network(name or default_name, walker.layers, walker.aux, resolution,
                                {"source": "onnx", "fixed_dynamic_inputs": fixed})
