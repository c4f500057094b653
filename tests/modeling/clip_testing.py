"""Shared helpers of the CLIP-layer tests: a tiny open_clip architecture registered from a file."""

from __future__ import annotations

import json
import os
import tempfile

import open_clip
import torch

from zsseg_bench.modeling.clip import CLIPModel, build_open_clip

TINY = "ZsTestTinyCLIP"
TINY_OTHER = "ZsTestTinyCLIPWide"
_CFGS = {
    TINY: {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 3, "width": 64, "head_width": 32,
                       "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2,
                     "layers": 1},
    },
    TINY_OTHER: {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 3, "width": 96, "head_width": 32,
                       "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2,
                     "layers": 1},
    },
}
_registered = False


def register_tiny_configs() -> None:
    """Register the tiny test architectures with open_clip (once per process)."""
    global _registered
    if _registered:
        return
    d = tempfile.mkdtemp(prefix="zs_tiny_clip_")
    for name, cfg in _CFGS.items():
        with open(os.path.join(d, f"{name}.json"), "w") as f:
            json.dump(cfg, f)
    open_clip.add_model_config(d)
    _registered = True


def tiny_clip(name: str = TINY, seed: int = 0) -> CLIPModel:
    """A frozen, randomly initialised tiny CLIP layer."""
    register_tiny_configs()
    torch.manual_seed(seed)
    model = build_open_clip(name, "", True, False)
    return CLIPModel(model, open_clip.get_tokenizer(name), name=name)
