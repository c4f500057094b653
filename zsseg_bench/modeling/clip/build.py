"""``build_clip(cfg)``: the CLIP layer from ``cfg.MODEL.CLIP``."""

from __future__ import annotations

import logging
from typing import Any

import open_clip

from .loading import build_open_clip, describe
from .model import CLIPModel

logger = logging.getLogger(__name__)


def build_clip(cfg: Any) -> CLIPModel:
    """Build the frozen CLIP layer described by ``cfg.MODEL.CLIP``.

    Keys: ``NAME`` (open_clip architecture or shipped config, e.g. ``ViT-B-16``,
    ``ToyCLIP-ViT-P8``), ``WEIGHTS`` (local checkpoint; ``zsseg_bench://`` paths allowed),
    ``RANDOM_INIT`` (random weights, speed runs only), ``QUICK_GELU``,
    ``POS_EMBED_INTERPOLATION`` and ``DOUBLE_CLS_EMBEDDING`` (see :class:`CLIPModel`).

    Raises:
        UserError: unknown architecture, missing/unreadable/mismatched weights, or neither
            weights nor random init given.
    """
    c = cfg.MODEL.CLIP
    quick_gelu = bool(c.get("QUICK_GELU", False))
    model = build_open_clip(c.NAME, c.WEIGHTS, bool(c.RANDOM_INIT), quick_gelu)
    tokenizer = open_clip.get_tokenizer(c.NAME)
    clip = CLIPModel(model, tokenizer, name=c.NAME,
                     weights="" if c.RANDOM_INIT else c.WEIGHTS, frozen=True,
                     pos_interpolation=str(c.POS_EMBED_INTERPOLATION),
                     double_cls_embedding=bool(c.DOUBLE_CLS_EMBEDDING))
    logger.info("CLIP %s (%s): %s, weights %s", c.NAME, describe(model),
                f"patch {clip.patch_size}, grid {clip.grid_size}",
                "random init" if c.RANDOM_INIT else c.WEIGHTS)
    return clip
