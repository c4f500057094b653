"""The real-dataset configs (zsseg's R-101c + ViT-B/16, 100 queries) hold zsseg's constants and
build with random init; the toy config keeps its own choices explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zsseg_bench.config.command_line import setup_cfg
from zsseg_bench.modeling import build_head
from zsseg_bench.modeling.clip import build_clip

REPO = Path(__file__).resolve().parents[3]
RANDOM = ["MODEL.CLIP.RANDOM_INIT", "True", "MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT", "True",
          "MODEL.TWO_STAGE.BACKBONE.WEIGHTS", ""]


@pytest.mark.parametrize("dataset,weight", [("voc", 0.7), ("coco_stuff", 0.8), ("pcontext", 0.7)])
def test_reference_constants(dataset, weight):
    cfg = setup_cfg(str(REPO / "configs" / dataset / "two_stage.yaml"), RANDOM)
    ts = cfg.MODEL.TWO_STAGE
    assert cfg.MODEL.HEAD.NAME == "TwoStageHead" and cfg.MODEL.CLIP.NAME == "ViT-B-16"
    assert ts.BACKBONE.DEPTH == 101 and ts.DECODER.NUM_QUERIES == 100
    assert ts.DECODER.LAYERS == 6 and ts.DECODER.NHEADS == 8 and ts.DECODER.HIDDEN_DIM == 256
    assert (ts.MATCHER.COST_CLASS, ts.MATCHER.COST_MASK, ts.MATCHER.COST_DICE) == (1, 20, 1)
    assert ts.LOSS.NO_OBJECT_WEIGHT == 0.1 and ts.CLIP_ENSEMBLE.WEIGHT == weight
    assert ts.CLIP_ENSEMBLE.SIZE == 224 and ts.CLIP_ENSEMBLE.MASK_THRESHOLD == 0.5
    # zsseg.baseline @ d77c3af: R-101c, ImageNet normalisation, its crops, fixed temperature 100,
    # matching at the masks' resolution
    assert (ts.BACKBONE.NAME, ts.BACKBONE.STEM_TYPE, ts.BACKBONE.STEM_OUT_CHANNELS) == (
        "detectron2", "deeplab", 128)
    assert list(ts.BACKBONE.RES5_MULTI_GRID) == [1, 2, 4] and ts.BACKBONE.NORM == "FrozenBN"
    assert list(cfg.MODEL.PIXEL_MEAN) == [123.675, 116.28, 103.53]
    assert list(cfg.MODEL.PIXEL_STD) == [58.395, 57.12, 57.375] and not ts.BACKBONE.RENORMALIZE
    assert ts.CLIP_ENSEMBLE.CUT == "zsseg" and ts.CLIP_ENSEMBLE.TEMPERATURE == 0.01
    assert ts.DECODER.TEMPERATURE == 0.01 and ts.MATCHER.RESOLUTION == "masks"
    templates = {"voc": ["a sculpture of a {}."], "pcontext": ["a sculpture of a {}."],
                 "coco_stuff": "vild_14"}
    assert cfg.MODEL.CLIP.TEMPLATES == templates[dataset]


def test_toy_config_states_its_own_choices():
    # every toy-world choice that differs from zsseg is set in the toy config itself
    cfg = setup_cfg(str(REPO / "configs" / "synthetic" / "two_stage.yaml"), [])
    ts = cfg.MODEL.TWO_STAGE
    assert ts.BACKBONE.NAME == "torchvision" and ts.CLIP_ENSEMBLE.CUT == "grid"
    assert ts.MATCHER.RESOLUTION == "targets" and ts.CLIP_ENSEMBLE.TEMPERATURE == 0.0


@pytest.mark.slow
def test_voc_config_builds_and_proposes_with_random_init():
    cfg = setup_cfg(str(REPO / "configs" / "voc" / "two_stage.yaml"), RANDOM)
    torch.manual_seed(0)
    clip = build_clip(cfg)
    head = build_head(cfg, clip).eval()
    params = sum(p.numel() for p in head.parameters()) / 1e6
    assert 55 < params < 75, params  # R-101c (42.6M) + FPN + decoder + MLPs
    with torch.no_grad():
        embeddings, masks = head.propose(torch.randn(1, 3, 64, 64))[-1]
    assert embeddings.shape == (1, 100, clip.embed_dim) and masks.shape == (1, 100, 16, 16)
