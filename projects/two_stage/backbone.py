"""The proposal network's own backbone (``res2..res5``): :func:`build_backbone` picks
detectron2's ResNet layout (zsseg's R-101c, :mod:`.detectron2_resnet`) or torchvision's
(:class:`ResNetBackbone`, the toy world's width-reduced ResNet-18) by
``MODEL.TWO_STAGE.BACKBONE.NAME``.

:class:`ResNetBackbone` is built from torchvision's ``BasicBlock`` / ``Bottleneck`` with the
parameter names of ``torchvision.models.ResNet`` (``conv1, bn1, layer1..layer4``), so a
torchvision ImageNet state dict loads as is. ``width`` scales every stage (64 = torchvision's
ResNet); a reduced width is for the toy world, where no pretrained weights exist anyway.
"""

from __future__ import annotations

import logging
import os
import pickle
from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops.misc import FrozenBatchNorm2d

from zsseg_bench.config import configurable
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.state_dict import state_dict_mismatch

from .detectron2_resnet import Detectron2ResNet, renormalization

logger = logging.getLogger(__name__)

#: Blocks per stage of the torchvision ResNets (He et al. 2016, Table 1).
_STAGES = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
           50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3))}
FEATURE_NAMES = ("res2", "res3", "res4", "res5")
FEATURE_STRIDES = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}


class ResNetBackbone(nn.Module):
    """ResNet feature extractor: ``forward(images) -> {"res2": ..., "res5": ...}``.

    Attributes:
        out_channels: channels of each output feature, by name.
    """

    @configurable
    def __init__(self, *, depth: int, width: int = 64, norm: str = "BN", weights: str = "",
                 random_init: bool = False, renormalize: bool = False,
                 input_mean: list[float] | None = None, input_std: list[float] | None = None,
                 pixel_mean: list[float] | None = None, pixel_std: list[float] | None = None):
        """
        Args:
            depth: 18, 34, 50 or 101.
            width: channels of the stem and of the first stage (64 = torchvision).
            norm: "BN" or "FrozenBN".
            weights: local torchvision state dict; empty only with ``random_init``.
            random_init: keep the random initialisation (``weights`` is then not read).
            renormalize: map inputs normalised with ``input_mean/std`` to ``pixel_mean/std``
                (all 0-255 scale) before the stem (ImageNet weights expect their own statistics).
        """
        super().__init__()
        if depth not in _STAGES:
            raise UserError(f"MODEL.TWO_STAGE.BACKBONE.DEPTH = {depth} is not one of "
                            f"{', '.join(map(str, _STAGES))}")
        self.depth = depth
        block, layers = _STAGES[depth]
        norm_layer = FrozenBatchNorm2d if norm == "FrozenBN" else nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.out_channels = {f"res{i + 2}": width * 2 ** i * block.expansion for i in range(4)}
        self._init_weights()
        if weights and not random_init:
            self.load_weights(weights)
        elif not random_init:
            raise UserError("MODEL.TWO_STAGE.BACKBONE.WEIGHTS is empty: give a local torchvision "
                            "ResNet state dict, or set MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT True "
                            "(speed runs, toy world)")
        self.renormalize = renormalize
        if renormalize:
            scale, shift = renormalization(input_mean, input_std, pixel_mean, pixel_std)
            self.register_buffer("in_scale", scale, persistent=False)
            self.register_buffer("in_shift", shift, persistent=False)

    @classmethod
    def from_config(cls, cfg: Any) -> dict[str, Any]:
        b = cfg.MODEL.TWO_STAGE.BACKBONE
        return {"depth": b.DEPTH, "width": b.WIDTH, "norm": b.NORM, "weights": b.WEIGHTS,
                "random_init": b.RANDOM_INIT, "renormalize": b.RENORMALIZE,
                "input_mean": list(cfg.MODEL.PIXEL_MEAN), "input_std": list(cfg.MODEL.PIXEL_STD),
                "pixel_mean": list(b.PIXEL_MEAN), "pixel_std": list(b.PIXEL_STD)}

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int,
                    stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                self._norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, norm_layer=self._norm_layer)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, norm_layer=self._norm_layer)
                   for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # torchvision ResNet's initialisation (kaiming normal fan_out, BN weight 1 bias 0).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def load_weights(self, path: str) -> None:
        """Loads a local torchvision ResNet state dict (the ``fc`` layer is dropped)."""
        if not os.path.isfile(path):
            raise UserError(f"MODEL.TWO_STAGE.BACKBONE.WEIGHTS: file not found: {path} (weights "
                            "are never downloaded; or set MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT "
                            "True and WEIGHTS '')")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
            raise UserError(f"MODEL.TWO_STAGE.BACKBONE.WEIGHTS: cannot read {path}: "
                            f"{str(e).splitlines()[0]} (expected a torchvision ResNet "
                            "state dict saved with torch.save)") from e
        state = state.get("state_dict", state) if isinstance(state, dict) else None
        if not isinstance(state, dict):
            raise UserError(f"MODEL.TWO_STAGE.BACKBONE.WEIGHTS: {path} holds no state dict "
                            "(expected a torchvision ResNet state dict saved with torch.save)")
        state = {k.removeprefix("module."): v for k, v in state.items()
                 if not k.startswith(("fc.", "module.fc."))}
        what = (f"MODEL.TWO_STAGE.BACKBONE.WEIGHTS {path} does not match a ResNet-"
                f"{self.depth} of width {self.conv1.out_channels} (check "
                "MODEL.TWO_STAGE.BACKBONE.DEPTH / WIDTH)")
        target = self.state_dict()
        # BN step counters: optional in the file, and FrozenBN has none.
        state = {k: v for k, v in state.items()
                 if k in target or not k.endswith("num_batches_tracked")}
        required = [k for k in target if not k.endswith("num_batches_tracked")]
        problems = state_dict_mismatch(state, target, required=required)
        if problems:
            raise UserError(f"{what}: {problems}")
        self.load_state_dict(state, strict=False)
        logger.info("two-stage backbone: loaded %s", path)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images``: B x 3 x H x W (normalised with MODEL.PIXEL_MEAN/STD)."""
        x = images * self.in_scale + self.in_shift if self.renormalize else images
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = {}
        for name, layer in zip(FEATURE_NAMES, (self.layer1, self.layer2, self.layer3,
                                               self.layer4)):
            x = layer(x)
            out[name] = x
        return out


def build_backbone(cfg: Any) -> nn.Module:
    """The backbone of ``MODEL.TWO_STAGE.BACKBONE`` (``NAME``: ``detectron2`` or
    ``torchvision``), its weights loaded from ``WEIGHTS`` (an empty one needs ``RANDOM_INIT``)."""
    b = cfg.MODEL.TWO_STAGE.BACKBONE
    if b.NAME == "torchvision":
        return ResNetBackbone(cfg)
    renormalize = ((list(cfg.MODEL.PIXEL_MEAN), list(cfg.MODEL.PIXEL_STD), list(b.PIXEL_MEAN),
                    list(b.PIXEL_STD)) if b.RENORMALIZE else None)
    backbone = Detectron2ResNet(
        depth=b.DEPTH, stem_type=b.STEM_TYPE, stem_out_channels=b.STEM_OUT_CHANNELS,
        stride_in_1x1=b.STRIDE_IN_1X1, res5_dilation=b.RES5_DILATION,
        res5_multi_grid=list(b.RES5_MULTI_GRID), norm=b.NORM, renormalize=renormalize)
    if b.WEIGHTS and not b.RANDOM_INIT:
        backbone.load_weights(b.WEIGHTS)
    elif not b.RANDOM_INIT:
        raise UserError("MODEL.TWO_STAGE.BACKBONE.WEIGHTS is empty: give a local detectron2 "
                        "ResNet file (zsseg: detectron2's DeepLab/R-103.pkl), or set "
                        "MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT True (speed runs)")
    return backbone
