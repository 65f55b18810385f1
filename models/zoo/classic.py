"""Plain convolutional stacks: AlexNet, VGG-16 and SqueezeNet 1.1 (torchvision layouts and names)."""
from __future__ import annotations

from ..network import Network
from ._builder import NetBuilder

# AlexNet as in torchvision (the single-column variant of "One weird trick", Krizhevsky 2014):
# (features index, out channels, kernel, stride, padding, max-pool after it)
_ALEXNET = ((0, 64, 11, 4, 2, True), (3, 192, 5, 1, 2, True), (6, 384, 3, 1, 1, False),
            (8, 256, 3, 1, 1, False), (10, 256, 3, 1, 1, True))


def alexnet(resolution: int = 224, batch: int = 1) -> Network:
    b = NetBuilder("alexnet", 3, resolution, batch)
    for idx, out, k, s, p, pool in _ALEXNET:
        b.conv(f"features.{idx}", out, k, stride=s, padding=p, bias=True)
        if pool:
            b.pool(f"features.{idx + 2}", 3, 2)
    b.adaptive_pool("avgpool", 6)  # fixes the classifier input at 256*6*6 for any resolution
    for idx, out in ((1, 4096), (4, 4096), (6, 1000)):
        b.fc(f"classifier.{idx}", out)
    return b.build(resolution, source="torchvision alexnet")


# VGG configuration "D" (Simonyan & Zisserman 2015, Table 1): channels per conv, "M" = max-pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(resolution: int = 224, batch: int = 1) -> Network:
    b = NetBuilder("vgg16", 3, resolution, batch)
    idx = 0
    for item in _VGG16:
        if item == "M":
            b.pool(f"features.{idx}", 2, 2)
            idx += 1
        else:
            b.conv(f"features.{idx}", item, 3, bias=True)
            idx += 2  # conv, ReLU
    b.adaptive_pool("avgpool", 7)
    for idx, out in ((0, 4096), (3, 4096), (6, 1000)):
        b.fc(f"classifier.{idx}", out)
    return b.build(resolution, source="Simonyan & Zisserman 2015, configuration D")


# SqueezeNet 1.1 (official SqueezeNet repository, v1.1): fire modules (squeeze, expand1x1, expand3x3),
# keyed by their index in ``features``; "M" marks a 3x3/2 max-pool (ceil mode).
_SQUEEZENET11 = ("M", (16, 64), (16, 64), "M", (32, 128), (32, 128), "M",
                 (48, 192), (48, 192), (64, 256), (64, 256))


def squeezenet1_1(resolution: int = 224, batch: int = 1, num_classes: int = 1000) -> Network:
    b = NetBuilder("squeezenet1_1", 3, resolution, batch)
    b.conv("features.0", 64, 3, stride=2, padding=0, bias=True)
    for idx, item in enumerate(_SQUEEZENET11, start=2):
        if item == "M":
            b.pool(f"features.{idx}", 3, 2, ceil_mode=True)
            continue
        squeeze, expand = item
        b.conv(f"features.{idx}.squeeze", squeeze, 1, bias=True)
        mid = b.state()
        b.conv(f"features.{idx}.expand1x1", expand, 1, bias=True)
        b.restore(mid).conv(f"features.{idx}.expand3x3", expand, 3, bias=True)
        b.c = 2 * expand
        b.op(f"features.{idx}.concat", "concat", b.elems, b.elems,
             inputs=(f"features.{idx}.expand1x1", f"features.{idx}.expand3x3"))
    b.conv("classifier.1", num_classes, 1, bias=True)
    b.adaptive_pool("avgpool", 1)
    return b.build(resolution, source="SqueezeNet v1.1 (forresti/SqueezeNet)")
