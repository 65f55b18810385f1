"""The layers every peer comparison runs: stems, 3x3, 1x1, strided, depthwise, FC and
transformer matmuls, at batch 1 and larger. One list, so every peer sees the same layers."""
from __future__ import annotations

from models.layer import Layer


def peer_layers() -> list[Layer]:
    """ResNet-18 / MobileNetV2 / BERT-base layers (224x224 inputs, BERT sequence 128)."""
    return [
        # ResNet-18
        Layer.conv("r18.conv1", 3, 64, 112, 7, stride=2),
        Layer.conv("r18.layer1.conv", 64, 64, 56, 3),
        Layer.conv("r18.layer2.0.conv1", 64, 128, 28, 3, stride=2),
        Layer.conv("r18.layer2.0.downsample", 64, 128, 28, 1, stride=2),
        Layer.conv("r18.layer3.conv", 256, 256, 14, 3),
        Layer.conv("r18.layer4.conv", 512, 512, 7, 3),
        Layer.fc("r18.fc", 512, 1000),
        # MobileNetV2
        Layer.conv("mbv2.stem", 3, 32, 112, 3, stride=2),
        Layer.conv("mbv2.dw112", 32, 32, 112, 3, groups=32),
        Layer.conv("mbv2.dw56.s2", 144, 144, 28, 3, stride=2, groups=144),
        Layer.conv("mbv2.pw.expand14", 96, 576, 14, 1),
        Layer.conv("mbv2.pw.project7", 960, 320, 7, 1),
        # BERT-base (sequence 128): projections are FC over 128 tokens, attention is matmul
        Layer.fc("bert.qkv", 768, 768, batch=128),
        Layer.fc("bert.ffn1", 768, 3072, batch=128),
        Layer.matmul("bert.scores", 128, 64, 128),
        # batch > 1
        Layer.conv("r18.layer3.conv.b4", 256, 256, 14, 3, batch=4),
        Layer.conv("mbv2.pw.expand14.b4", 96, 576, 14, 1, batch=4),
        Layer.fc("r18.fc.b16", 512, 1000, batch=16),
    ]
