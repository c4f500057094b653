"""SAN's reference configs load and hold the official constants; the ViT-B/16 model has the
official number of trainable parameters (8,370,866: the optimizer table of the official log,
"Total 8.37M", resources/san_vit_b_16.log:888 of MendelXu/SAN @ e19262d)."""

import pytest
import torch

from tests.cli_helpers import REPO
from zsseg_bench.config.command_line import setup_cfg

CONFIGS = REPO / "configs"
VITB = CONFIGS / "coco_stuff" / "san_vitb16_640_60k_open_vocabulary.yaml"
VITL = CONFIGS / "coco_stuff" / "san_vitl14_640_60k_open_vocabulary.yaml"


def test_vitb16_config_holds_the_official_constants():
    cfg = setup_cfg(str(VITB))
    s, a = cfg.MODEL.SAN, cfg.MODEL.SAN.SIDE_ADAPTER
    assert cfg.MODEL.HEAD.NAME == "SANHead" and cfg.MODEL.CLIP.NAME == "ViT-B-16"
    assert cfg.MODEL.CLIP.TEMPLATES == "vild_14" and cfg.MODEL.CLIP.QUICK_GELU
    assert cfg.MODEL.SIZE_DIVISIBILITY == 32 and cfg.TEST.MODE == "whole"
    assert (s.CLIP_RESOLUTION, s.FEATURE_LAST_LAYER_IDX, s.REC_DOWNSAMPLE_METHOD) == (0.5, 9, "max")
    assert (a.PATCH_SIZE, a.WIDTH, a.DEPTH, a.NUM_HEADS, a.IMAGE_SIZE) == (16, 240, 8, 6, 640)
    assert list(a.FUSION_MAP) == ["0->0", "3->1", "6->2", "9->3"]
    assert list(a.DEEP_SUPERVISION_IDXS) == [7, 8] and a.NUM_QUERIES == 100
    assert (a.ATTN_BIAS.NUM_HEADS, a.ATTN_BIAS.EMBED_CHANNELS, a.ATTN_BIAS.MLP_NUM_LAYERS) == \
        (12, 256, 3)
    loss = s.LOSS
    assert (loss.CLASS_WEIGHT, loss.MASK_WEIGHT, loss.DICE_WEIGHT, loss.NO_OBJECT_WEIGHT) == \
        (2.0, 5.0, 5.0, 0.1)
    assert (loss.NUM_POINTS, loss.OVERSAMPLE_RATIO, loss.IMPORTANCE_SAMPLE_RATIO) == \
        (12544, 3.0, 0.75)
    assert cfg.ZERO_SHOT.SETTING == "fully" and cfg.DATASETS.TRAIN == ("coco_stuff_zs_train",)
    assert len(cfg.DATASETS.TEST) == 6
    sol = cfg.SOLVER
    assert (sol.BASE_LR, sol.WEIGHT_DECAY, sol.MAX_ITER, sol.IMS_PER_BATCH) == \
        (1e-4, 1e-4, 60000, 32)
    assert sol.CLIP_GRADIENTS.ENABLED and sol.CLIP_GRADIENTS.CLIP_VALUE == 0.01
    assert tuple(cfg.INPUT.CROP.SIZE) == (640, 640) and tuple(cfg.INPUT.TEST_SCALE) == (2560, 640)


def test_vitl14_config_holds_the_official_constants():
    cfg = setup_cfg(str(VITL))
    s = cfg.MODEL.SAN
    assert cfg.MODEL.CLIP.NAME == "ViT-L-14-336"
    assert (s.CLIP_RESOLUTION, s.FEATURE_LAST_LAYER_IDX, s.SIDE_ADAPTER.ATTN_BIAS.NUM_HEADS) == \
        (0.7, 18, 16)
    assert list(s.SIDE_ADAPTER.FUSION_MAP) == ["0->0", "6->1", "12->2", "18->3"]


@pytest.mark.parametrize("config", ["coco_stuff/san.yaml", "voc/san.yaml", "synthetic/san.yaml"])
def test_sweep_and_toy_configs_load(config):
    cfg = setup_cfg(str(CONFIGS / config))
    assert cfg.MODEL.HEAD.NAME == "SANHead" and cfg.ZERO_SHOT.SETTING == "inductive"


def _trainable(config, *opts) -> int:
    from zsseg_bench.modeling import build_model

    cfg = setup_cfg(str(config), ["MODEL.CLIP.RANDOM_INIT", "True", "MODEL.DEVICE", "cpu",
                                  *opts])
    torch.manual_seed(0)
    model = build_model(cfg)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_vitb16_trainable_parameters_equal_the_official_count():
    assert _trainable(VITB) == 8_370_866


def test_vitl14_trainable_parameters_equal_the_official_count():
    # "Total 9.32M": resources/san_vit_large_14.log:1056 (9,321,650 counted from the
    # official model built here)
    assert _trainable(VITL) == 9_321_650
