"""Fixtures of the two-stage tests: a tiny random-init CLIP layer and a tiny head config."""

from __future__ import annotations

import open_clip
import pytest
import torch

from zsseg_bench.config import get_cfg
from zsseg_bench.modeling.clip import CLIPModel
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.projects.two_stage import add_two_stage_config

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32,
                   "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2,
                 "layers": 1},
}
NAMES = ["background", "red circle", "blue square", "green cross", "red square"]
SEEN = [True, True, True, True, False]


def tiny_clip() -> CLIPModel:
    """The real CLIP layer on a frozen 2-layer open_clip ViT with random weights (seeded)."""
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_CLIP)
    tokenizer = open_clip.get_tokenizer("ViT-B-16", context_length=16)
    return CLIPModel(model, tokenizer, name="tiny", frozen=True)


def tiny_cfg(masked_attention: bool = False):  # noqa: ANN201
    """A two-stage config small enough for unit tests (random init everywhere)."""
    cfg = get_cfg()
    add_two_stage_config(cfg)
    ts = cfg.MODEL.TWO_STAGE
    ts.BACKBONE.DEPTH = 18
    ts.BACKBONE.WIDTH = 8
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
    ts.DECODER.MASKED_ATTENTION = masked_attention
    ts.CLIP_ENSEMBLE.SIZE = 0  # the tiny CLIP's own 32 px
    return cfg


def vocabulary(clip: CLIPModel, names: list[str] = NAMES,
               seen: list[bool] = SEEN) -> ClassVocabulary:
    return ClassVocabulary(names=list(names), embeddings=clip.embed_texts(names),
                           is_seen=torch.tensor(seen), class_ids=torch.arange(len(names)))


@pytest.fixture(scope="module")
def clip() -> CLIPModel:
    return tiny_clip()


@pytest.fixture(autouse=True)
def _tiny_models_on_one_thread(one_thread: None) -> None:
    """Every two-stage test runs on one thread (see ``one_thread`` in tests/conftest.py)."""
