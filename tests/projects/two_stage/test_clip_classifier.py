"""CLIP crop classification: batched and loop agree; empty proposals are neutral."""

from __future__ import annotations

import pytest
import torch

from zsseg_bench.projects.two_stage.clip_classifier import CropClassifier
from zsseg_bench.utils.errors import UserError


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 3, 40, 48, generator=g)
    logits = torch.randn(2, 4, 10, 12, generator=g) * 3
    logits[1, 2] = -10.0  # an empty proposal
    return images, logits


@pytest.mark.parametrize("crop", ["masked", "bbox"])
def test_batched_and_loop_agree(clip, crop):
    images, logits = _inputs()
    text = clip.embed_texts(["red circle", "blue square", "background"])
    probs = {}
    for mode in ("batched", "loop"):
        cc = CropClassifier(mask_threshold=0.5, crop=crop, mode=mode, size=0, temperature=0.01)
        crops = cc.prepare(logits, images.shape[-2:])
        probs[mode] = cc.classify(clip, images, crops, text)
    assert probs["batched"].shape == (2, 4, 3)
    torch.testing.assert_close(probs["batched"], probs["loop"], atol=1e-5, rtol=1e-4)


def test_empty_proposals_get_neutral_scores_and_crop_styles_differ(clip):
    images, logits = _inputs(1)
    text = clip.embed_texts(["red circle", "blue square"])
    out = {}
    for crop in ("masked", "bbox"):
        cc = CropClassifier(mask_threshold=0.5, crop=crop, mode="batched", size=0,
                            temperature=0.01)
        crops = cc.prepare(logits, images.shape[-2:])
        assert crops.masks[0].shape == (4, 40, 48)
        assert not bool(crops.valid[1, 2]) and crops.num_crops == int(crops.valid.sum())
        out[crop] = cc.classify(clip, images, crops, text)
        assert out[crop][1, 2].tolist() == [1.0, 1.0]
        valid = out[crop][crops.valid]
        torch.testing.assert_close(valid.sum(-1), torch.ones(len(valid)))
    assert not torch.allclose(out["masked"], out["bbox"])


def test_threshold_and_temperature(clip):
    images, logits = _inputs(2)
    low = CropClassifier(mask_threshold=0.1, crop="masked", mode="batched", size=0,
                         temperature=0.01).prepare(logits, images.shape[-2:])
    high = CropClassifier(mask_threshold=0.9, crop="masked", mode="batched", size=0,
                          temperature=0.01).prepare(logits, images.shape[-2:])
    assert sum(int(m.sum()) for m in low.masks) > sum(int(m.sum()) for m in high.masks)
    learned = CropClassifier(mask_threshold=0.5, crop="masked", mode="batched", size=0,
                             temperature=0.0)
    assert learned.logit_scale(clip) == pytest.approx(float(clip.model.logit_scale.exp()))
    assert learned.crop_size(clip) == 32


def test_bad_choices_are_user_errors():
    with pytest.raises(UserError, match="CROP"):
        CropClassifier(mask_threshold=0.5, crop="box", mode="batched", size=0, temperature=0.01)
    with pytest.raises(UserError, match="MODE"):
        CropClassifier(mask_threshold=0.5, crop="bbox", mode="serial", size=0, temperature=0.01)
