"""CLIP crop classification: batched and loop agree; empty proposals are neutral."""

from __future__ import annotations

import pytest
import torch

from zsseg_bench.projects.two_stage.clip_classifier import CropClassifier, expand_box, mask_boxes
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


def _recorded_crops(clip, cc, images, logits, sizes):
    """The crops CLIP gets from ``cc`` (clip.encode_image recorded)."""
    seen = []
    encode = clip.encode_image

    def record(x):
        seen.append(x.clone())
        return encode(x)

    clip.encode_image = record
    try:
        crops = cc.prepare(logits, images.shape[-2:], sizes)
        cc.classify(clip, images, crops, clip.embed_texts(["a", "b"]))
    finally:
        del clip.encode_image
    return crops, torch.cat(seen)


def test_zsseg_crops_cut_from_the_unpadded_image_by_hand(clip):
    # zsseg (MaskFormerClipAdapter._preprocess_image, crop_with_mask @ d77c3af): the box of the
    # mask within the image (not its padding), pixels outside the mask = CLIP's mean (0 once
    # normalised), CLIP-normalised, resized to the crop size (here the box's own 8 x 8: no
    # resampling, so the crop is the normalised box itself)
    mean, std = [120.0, 110.0, 100.0], [60.0, 55.0, 50.0]
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (3, 16, 24), generator=g).float()
    images = torch.zeros(1, 3, 32, 32)  # the batch: the image padded with 0 (normalised)
    images[0, :, :16, :24] = (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(
        std).view(3, 1, 1)
    logits = torch.full((1, 2, 32, 32), -5.0)
    logits[0, 0, 4:12, 16:32] = 5.0  # in the image at columns 16..23, then in the padding
    logits[0, 0, 6, 18] = -5.0  # a hole
    logits[0, 1, 20:, :] = 5.0  # only in the padding: empty
    cc = CropClassifier(mask_threshold=0.5, crop="masked", mode="batched", size=8,
                        temperature=0.01, cut="zsseg", input_mean=mean, input_std=std)
    crops, cut = _recorded_crops(clip, cc, images, logits, [(16, 24)])
    assert crops.masks[0].shape == (2, 16, 24) and crops.valid.tolist() == [[True, False]]
    clip_mean = torch.tensor(clip.image_mean).view(3, 1, 1) * 255
    clip_std = torch.tensor(clip.image_std).view(3, 1, 1) * 255
    expected = (pixels[:, 4:12, 16:24] - clip_mean) / clip_std
    expected[:, 2, 2] = 0.0  # the hole: CLIP's mean
    assert cut.shape == (1, 3, 8, 8)
    torch.testing.assert_close(cut[0], expected, atol=1e-5, rtol=1e-5)
    # the suite's earlier crops cut the padded batch: the box runs into the padding
    grid = CropClassifier(mask_threshold=0.5, crop="masked", mode="batched", size=8,
                          temperature=0.01, cut="grid", input_mean=mean, input_std=std)
    crops, _ = _recorded_crops(clip, grid, images, logits, [(16, 24)])
    assert crops.masks[0].shape == (2, 32, 32) and crops.valid.tolist() == [[True, True]]


def test_zsseg_expand_box_and_mask_boxes():
    masks = torch.zeros(2, 16, 24, dtype=torch.bool)
    masks[0, 2:6, 3:9] = True
    masks[1, 0:3, 0:3] = True
    masks[1, 10, 20] = True
    # detectron2 BitMasks.get_bounding_boxes: first / last row and column, ends exclusive
    assert mask_boxes(masks) == [(3, 2, 9, 6), (0, 0, 21, 11)]
    # zsseg expand_box: centre (6, 4), size 6 x 4 -> 9 x 6, truncated to int, clipped
    assert expand_box((3, 2, 9, 6), 1.0, 16, 24) == (3, 2, 9, 6)
    assert expand_box((3, 2, 9, 6), 1.5, 16, 24) == (1, 1, 10, 7)
    assert expand_box((0, 0, 3, 3), 1.5, 16, 24) == (0, 0, 3, 3)  # int(-0.75) = 0, int(3.75)
    assert expand_box((18, 12, 24, 16), 2.0, 16, 24) == (15, 10, 24, 16)


def test_zsseg_crops_undo_the_input_normalisation(clip):
    # images normalised with ImageNet's statistics (zsseg's MODEL.PIXEL_MEAN) or with CLIP's
    # give the same crops: the pixels are restored first
    images, logits = _inputs(3)
    clip_mean = torch.tensor(clip.image_mean).view(1, 3, 1, 1) * 255
    clip_std = torch.tensor(clip.image_std).view(1, 3, 1, 1) * 255
    pixels = images * clip_std + clip_mean
    imagenet_mean, imagenet_std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    other = (pixels - torch.tensor(imagenet_mean).view(1, 3, 1, 1)) / torch.tensor(
        imagenet_std).view(1, 3, 1, 1)
    kw = {"mask_threshold": 0.5, "crop": "masked", "mode": "batched", "size": 0,
          "temperature": 0.01}
    _, a = _recorded_crops(clip, CropClassifier(**kw), images, logits, None)
    _, b = _recorded_crops(clip, CropClassifier(**kw, input_mean=imagenet_mean,
                                                input_std=imagenet_std), other, logits, None)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
