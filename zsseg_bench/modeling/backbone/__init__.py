"""The learnable image encoders' backbones (``images -> {"res2": ..., "res5": ...}``):
torchvision's ResNet and detectron2's (zsseg's R-101c), with their config fragment."""

from zsseg_bench.modeling.backbone.build import (
    add_backbone_config,
    backbone_choices,
    build_backbone,
)
from zsseg_bench.modeling.backbone.detectron2_resnet import Detectron2ResNet
from zsseg_bench.modeling.backbone.resnet import ResNetBackbone

__all__ = ["Detectron2ResNet", "ResNetBackbone", "add_backbone_config", "backbone_choices",
           "build_backbone"]
