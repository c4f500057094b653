"""The two-stage head's own modules built from ``MODEL.TWO_STAGE.*``: the one place that reads
their keys (the modules take keyword arguments only; the shared blocks are built from their
fragments' prefixes, ``config.py``)."""

from __future__ import annotations

from typing import Any

from .clip_classifier import CropClassifier
from .transformer_decoder import QueryDecoder, build_query_decoder


def build_decoder(cfg: Any, res5_channels: int, embed_dim: int) -> QueryDecoder:
    """The query decoder of ``MODEL.TWO_STAGE.DECODER`` over a backbone whose ``res5`` has
    ``res5_channels`` and the pixel decoder of ``MODEL.TWO_STAGE.PIXEL_DECODER``."""
    d, p = cfg.MODEL.TWO_STAGE.DECODER, cfg.MODEL.TWO_STAGE.PIXEL_DECODER
    return build_query_decoder(
        d.NAME, res5_channels=res5_channels, conv_dim=p.CONV_DIM, mask_dim=p.MASK_DIM,
        embed_dim=embed_dim, num_queries=d.NUM_QUERIES, hidden_dim=d.HIDDEN_DIM,
        nheads=d.NHEADS, dim_feedforward=d.DIM_FEEDFORWARD, num_layers=d.LAYERS,
        dropout=d.DROPOUT, pre_norm=d.PRE_NORM, embed_layers=d.EMBED_LAYERS,
        embed_hidden_dim=d.EMBED_HIDDEN_DIM)


def build_crop_classifier(cfg: Any) -> CropClassifier:
    """The CLIP crop classifier of ``MODEL.TWO_STAGE.CLIP_ENSEMBLE`` (images normalised with
    ``MODEL.PIXEL_MEAN/STD``)."""
    e = cfg.MODEL.TWO_STAGE.CLIP_ENSEMBLE
    return CropClassifier(mask_threshold=e.MASK_THRESHOLD, crop=e.CROP, mode=e.MODE, size=e.SIZE,
                          temperature=e.TEMPERATURE, square_box=e.SQUARE_BOX, cut=e.CUT,
                          expand_ratio=e.MASK_EXPAND_RATIO, input_mean=list(cfg.MODEL.PIXEL_MEAN),
                          input_std=list(cfg.MODEL.PIXEL_STD))
