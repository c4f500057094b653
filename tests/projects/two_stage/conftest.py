"""Fixtures of the two-stage tests: a tiny head config and vocabulary (the tiny CLIP:
tests/projects/conftest.py)."""

from __future__ import annotations

import pytest
import torch

from zsseg_bench.config import get_cfg
from zsseg_bench.modeling.clip import CLIPModel
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.projects.two_stage import add_two_stage_config

NAMES = ["background", "red circle", "blue square", "green cross", "red square"]
SEEN = [True, True, True, True, False]


def tiny_cfg(decoder: str = "MaskFormerDecoder"):  # noqa: ANN201
    """A two-stage config small enough for unit tests (random init everywhere)."""
    cfg = get_cfg()
    add_two_stage_config(cfg)
    ts = cfg.MODEL.TWO_STAGE
    ts.BACKBONE.NAME = "torchvision"
    ts.BACKBONE.DEPTH = 18
    ts.BACKBONE.WIDTH = 8
    ts.BACKBONE.NORM = "BN"
    ts.BACKBONE.RANDOM_INIT = True
    ts.PIXEL_DECODER.CONV_DIM = 16
    ts.PIXEL_DECODER.MASK_DIM = 16
    ts.PIXEL_DECODER.NORM_GROUPS = 4
    ts.DECODER.NUM_QUERIES = 6
    ts.DECODER.HIDDEN_DIM = 16
    ts.DECODER.NHEADS = 2
    ts.DECODER.DIM_FEEDFORWARD = 32
    ts.DECODER.LAYERS = 3
    ts.DECODER.EMBED_HIDDEN_DIM = 32
    ts.DECODER.NAME = decoder
    ts.CLIP_ENSEMBLE.SIZE = 0  # the tiny CLIP's own 32 px
    return cfg


def vocabulary(clip: CLIPModel, names: list[str] = NAMES,
               seen: list[bool] = SEEN) -> ClassVocabulary:
    return ClassVocabulary(names=list(names), embeddings=clip.embed_texts(names),
                           is_seen=torch.tensor(seen), class_ids=torch.arange(len(names)))


@pytest.fixture(autouse=True)
def _tiny_models_on_one_thread(one_thread: None) -> None:
    """Every two-stage test runs on one thread (see ``one_thread`` in tests/conftest.py)."""
