"""A tiny SAN head (random init) on the tiny CLIP of the method tests (2 blocks, width 64, 2
heads, patch 8)."""

from __future__ import annotations

import torch

from zsseg_bench.config import get_cfg
from zsseg_bench.projects.san import SANHead, add_san_config

#: Tiny sizes: 1 CLIP block before the side network and 1 recognition block; a side ViT of
#: width 32, 2 blocks, 2 heads, patch 8, table for 64 px; 5 queries; 64 sampled points.
TINY = ["MODEL.SAN.FEATURE_LAST_LAYER_IDX", 1,
        "MODEL.SAN.SIDE_ADAPTER.PATCH_SIZE", 8, "MODEL.SAN.SIDE_ADAPTER.WIDTH", 32,
        "MODEL.SAN.SIDE_ADAPTER.DEPTH", 2, "MODEL.SAN.SIDE_ADAPTER.NUM_HEADS", 2,
        "MODEL.SAN.SIDE_ADAPTER.IMAGE_SIZE", 64, "MODEL.SAN.SIDE_ADAPTER.NUM_QUERIES", 5,
        "MODEL.SAN.SIDE_ADAPTER.FUSION_MAP", ["0->0", "1->1"],
        "MODEL.SAN.SIDE_ADAPTER.DEEP_SUPERVISION_IDXS", [1, 2],
        "MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.NUM_HEADS", 2,
        "MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.EMBED_CHANNELS", 16,
        "MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.MLP_CHANNELS", 16, "MODEL.SAN.LOSS.NUM_POINTS", 64]


def tiny_cfg(*opts):  # noqa: ANN002, ANN201
    """The default config with the SAN keys, the tiny sizes and ``opts`` merged."""
    cfg = get_cfg()
    add_san_config(cfg)
    cfg.MODEL.HEAD.NAME = "SANHead"
    cfg.merge_from_list(list(TINY) + list(opts))
    return cfg


def tiny_head(clip, *opts) -> SANHead:  # noqa: ANN001
    """A seeded tiny head (``opts``: extra KEY VALUE overrides)."""
    torch.manual_seed(0)
    return SANHead(tiny_cfg(*opts), clip)
