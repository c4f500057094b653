"""Fixtures of the method tests: a tiny random-init CLIP (the real CLIP layer on a 2-layer
open_clip ViT) that needs no download, and a tiny class list with a seen / unseen split."""

from __future__ import annotations

import open_clip
import pytest
import torch

from zsseg_bench.data.catalog import MetadataCatalog
from zsseg_bench.modeling.clip import CLIPModel

#: A tiny vocabulary for the methods' zero-shot tests: classes 3 and 4 are unseen.
CLASSES = ["background", "red circle", "blue square", "green cross", "red square"]
SEEN, UNSEEN = [0, 1, 2], [3, 4]


def register_tiny_split(name: str) -> str:
    """Registers metadata ``name`` with :data:`CLASSES` and its split (once); returns ``name``."""
    if name not in MetadataCatalog.list():
        MetadataCatalog.get(name).set(stuff_classes=CLASSES, seen_classes=SEEN,
                                      unseen_classes=UNSEEN, ignore_label=255)
    return name

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32,
                   "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2,
                 "layers": 1},
}


def tiny_clip() -> CLIPModel:
    """The real CLIP layer on a frozen 2-layer open_clip ViT with random weights (seeded)."""
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_CLIP)
    tokenizer = open_clip.get_tokenizer("ViT-B-16", context_length=16)
    return CLIPModel(model, tokenizer, name="tiny", frozen=True)


@pytest.fixture(scope="module")
def clip() -> CLIPModel:
    """One tiny CLIP per test module."""
    return tiny_clip()
