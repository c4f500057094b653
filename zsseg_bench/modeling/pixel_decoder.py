"""FPN-style pixel decoder (MaskFormer's ``BasePixelDecoder``): per-pixel mask features.

Top-down over ``res5 .. res2``: ``res5`` goes through a 3x3 conv; every finer level adds a 1x1
lateral projection to the upsampled coarser output and applies a 3x3 conv. A last 3x3 conv on
the stride-4 output gives the mask features (``mask_dim`` channels). The coarser outputs
(strides 32, 16, 8) are the multi-scale memory of the Mask2Former-style decoder.

Keyword arguments only; :func:`add_pixel_decoder_config` mounts its keys below a prefix the
method chooses (``MODEL.TWO_STAGE.PIXEL_DECODER``) and :func:`build_pixel_decoder` reads them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.modeling.config_fragment import mount, node_at


def _conv_norm_relu(cin: int, cout: int, kernel: int, groups: int,
                    relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                               nn.GroupNorm(groups, cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FPNPixelDecoder(nn.Module):
    """``forward(features) -> (mask_features, multi_scale)``.

    ``mask_features``: B x mask_dim x H/4 x W/4. ``multi_scale``: the decoder outputs at strides
    32, 16 and 8 (coarse to fine), each B x conv_dim x h x w.
    """

    def __init__(self, *, in_channels: dict[str, int], conv_dim: int, mask_dim: int,
                 norm_groups: int):
        super().__init__()
        self.in_features = sorted(in_channels, key=lambda k: int(k[3:]))  # res2 .. res5
        groups = min(norm_groups, conv_dim)
        self.lateral = nn.ModuleDict()
        self.output = nn.ModuleDict()
        for name in self.in_features:
            if name == self.in_features[-1]:
                self.output[name] = _conv_norm_relu(in_channels[name], conv_dim, 3, groups)
            else:
                self.lateral[name] = _conv_norm_relu(in_channels[name], conv_dim, 1, groups,
                                                     relu=False)
                self.output[name] = _conv_norm_relu(conv_dim, conv_dim, 3, groups)
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, 3, padding=1)
        self.conv_dim = conv_dim
        self.mask_dim = mask_dim
        for m in self.modules():  # c2_xavier_fill, as detectron2's FPN
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, features: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        multi_scale: list[torch.Tensor] = []
        y = None
        for name in reversed(self.in_features):
            x = features[name]
            if y is None:
                y = self.output[name](x)
            else:
                y = self.lateral[name](x) + F.interpolate(y, size=x.shape[-2:], mode="nearest")
                y = self.output[name](y)
            if name != self.in_features[0]:
                multi_scale.append(y)
        return self.mask_features(y), multi_scale


def add_pixel_decoder_config(cfg: Any, prefix: str) -> None:
    """Adds the pixel decoder's keys below ``prefix`` (in place; nothing if the node exists)."""
    p, created = mount(cfg, prefix)
    if not created:
        return
    # MaskFormer SEM_SEG_HEAD.CONVS_DIM = 256, MASK_DIM = 256 (BasePixelDecoder; facebookresearch/
    # MaskFormer configs/ade20k-150/maskformer_R50_bs16_160k.yaml and mask_former/config.py).
    p.CONV_DIM = 256
    p.MASK_DIM = 256
    # GroupNorm groups of the FPN convs (MaskFormer SEM_SEG_HEAD.NORM = "GN", detectron2 32 groups).
    p.NORM_GROUPS = 32


def build_pixel_decoder(cfg: Any, prefix: str, in_channels: dict[str, int]) -> FPNPixelDecoder:
    """The pixel decoder of the keys below ``prefix`` over features of ``in_channels``."""
    p = node_at(cfg, prefix)
    return FPNPixelDecoder(in_channels=in_channels, conv_dim=p.CONV_DIM, mask_dim=p.MASK_DIM,
                           norm_groups=p.NORM_GROUPS)
