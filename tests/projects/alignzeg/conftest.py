"""A tiny AlignZeg head (random init, every component on) on the tiny CLIP of the method tests."""

from __future__ import annotations

import torch

from zsseg_bench.config import get_cfg
from zsseg_bench.projects.alignzeg import AlignZegHead, add_alignzeg_config

#: Tiny sizes: a width-8 ResNet-18, 4 queries, 2 MRPE layers of width 16.
TINY = ["MODEL.ALIGNZEG.BACKBONE.DEPTH", 18, "MODEL.ALIGNZEG.BACKBONE.WIDTH", 8,
        "MODEL.ALIGNZEG.BACKBONE.RANDOM_INIT", True, "MODEL.ALIGNZEG.BACKBONE.NORM", "BN",
        "MODEL.ALIGNZEG.PIXEL_DECODER.CONV_DIM", 16, "MODEL.ALIGNZEG.PIXEL_DECODER.MASK_DIM", 16,
        "MODEL.ALIGNZEG.PIXEL_DECODER.NORM_GROUPS", 4,
        "MODEL.ALIGNZEG.DECODER.NUM_QUERIES", 4, "MODEL.ALIGNZEG.DECODER.HIDDEN_DIM", 16,
        "MODEL.ALIGNZEG.DECODER.NHEADS", 2, "MODEL.ALIGNZEG.DECODER.DIM_FEEDFORWARD", 32,
        "MODEL.ALIGNZEG.DECODER.LAYERS", 2, "MODEL.ALIGNZEG.DECODER.DROPOUT", 0.0,
        "MODEL.ALIGNZEG.CLASSIFIER.EMBED_HIDDEN_DIM", 32, "MODEL.ALIGNZEG.BDS.NUM_PROTOTYPES", 3,
        "MODEL.ALIGNZEG.PBC.HIDDEN_DIM", 16, "MODEL.ALIGNZEG.LOSS.TARGET_STRIDE", 4]


def tiny_cfg(*opts):  # noqa: ANN002, ANN201
    """The default config with the AlignZeg keys, the tiny sizes and ``opts`` merged."""
    cfg = get_cfg()
    add_alignzeg_config(cfg)
    cfg.merge_from_list([str(x) if not isinstance(x, str) else x for x in [*TINY, *opts]])
    return cfg


def tiny_head(clip, *opts) -> AlignZegHead:  # noqa: ANN001
    """A seeded tiny head (``opts``: extra KEY VALUE overrides)."""
    torch.manual_seed(0)
    return AlignZegHead(tiny_cfg(*opts), clip)
