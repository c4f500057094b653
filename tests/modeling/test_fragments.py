"""Config fragments of the shared blocks: the pixel decoder's and the set criterion's keys
mounted under any prefix, a method's own keys beside them, and the builders reading them back."""

from __future__ import annotations

import pytest
import torch

from zsseg_bench.config import CfgNode as CN
from zsseg_bench.config import get_cfg
from zsseg_bench.modeling.config_fragment import mount, node_at
from zsseg_bench.modeling.criterion import (
    SetCriterion,
    add_set_criterion_config,
    build_set_criterion,
)
from zsseg_bench.modeling.pixel_decoder import (
    FPNPixelDecoder,
    add_pixel_decoder_config,
    build_pixel_decoder,
)


def _cfg():  # noqa: ANN202
    cfg = get_cfg()
    cfg.MODEL.MYHEAD = CN()
    return cfg


def test_mount_and_node_at():
    cfg = _cfg()
    node, created = mount(cfg, "MODEL.MYHEAD.X")
    assert created and node is cfg.MODEL.MYHEAD.X
    node.A = 1
    again, created = mount(cfg, "MODEL.MYHEAD.X")
    assert not created and again.A == 1
    assert node_at(cfg, "MODEL.MYHEAD.X.A") == 1
    with pytest.raises(KeyError, match="MODEL.NOPE"):
        node_at(cfg, "MODEL.NOPE")
    with pytest.raises(KeyError, match="MODEL.NOPE"):
        mount(cfg, "MODEL.NOPE.X")  # parents must exist


def test_pixel_decoder_fragment_round_trip():
    cfg = _cfg()
    add_pixel_decoder_config(cfg, "MODEL.MYHEAD.PIXEL_DECODER")
    p = cfg.MODEL.MYHEAD.PIXEL_DECODER
    assert (p.CONV_DIM, p.MASK_DIM, p.NORM_GROUPS) == (256, 256, 32)
    p.CONV_DIM, p.MASK_DIM, p.NORM_GROUPS = 16, 8, 4
    add_pixel_decoder_config(cfg, "MODEL.MYHEAD.PIXEL_DECODER")  # a no-op on an existing node
    channels = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
    dec = build_pixel_decoder(cfg, "MODEL.MYHEAD.PIXEL_DECODER", channels)
    assert isinstance(dec, FPNPixelDecoder) and (dec.conv_dim, dec.mask_dim) == (16, 8)
    feats = {f"res{i}": torch.zeros(1, c, 64 // 2 ** i, 64 // 2 ** i)
             for i, c in zip(range(2, 6), channels.values())}
    mask_features, multi_scale = dec(feats)
    assert mask_features.shape == (1, 8, 16, 16) and len(multi_scale) == 3


def test_set_criterion_fragment_keeps_the_methods_own_keys():
    cfg = _cfg()
    add_set_criterion_config(cfg, "MODEL.MYHEAD")
    loss = cfg.MODEL.MYHEAD.LOSS
    loss.EXTRA_WEIGHT = 0.5  # a method's own key beside the fragment's
    assert (cfg.MODEL.MYHEAD.MATCHER.COST_MASK, loss.MASK_WEIGHT, loss.NO_OBJECT_WEIGHT) == (
        20.0, 20.0, 0.1)
    loss.DICE_WEIGHT, loss.MASK_IGNORE_PIXELS = 3.0, True
    cfg.MODEL.MYHEAD.MATCHER.COST_CLASS = 2.0
    add_set_criterion_config(cfg, "MODEL.MYHEAD")  # existing nodes are left as they are
    assert loss.EXTRA_WEIGHT == 0.5 and loss.DICE_WEIGHT == 3.0
    crit = build_set_criterion(cfg, "MODEL.MYHEAD", deep_supervision=False)
    assert isinstance(crit, SetCriterion)
    assert (crit.dice_weight, crit.mask_ignore_pixels, crit.deep_supervision) == (3.0, True, False)
    assert (crit.matcher.cost_class, crit.matcher.focal_alpha) == (2.0, 0.25)
