"""Inverted-residual networks: MobileNetV2, MobileNetV3-Large and MnasNet-B1 1.0.

Stage tables come from the papers; module names follow torchvision so that an imported
torchvision model and the zoo network name their layers alike.
"""
from __future__ import annotations

from ..network import Network
from ._builder import NetBuilder, make_divisible

# MobileNetV2 (Sandler et al. 2018, Table 2): expansion t, channels c, repeats n, first stride s.
_MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
         (6, 320, 1, 1))


def mobilenet_v2(resolution: int = 224, batch: int = 1) -> Network:
    b = NetBuilder("mobilenet_v2", 3, resolution, batch)
    b.conv("features.0.0", 32, 3, stride=2)
    idx = 1
    for t, c, n, s in _MBV2:
        for i in range(n):
            p = f"features.{idx}.conv"
            entry, stride = b.state(), (s if i == 0 else 1)
            sub = 0
            if t != 1:
                b.conv(f"{p}.0.0", entry[0] * t, 1)
                sub = 1
            b.dwconv(f"{p}.{sub}.0", 3, stride=stride)
            b.conv(f"{p}.{sub + 1}", c, 1)
            if stride == 1 and entry[0] == c:
                b.add(f"features.{idx}.add", entry)
            idx += 1
    b.conv(f"features.{idx}.0", 1280, 1)
    b.adaptive_pool("avgpool", 1)
    b.fc("classifier.1", 1000)
    return b.build(resolution, source="Sandler et al. 2018, Table 2")


# MobileNetV3-Large (Howard et al. 2019, Table 1): kernel, expanded size, output, SE, stride.
_MBV3_LARGE = ((3, 16, 16, False, 1), (3, 64, 24, False, 2), (3, 72, 24, False, 1),
               (5, 72, 40, True, 2), (5, 120, 40, True, 1), (5, 120, 40, True, 1),
               (3, 240, 80, False, 2), (3, 200, 80, False, 1), (3, 184, 80, False, 1),
               (3, 184, 80, False, 1), (3, 480, 112, True, 1), (3, 672, 112, True, 1),
               (5, 672, 160, True, 2), (5, 960, 160, True, 1), (5, 960, 160, True, 1))


def mobilenet_v3_large(resolution: int = 224, batch: int = 1) -> Network:
    b = NetBuilder("mobilenet_v3_large", 3, resolution, batch)
    b.conv("features.0.0", 16, 3, stride=2)
    for idx, (k, exp, out, se, stride) in enumerate(_MBV3_LARGE, start=1):
        p = f"features.{idx}.block"
        entry, sub = b.state(), 0
        if exp != entry[0]:
            b.conv(f"{p}.0.0", exp, 1)
            sub = 1
        b.dwconv(f"{p}.{sub}.0", k, stride=stride)
        if se:
            sub += 1
            # SE bottleneck is a quarter of the expanded width, rounded to a multiple of 8.
            b.se(f"{p}.{sub}", make_divisible(exp / 4, 8))
        b.conv(f"{p}.{sub + 1}.0", out, 1)
        if stride == 1 and entry[0] == out:
            b.add(f"features.{idx}.add", entry)
    b.conv(f"features.{len(_MBV3_LARGE) + 1}.0", 960, 1)
    b.adaptive_pool("avgpool", 1)
    b.fc("classifier.0", 1280)
    b.fc("classifier.3", 1000)
    return b.build(resolution, source="Howard et al. 2019, Table 1")


# MnasNet-B1 at depth multiplier 1.0 (Tan et al. 2019, the searched model without SE):
# (out channels, kernel, first stride, expansion, repeats) per stage after the stem.
_MNASNET_B1 = ((24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2),
               (192, 5, 2, 6, 4), (320, 3, 1, 6, 1))


def mnasnet1_0(resolution: int = 224, batch: int = 1) -> Network:
    b = NetBuilder("mnasnet1_0", 3, resolution, batch)
    b.conv("layers.0", 32, 3, stride=2)
    b.dwconv("layers.3", 3)
    b.conv("layers.6", 16, 1)
    for idx, (out, k, s, e, n) in enumerate(_MNASNET_B1, start=8):
        for i in range(n):
            p = f"layers.{idx}.{i}"
            entry, stride = b.state(), (s if i == 0 else 1)
            b.conv(f"{p}.layers.0", entry[0] * e, 1)
            b.dwconv(f"{p}.layers.3", k, stride=stride)
            b.conv(f"{p}.layers.6", out, 1)
            if stride == 1 and entry[0] == out:
                b.add(f"{p}.add", entry)
    b.conv("layers.14", 1280, 1)
    b.adaptive_pool("avgpool", 1)
    b.fc("classifier.1", 1000)
    return b.build(resolution, source="Tan et al. 2019, MnasNet-B1 (depth multiplier 1.0)")
