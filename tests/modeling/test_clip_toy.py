"""The shipped toy CLIP loads through the config and classifies toy renders zero-shot."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from zsseg_bench.config import get_cfg
from zsseg_bench.data.synthetic import CLASS_NAMES, OBJECT_CLASS_IDS, make_probe_set
from zsseg_bench.modeling.clip import MODEL_ZOO_DIR, build_clip

#: Renders used here: the first 240 of the 1,000-render probe of scripts/pretrain_toy_clip.py.
NUM_RENDERS = 240
#: The target of the toy CLIP. The shipped checkpoint scores 0.992 on the 1,000-render probe
#: (toy_clip_training.json); with 240 renders the binomial standard error there is ~0.6 points, so
#: 0.90 fails only for a checkpoint (or CLIP layer) that really regressed.
MIN_TOP1 = 0.90


def _toy_cfg():
    cfg = get_cfg()
    cfg.MODEL.CLIP.NAME = "ToyCLIP-ViT-P8"
    cfg.MODEL.CLIP.WEIGHTS = "zsseg_bench://toy_clip/toy_clip.pt"
    return cfg


def test_shipped_files_and_figures():
    d = os.path.join(MODEL_ZOO_DIR, "toy_clip")
    ckpt = os.path.join(d, "toy_clip.pt")
    assert os.path.getsize(ckpt) <= 20 * 2**20
    with open(os.path.join(d, "toy_clip_training.json")) as f:
        figures = json.load(f)
    assert figures["probe"]["num_renders"] == 1000
    assert figures["probe"]["top1"] >= 0.90


def test_toy_clip_zero_shot_top1():
    torch.manual_seed(0)
    clip = build_clip(_toy_cfg())
    assert clip.patch_size == 8 and clip.grid_size == (8, 8)
    images, labels = make_probe_set(NUM_RENDERS)
    mean = torch.tensor(clip.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(clip.image_std).view(1, 3, 1, 1)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - mean) / std
    ids = list(OBJECT_CLASS_IDS)
    with torch.no_grad():
        txt = clip.embed_texts([CLASS_NAMES[i] for i in ids], "single")
        pred = (clip.encode_image(x) @ txt.t()).argmax(1).numpy()
    top1 = float((np.asarray(ids)[pred] == labels).mean())
    assert top1 >= MIN_TOP1, top1
