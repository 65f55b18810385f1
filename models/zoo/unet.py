"""U-Net (Ronneberger et al. 2015, Fig. 1): unpadded 3x3 convolutions, 2x2 max-pools,
2x2 up-convolutions and crop-and-copy skips; 1 input channel, 2 classes, 572x572 input.

A 2x2 stride-2 up-convolution touches every output pixel exactly once, so it is the 1x1
convolution ``C_in -> 4*C_out`` on the coarse grid followed by a pixel shuffle: that is the
layer recorded (same MACs, weights, inputs and outputs).
"""
from __future__ import annotations

from ..errors import WorkloadError
from ..network import Network
from ._builder import NetBuilder

DEFAULT_RESOLUTION = 572
_WIDTHS = (64, 128, 256, 512)


def valid_resolution(resolution: int) -> bool:
    """Sizes for which every 2x2 pool sees an even map and the output is non-empty: 16*m + 124, m >= 4."""
    return resolution >= 188 and (resolution - 124) % 16 == 0


def unet(resolution: int = DEFAULT_RESOLUTION, batch: int = 1, in_channels: int = 1,
         num_classes: int = 2) -> Network:
    if not valid_resolution(resolution):
        lo = max(188, 124 + 16 * ((resolution - 124) // 16))
        raise WorkloadError(f"unet: input size {resolution} does not tile (unpadded convs, 2x2 pools); "
                            f"use 16*m+124 such as {lo} or {lo + 16} (paper: 572)")
    b = NetBuilder("unet", in_channels, resolution, batch)

    def double_conv(prefix: str, width: int) -> None:
        b.conv(f"{prefix}.conv1", width, 3, padding=0, bias=True)
        b.conv(f"{prefix}.conv2", width, 3, padding=0, bias=True)

    skips = []
    for i, width in enumerate(_WIDTHS, start=1):
        double_conv(f"down{i}", width)
        skips.append(b.state())
        b.pool(f"down{i}.pool", 2)
    double_conv("bottom", 2 * _WIDTHS[-1])
    for i, width in reversed(list(enumerate(_WIDTHS, start=1))):
        b.conv(f"up{i}.upconv", 4 * width, 1, bias=True)
        b.c, b.h, b.w = width, 2 * b.h, 2 * b.w
        skip_c = skips[i - 1][0]
        crop = b.batch * skip_c * b.h * b.w
        b.op(f"up{i}.concat", "concat", crop + b.elems, crop + b.elems, inputs=(b.src, skips[i - 1][3]))
        b.c += skip_c
        double_conv(f"up{i}", width)
    b.conv("head", num_classes, 1, bias=True)
    return b.build(resolution, source="Ronneberger et al. 2015, Fig. 1")
