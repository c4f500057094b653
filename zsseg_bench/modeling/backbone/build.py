"""The backbone's config fragment: :func:`add_backbone_config` mounts its keys below a prefix
the method chooses (``MODEL.TWO_STAGE.BACKBONE``, ``MODEL.ALIGNZEG.BACKBONE``) and
:func:`build_backbone` builds the backbone from them; every error names the keys under that
prefix.

Two layouts (``<prefix>.NAME``, present when the method offers both): ``detectron2``
(:class:`~.detectron2_resnet.Detectron2ResNet`, zsseg's R-101c) and ``torchvision``
(:class:`~.resnet.ResNetBackbone`). A method that offers the torchvision layout alone has no
``NAME`` key and none of the detectron2 keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from zsseg_bench.modeling.config_fragment import mount, node_at
from zsseg_bench.utils.errors import UserError

from .detectron2_resnet import NORMS, STEM_TYPES, Detectron2ResNet
from .resnet import ResNetBackbone

#: The layouts, by ``<prefix>.NAME``.
LAYOUTS = ("detectron2", "torchvision")


def backbone_choices(prefix: str, layouts: Sequence[str] = LAYOUTS) -> dict[str, tuple[str, ...]]:
    """The fixed choices of the keys below ``prefix``, for the table of allowed values (a
    method declares them with :func:`~zsseg_bench.config.allowed.allow`)."""
    choices = {f"{prefix}.NORM": NORMS}
    if "detectron2" in layouts:
        choices = {f"{prefix}.NAME": tuple(layouts), **choices,
                   f"{prefix}.STEM_TYPE": STEM_TYPES}
    return choices


def add_backbone_config(cfg: Any, prefix: str, *, depth: int,
                        layouts: Sequence[str] = LAYOUTS) -> None:
    """Adds the backbone keys below ``prefix`` (in place; nothing if the node exists).

    Args:
        cfg: the whole config (``prefix``'s parent node must exist).
        prefix: where the keys go, e.g. ``MODEL.TWO_STAGE.BACKBONE``.
        depth: the default ``DEPTH`` (the method's, with its source at the call).
        layouts: the layouts the method offers, its default first (``NAME``, and the
            detectron2 keys, only when ``detectron2`` is one of them).
    """
    unknown = set(layouts) - set(LAYOUTS)
    if not layouts or unknown:
        raise ValueError(f"backbone layouts {list(layouts)}: each one of {LAYOUTS}")
    b, created = mount(cfg, prefix)
    if not created:
        return
    if "detectron2" in layouts:
        # "detectron2": detectron2's ResNet layout and names (zsseg / MaskFormer; its ImageNet
        # files and zsseg checkpoints load as they are; detectron2_resnet.py). "torchvision":
        # torchvision's ResNet-18/34/50/101 (optionally width-reduced; the toy world).
        b.NAME = layouts[0]
    # detectron2: 50, 101, 152; torchvision: 18, 34, 50, 101 (the method's default).
    b.DEPTH = depth
    if "detectron2" in layouts:
        # detectron2 only: zsseg's R-101c (MendelXu/zsseg.baseline @ d77c3af,
        # configs/voc-11k-15/zero_shot_maskformer_R101c_bs16_20k.yaml: MODEL.BACKBONE.NAME
        # "build_resnet_deeplab_backbone", RESNETS.STEM_TYPE "deeplab", STEM_OUT_CHANNELS 128,
        # STRIDE_IN_1X1 False, RES5_MULTI_GRID [1, 2, 4]; RES5_DILATION is detectron2's
        # default 1, so res5 keeps stride 32).
        b.STEM_TYPE = "deeplab"
        b.STEM_OUT_CHANNELS = 128
        b.STRIDE_IN_1X1 = False
        b.RES5_MULTI_GRID = [1, 2, 4]
        b.RES5_DILATION = 1
    # torchvision only: channels of the stem and of the first stage's blocks; 64 = torchvision's
    # ResNet. A smaller value gives a width-reduced ResNet (toy world only; no pretrained weights
    # exist for it).
    b.WIDTH = 64
    # Local weights, never downloaded. detectron2: its ImageNet file (zsseg's MODEL.WEIGHTS
    # "detectron2://DeepLab/R-103.pkl") or any detectron2-layout state dict; torchvision: a
    # torchvision ResNet state dict.
    b.WEIGHTS = ""
    # Random init (speed runs, or the toy world where no ImageNet weights exist): WEIGHTS is then
    # not read. An empty WEIGHTS is an error unless this is True.
    b.RANDOM_INIT = False
    # "FrozenBN" (detectron2's default MODEL.RESNETS.NORM, which zsseg keeps: its "SyncBN" line is
    # commented out) or "BN" (trainable BatchNorm).
    b.NORM = "FrozenBN"
    # Images reach the head normalised with MODEL.PIXEL_MEAN/STD (the paper configs: ImageNet's,
    # zsseg's MODEL.PIXEL_MEAN). With RENORMALIZE the backbone maps them to its own mean/std
    # below first (a config whose MODEL.PIXEL_MEAN is another method's).
    b.RENORMALIZE = False
    # torchvision / detectron2 ImageNet normalisation (0-255 scale).
    b.PIXEL_MEAN = [123.675, 116.28, 103.53]
    b.PIXEL_STD = [58.395, 57.12, 57.375]


def build_backbone(cfg: Any, prefix: str) -> nn.Module:
    """The backbone of the keys below ``prefix`` (:func:`add_backbone_config`), its weights
    loaded from ``WEIGHTS`` (an empty one needs ``RANDOM_INIT``); images reach it normalised
    with ``MODEL.PIXEL_MEAN/STD``."""
    b = node_at(cfg, prefix)
    input_mean, input_std = list(cfg.MODEL.PIXEL_MEAN), list(cfg.MODEL.PIXEL_STD)
    if b.get("NAME", "torchvision") == "torchvision":
        return ResNetBackbone(
            depth=b.DEPTH, width=b.WIDTH, norm=b.NORM, weights=b.WEIGHTS,
            random_init=b.RANDOM_INIT, renormalize=b.RENORMALIZE, input_mean=input_mean,
            input_std=input_std, pixel_mean=list(b.PIXEL_MEAN), pixel_std=list(b.PIXEL_STD),
            prefix=prefix)
    renormalize = ((input_mean, input_std, list(b.PIXEL_MEAN), list(b.PIXEL_STD))
                   if b.RENORMALIZE else None)
    backbone = Detectron2ResNet(
        depth=b.DEPTH, stem_type=b.STEM_TYPE, stem_out_channels=b.STEM_OUT_CHANNELS,
        stride_in_1x1=b.STRIDE_IN_1X1, res5_dilation=b.RES5_DILATION,
        res5_multi_grid=list(b.RES5_MULTI_GRID), norm=b.NORM, renormalize=renormalize,
        prefix=prefix)
    if b.WEIGHTS and not b.RANDOM_INIT:
        backbone.load_weights(b.WEIGHTS)
    elif not b.RANDOM_INIT:
        raise UserError(f"{prefix}.WEIGHTS is empty: give a local detectron2 ResNet file "
                        f"(zsseg: detectron2's DeepLab/R-103.pkl), or set {prefix}.RANDOM_INIT "
                        "True (speed runs)")
    return backbone
