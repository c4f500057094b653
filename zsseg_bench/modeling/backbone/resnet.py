"""torchvision's ResNet as a feature extractor (``res2..res5``): :class:`ResNetBackbone`.

Built from torchvision's ``BasicBlock`` / ``Bottleneck`` with the parameter names of
``torchvision.models.ResNet`` (``conv1, bn1, layer1..layer4``), so a torchvision ImageNet state
dict loads as is. ``width`` scales every stage (64 = torchvision's ResNet); a reduced width is
for the toy world, where no pretrained weights exist anyway. Keyword arguments only; a method
builds it from its config keys with :func:`~zsseg_bench.modeling.backbone.build_backbone`.
"""

from __future__ import annotations

import logging
import os
import pickle

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops.misc import FrozenBatchNorm2d

from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.state_dict import state_dict_mismatch

from .detectron2_resnet import renormalization

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

    def __init__(self, *, depth: int, width: int = 64, norm: str = "BN", weights: str = "",
                 random_init: bool = False, renormalize: bool = False,
                 input_mean: list[float] | None = None, input_std: list[float] | None = None,
                 pixel_mean: list[float] | None = None, pixel_std: list[float] | None = None,
                 prefix: str = "BACKBONE"):
        """
        Args:
            depth: 18, 34, 50 or 101.
            width: channels of the stem and of the first stage (64 = torchvision).
            norm: "BN" or "FrozenBN".
            weights: local torchvision state dict; empty only with ``random_init``.
            random_init: keep the random initialisation (``weights`` is then not read).
            renormalize: map inputs normalised with ``input_mean/std`` to ``pixel_mean/std``
                (all 0-255 scale) before the stem (ImageNet weights expect their own statistics).
            prefix: the config node of these arguments (``MODEL.<METHOD>.BACKBONE``), named by
                the errors (``<prefix>.DEPTH``, ``<prefix>.WEIGHTS``, ...).
        """
        super().__init__()
        self.prefix = prefix
        if depth not in _STAGES:
            raise UserError(f"{prefix}.DEPTH = {depth} is not one of "
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
            raise UserError(f"{prefix}.WEIGHTS is empty: give a local torchvision ResNet state "
                            f"dict, or set {prefix}.RANDOM_INIT True (speed runs, toy world)")
        self.renormalize = renormalize
        if renormalize:
            scale, shift = renormalization(input_mean, input_std, pixel_mean, pixel_std)
            self.register_buffer("in_scale", scale, persistent=False)
            self.register_buffer("in_shift", shift, persistent=False)

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
        key = f"{self.prefix}.WEIGHTS"
        if not os.path.isfile(path):
            raise UserError(f"{key}: file not found: {path} (weights are never downloaded; or "
                            f"set {self.prefix}.RANDOM_INIT True and WEIGHTS '')")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
            raise UserError(f"{key}: cannot read {path}: "
                            f"{str(e).splitlines()[0]} (expected a torchvision ResNet "
                            "state dict saved with torch.save)") from e
        state = state.get("state_dict", state) if isinstance(state, dict) else None
        if not isinstance(state, dict):
            raise UserError(f"{key}: {path} holds no state dict "
                            "(expected a torchvision ResNet state dict saved with torch.save)")
        state = {k.removeprefix("module."): v for k, v in state.items()
                 if not k.startswith(("fc.", "module.fc."))}
        what = (f"{key} {path} does not match a ResNet-{self.depth} of width "
                f"{self.conv1.out_channels} (check {self.prefix}.DEPTH / WIDTH)")
        target = self.state_dict()
        # BN step counters: optional in the file, and FrozenBN has none.
        state = {k: v for k, v in state.items()
                 if k in target or not k.endswith("num_batches_tracked")}
        required = [k for k in target if not k.endswith("num_batches_tracked")]
        problems = state_dict_mismatch(state, target, required=required)
        if problems:
            raise UserError(f"{what}: {problems}")
        self.load_state_dict(state, strict=False)
        logger.info("%s: loaded %s", self.prefix, path)

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

