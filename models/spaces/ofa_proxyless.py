"""The OFA ProxylessNAS search space (``ofa_proxyless_d234_e346_k357_w1.3``) as a layer generator.

Structure at width multiplier 1.3 (``make_divisible(c * 1.3, 8)``): first conv 3x3/2
(40 channels, ReLU6); a fixed first block (depthwise 3x3, no expansion, 40 -> 24, no
shortcut); five elastic stages of up to four MBConv blocks with widths 32, 56, 104, 128,
248 and first-block strides 2, 2, 2, 1, 2; one more elastic block 248 -> 416 (stride 1,
always built); feature mix 1x1 (1664, ReLU6), global pool, classifier. No
squeeze-and-excitation, ReLU6 everywhere.

An architecture is ``{"ks": [21], "e": [21], "d": [5], "r": int}``: the 20 stage slots as
in the OFA MobileNetV3 space plus the last block's kernel size and expand ratio (OFA's own
arch dicts carry a sixth depth entry that is always 1; it is left out here). Resolutions and
the feature encoding (126 one-hot kernel / expand values, 8 resolution bins) follow the
MobileNetV3 space; there is no published accuracy predictor for this space.
"""
from __future__ import annotations

from .ofa_mbv3 import ElasticMBConvSpace, mb_block_config, conv_layer_config


class OfaProxylessSpace(ElasticMBConvSpace):
    """OFA ProxylessNAS (width 1.3)."""

    n_tail = 1
    config_name = "ProxylessNASNets"
    bn_eps = 1e-3
    BASE_WIDTHS = (24, 40, 80, 96, 192)
    STRIDES = (2, 2, 2, 1, 2)
    TAIL = ((320, 1),)

    def __init__(self, width_mult: float = 1.3, name: str | None = None):
        super().__init__(name or f"ofa-proxyless-w{width_mult:g}", width_mult)

    def stem(self):
        c0, c1 = self.width(32), self.width(16)
        return conv_layer_config(3, c0, 3, 2, "relu6"), mb_block_config(c0, c1, 3, 1, 1, "relu6", False), c1

    def stages(self):
        body = [(self.width(w), s, "relu6", False) for w, s in zip(self.BASE_WIDTHS, self.STRIDES)]
        return body + [(self.width(w), s, "relu6", False) for w, s in self.TAIL]

    def head(self, c_in):
        last = self.width(1280) if self.width_mult > 1.0 else 1280
        return {"feature_mix_layer": conv_layer_config(c_in, last, 1, 1, "relu6"),
                "classifier": {"name": "LinearLayer", "in_features": last, "out_features": 1000, "bias": True,
                               "use_bn": False, "act_func": None, "dropout_rate": 0.1,
                               "ops_order": "weight_bn_act"}}
