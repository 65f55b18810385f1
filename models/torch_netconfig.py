"""OFA / ProxylessNAS ``net.config`` -> ``torch.nn.Module`` with random weights.

The module mirrors the structure the config describes, block for block: convolutions with
same padding, batch norms, the activations named in the config (``relu``, ``relu6``,
``h_swish``), squeeze-and-excitation (1x1 convs with bias, ReLU, hard sigmoid), identity
shortcuts, the MobileNetV3 head (final expand, global pool, feature mix on the pooled map)
or the ProxylessNAS head (feature mix, global pool), and the classifier. It exists to
measure real latency of a sub-network; the weights are random and the module is in eval
mode. Structure errors are the ones ``models.netconfig`` reports (the config is validated
by building its ``Network`` first).
"""
from __future__ import annotations

from .errors import WorkloadError
from .torch_builder import lazy_classes
from .netconfig import SE_REDUCTION, mbconv_mid_channels, network_from_net_config
from .zoo._builder import make_divisible


def _nn():
    import torch.nn as nn
    return nn


def _activation(name):
    nn = _nn()
    acts = {None: nn.Identity, "relu": nn.ReLU, "relu6": nn.ReLU6, "h_swish": nn.Hardswish,
            "h_sigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    if name not in acts:
        raise WorkloadError(f"net.config: unsupported activation {name!r} (supported: "
                            f"{', '.join(str(k) for k in acts if k)})")
    return acts[name]()


def _conv_bn_act(c_in, c_out, k, stride=1, groups=1, dilation=1, bias=False, bn=True, act=None):
    nn = _nn()
    mods = [nn.Conv2d(c_in, c_out, k, stride, dilation * (k // 2), dilation=dilation, groups=groups, bias=bias)]
    if bn:
        mods.append(nn.BatchNorm2d(c_out))
    mods.append(_activation(act))
    return nn.Sequential(*mods)


def _conv_layer(cfg: dict):
    if cfg.get("ops_order", "weight_bn_act") != "weight_bn_act":
        raise WorkloadError(f"net.config: ConvLayer ops_order {cfg.get('ops_order')!r} is not supported")
    in_ch = cfg["in_channels"]
    in_ch = in_ch[0] if isinstance(in_ch, list) else in_ch
    return _conv_bn_act(in_ch, cfg["out_channels"], cfg["kernel_size"], cfg.get("stride", 1),
                        cfg.get("groups", 1), cfg.get("dilation", 1), bool(cfg.get("bias", False)),
                        bool(cfg.get("use_bn", True)), cfg.get("act_func"))


def _module_classes():
    import torch
    nn = _nn()

    class SqueezeExcite(nn.Module):
        """Global pool, 1x1 reduce (bias) + ReLU, 1x1 expand (bias) + hard sigmoid, scale."""

        def __init__(self, channels: int):
            super().__init__()
            mid = make_divisible(channels // SE_REDUCTION, 8)
            self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
            self.act = nn.ReLU()
            self.expand = nn.Conv2d(mid, channels, 1, bias=True)
            self.gate = nn.Hardsigmoid()

        def forward(self, x):
            y = x.mean((2, 3), keepdim=True)
            return x * self.gate(self.expand(self.act(self.reduce(y))))

    class MBConv(nn.Module):
        def __init__(self, cfg: dict):
            super().__init__()
            c_in, c_out, k = cfg["in_channels"], cfg["out_channels"], cfg["kernel_size"]
            mid = mbconv_mid_channels(cfg)
            act = cfg.get("act_func", "relu6")
            self.expand = None if cfg.get("expand_ratio") == 1 else _conv_bn_act(c_in, mid, 1, act=act)
            self.depthwise = _conv_bn_act(mid, mid, k, cfg.get("stride", 1), groups=mid, act=act)
            self.se = SqueezeExcite(mid) if cfg.get("use_se") else None
            self.project = _conv_bn_act(mid, c_out, 1, act=None)

        def forward(self, x):
            if self.expand is not None:
                x = self.expand(x)
            x = self.depthwise(x)
            if self.se is not None:
                x = self.se(x)
            return self.project(x)

    class Block(nn.Module):
        """``conv(x) [+ x]``; a block without a conv passes its input through."""

        def __init__(self, conv, residual: bool):
            super().__init__()
            self.conv = conv
            self.residual = residual

        def forward(self, x):
            if self.conv is None:
                return x
            y = self.conv(x)
            return y + x if self.residual else y

    class NetConfigNet(nn.Module):
        def __init__(self, cfg: dict):
            super().__init__()
            self.first_conv = _conv_layer(cfg["first_conv"])
            blocks = []
            for b in cfg["blocks"]:
                conv_cfg = b.get("mobile_inverted_conv", b.get("conv"))
                kind = None if conv_cfg is None else conv_cfg.get("name")
                sc = b.get("shortcut")
                residual = sc is not None and sc.get("name") == "IdentityLayer"
                if kind in (None, "ZeroLayer"):
                    conv = None
                elif kind == "ConvLayer":
                    conv = _conv_layer(conv_cfg)
                else:
                    conv = MBConv(conv_cfg)
                blocks.append(Block(conv, residual))
            self.blocks = nn.ModuleList(blocks)
            fe = cfg.get("final_expand_layer")
            mix = cfg.get("feature_mix_layer")
            self.final_expand_layer = _conv_layer(fe) if fe is not None else None
            self.feature_mix_layer = _conv_layer(mix) if mix is not None else None
            cl = cfg["classifier"]
            self.dropout = nn.Dropout(cl.get("dropout_rate", 0) or 0)
            self.classifier = nn.Linear(cl["in_features"], cl["out_features"], bias=bool(cl.get("bias", True)))

        def forward(self, x):
            x = self.first_conv(x)
            for block in self.blocks:
                x = block(x)
            if self.final_expand_layer is not None:
                x = self.final_expand_layer(x)
                x = x.mean((2, 3), keepdim=True)
                if self.feature_mix_layer is not None:
                    x = self.feature_mix_layer(x)
            else:
                if self.feature_mix_layer is not None:
                    x = self.feature_mix_layer(x)
                x = x.mean((2, 3), keepdim=True)
            x = torch.flatten(x, 1)
            return self.classifier(self.dropout(x))

    return {"SqueezeExcite": SqueezeExcite, "MBConv": MBConv, "Block": Block, "NetConfigNet": NetConfigNet}


__getattr__ = lazy_classes(__name__, ("SqueezeExcite", "MBConv", "Block", "NetConfigNet"), _module_classes)


def build_from_net_config(cfg: dict):
    """A ``torch.nn.Module`` (eval mode, random weights) with the structure of ``cfg``."""
    network_from_net_config(cfg)  # validates the structure with clear errors before torch sees it
    return __getattr__("NetConfigNet")(cfg).eval()
