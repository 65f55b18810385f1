"""ResNet-18 and ResNet-50 (He et al. 2016) in the torchvision "v1.5" form: the stride of a
bottleneck sits on its 3x3 conv. Names follow torchvision (``layer1.0.conv1``)."""
from __future__ import annotations

from ..network import Network
from ._builder import NetBuilder

_WIDTHS = (64, 128, 256, 512)


def _shortcut(b: NetBuilder, prefix: str, entry: tuple, width: int, stride: int) -> tuple:
    """The block's skip input: its entry, or a strided 1x1 projection of it when the shape changes."""
    if stride == 1 and entry[0] == width:
        return entry
    out = b.state()
    skip = b.restore(entry).conv(f"{prefix}.downsample.0", width, 1, stride=stride).state()
    b.restore(out)
    return skip


def _basic(b: NetBuilder, prefix: str, width: int, stride: int) -> None:
    entry = b.state()
    b.conv(f"{prefix}.conv1", width, 3, stride=stride)
    b.conv(f"{prefix}.conv2", width, 3)
    b.add(f"{prefix}.add", _shortcut(b, prefix, entry, width, stride))


def _bottleneck(b: NetBuilder, prefix: str, width: int, stride: int) -> None:
    entry = b.state()
    b.conv(f"{prefix}.conv1", width, 1)
    b.conv(f"{prefix}.conv2", width, 3, stride=stride)
    b.conv(f"{prefix}.conv3", 4 * width, 1)
    b.add(f"{prefix}.add", _shortcut(b, prefix, entry, 4 * width, stride))


def _resnet(name: str, block, depths: tuple[int, ...], resolution: int, batch: int) -> Network:
    b = NetBuilder(name, 3, resolution, batch)
    b.conv("conv1", 64, 7, stride=2)
    b.pool("maxpool", 3, 2, padding=1)
    for stage, (width, depth) in enumerate(zip(_WIDTHS, depths), start=1):
        for i in range(depth):
            block(b, f"layer{stage}.{i}", width, 2 if (i == 0 and stage > 1) else 1)
    b.adaptive_pool("avgpool", 1)
    b.fc("fc", 1000)
    return b.build(resolution, source="He et al. 2016 (torchvision v1.5 layout)")


def resnet18(resolution: int = 224, batch: int = 1) -> Network:
    return _resnet("resnet18", _basic, (2, 2, 2, 2), resolution, batch)


def resnet50(resolution: int = 224, batch: int = 1) -> Network:
    return _resnet("resnet50", _bottleneck, (3, 4, 6, 3), resolution, batch)
