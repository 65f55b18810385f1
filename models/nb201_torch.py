"""NAS-Bench-201 cells as runnable ``torch.nn.Module`` networks (random weights).

The structure is the benchmark's CIFAR network (Dong & Yang, ICLR 2020), the same skeleton
``models.spaces.nasbench201.NasBench201Space.to_network`` describes analytically:

- stem: 3x3 conv (3 -> 16 channels, no bias) + BN;
- three stages of five cells (16, 32, 64 channels) joined by residual reduction blocks:
  ``conv_a`` ReLU-conv3x3/2-BN, ``conv_b`` ReLU-conv3x3-BN, shortcut ``downsample`` = 2x2/2
  average pool + 1x1 conv (no BN), output = shortcut + ``conv_b``;
- a cell: node ``j`` = sum over ``i < j`` of ``op_ij(node i)`` with the operators ``none``
  (zeros), ``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-conv-BN, no
  bias) and ``avg_pool_3x3`` (stride 1, pad 1, ``count_include_pad=False``); node 3 is the
  cell's output; a node whose inputs are all ``none`` is zero;
- head: BN + ReLU (``lastact``), global average pool, linear classifier (bias).

Module names follow the analytical network's layer names: the conv of edge ``3<-1`` of cell 2
is ``cells.2.edges.3<-1.op.1``, the reduction convs are ``cells.5.conv_a.op.1``,
``cells.5.conv_b.op.1`` and ``cells.5.downsample.1``. Torch is imported on first use only.
"""
from __future__ import annotations

from .errors import WorkloadError
from .torch_builder import lazy_classes
from .spaces.nasbench201 import (CELLS_PER_STAGE, EDGES, N_NODES, STAGE_CHANNELS, NasBench201Space,
                                 arch_to_string)

MAX_CLASSES = 100_000


def _module_classes() -> dict:
    import torch
    import torch.nn as nn

    class ReLUConvBN(nn.Module):
        """ReLU, conv (no bias), BN: the benchmark's ``nor_conv_kxk`` and reduction convs."""

        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
            super().__init__()
            self.op = nn.Sequential(nn.ReLU(inplace=False),
                                    nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                                    nn.BatchNorm2d(c_out))

        def forward(self, x):
            return self.op(x)

    class NB201Cell(nn.Module):
        """One searched cell: a 4-node DAG over the six edges of ``ops`` (``none`` edges hold no
        module)."""

        def __init__(self, ops, channels: int):
            super().__init__()
            self.ops = tuple(ops)
            self.edges = nn.ModuleDict()
            for (j, i), op in zip(EDGES, self.ops):
                key = f"{j}<-{i}"
                if op == "nor_conv_3x3":
                    self.edges[key] = ReLUConvBN(channels, channels, 3)
                elif op == "nor_conv_1x1":
                    self.edges[key] = ReLUConvBN(channels, channels, 1)
                elif op == "avg_pool_3x3":
                    self.edges[key] = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
                elif op == "skip_connect":
                    self.edges[key] = nn.Identity()

        def forward(self, x):
            nodes = [x]
            for j in range(1, N_NODES):
                terms = [self.edges[f"{j}<-{i}"](nodes[i]) for i in range(j) if f"{j}<-{i}" in self.edges]
                if not terms:
                    nodes.append(torch.zeros_like(x))
                    continue
                out = terms[0]
                for t in terms[1:]:
                    out = out + t
                nodes.append(out)
            return nodes[-1]

    class NB201Reduction(nn.Module):
        """The residual reduction block between stages (halves rows and cols)."""

        def __init__(self, c_in: int, c_out: int):
            super().__init__()
            self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
            self.conv_b = ReLUConvBN(c_out, c_out, 3)
            self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2),
                                            nn.Conv2d(c_in, c_out, 1, bias=False))

        def forward(self, x):
            return self.downsample(x) + self.conv_b(self.conv_a(x))

    class NB201Net(nn.Module):
        """The NAS-Bench-201 CIFAR network of one cell (see the module docstring)."""

        def __init__(self, ops, num_classes: int = 100):
            super().__init__()
            self.ops = tuple(ops)
            self.arch_str = arch_to_string(self.ops)
            c = STAGE_CHANNELS[0]
            self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
            cells = []
            for stage, channels in enumerate(STAGE_CHANNELS):
                if stage > 0:
                    cells.append(NB201Reduction(c, channels))
                    c = channels
                cells += [NB201Cell(self.ops, c) for _ in range(CELLS_PER_STAGE)]
            self.cells = nn.ModuleList(cells)
            self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c, num_classes)

        def forward_pre_gap(self, x):
            """Features after the final BN + ReLU, before the global pool (N x 64 x 8 x 8 at 32x32)."""
            x = self.stem(x)
            for cell in self.cells:
                x = cell(x)
            return self.lastact(x)

        def forward(self, x):
            return self.classifier(self.global_pooling(self.forward_pre_gap(x)).flatten(1))

    return {"ReLUConvBN": ReLUConvBN, "NB201Cell": NB201Cell, "NB201Reduction": NB201Reduction,
            "NB201Net": NB201Net}


__getattr__ = lazy_classes(__name__, ("ReLUConvBN", "NB201Cell", "NB201Reduction", "NB201Net"), _module_classes)


def build_nb201(arch, num_classes: int = 100, seed: int = 0):
    """The NAS-Bench-201 network of ``arch`` (an arch string or ``{"ops": [6 operators]}``) as a
    ``torch.nn.Module`` in train mode, PyTorch's default initialisation drawn from ``seed``
    (the global torch generator is left as it was).

    Raises ``WorkloadError`` for a malformed cell or class count.
    """
    import torch

    ops = NasBench201Space().validate(arch)["ops"]
    if type(num_classes) is not int or not 1 <= num_classes <= MAX_CLASSES:
        raise WorkloadError(f"nasbench201: num_classes must be an integer from 1 to {MAX_CLASSES:,}, "
                            f"got {num_classes!r}")
    if type(seed) is not int or seed < 0:
        raise WorkloadError(f"nasbench201: seed must be a non-negative integer, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return __getattr__("NB201Net")(ops, num_classes)


def mac_layers(module) -> dict:
    """``{name: module}`` of the convolutions and linear layers of a built network (the MAC
    layers of the analytical ``Network``)."""
    import torch.nn as nn

    return {n: m for n, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def layer_name(module_name: str) -> str:
    """Analytical layer name of a torch MAC-layer name (``cells.0.edges.1<-0.op.1`` ->
    ``cells.0.edges.1<-0``, ``stem.0`` -> ``stem.conv``, ``cells.5.downsample.1`` ->
    ``cells.5.downsample.conv``)."""
    if module_name == "stem.0":
        return "stem.conv"
    if module_name.endswith(".op.1"):
        return module_name[: -len(".op.1")]
    if module_name.endswith(".downsample.1"):
        return module_name[: -len(".1")] + ".conv"
    if module_name == "classifier":
        return module_name
    raise WorkloadError(f"nasbench201: {module_name!r} is not a MAC layer of the network")
