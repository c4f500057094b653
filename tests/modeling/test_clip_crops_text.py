"""CLIP layer: crop encoding (batched == loop, bbox / masked) and cached text embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.modeling.clip_testing import tiny_clip
from zsseg_bench.modeling.clip import IMAGENET_80, SINGLE, VILD_14, get_templates
from zsseg_bench.utils.errors import UserError


@pytest.fixture(scope="module")
def clip():
    return tiny_clip()


def _regions():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 40, 48)
    m0 = torch.zeros(3, 40, 48, dtype=torch.bool)
    m0[0, 5:20, 10:30] = True
    m0[1, 30:40, 0:8] = True
    m0[1, 0:3, 40:48] = True  # two blobs: the box spans both
    m1 = torch.zeros(2, 40, 48, dtype=torch.bool)
    m1[0] = torch.rand(40, 48) > 0.5
    boxes1 = torch.tensor([[0.0, 0.0, 48.0, 40.0], [4.5, 6.0, 20.0, 33.5]])
    return images, [m0, m1], [m0[:1], boxes1]


@pytest.mark.parametrize("crop", ["bbox", "masked"])
def test_batched_and_loop_agree(clip, crop):
    images, masks, mixed = _regions()
    with torch.no_grad():
        a = clip.encode_crops(images, masks, size=32, mode="batched", crop=crop, chunk_size=2)
        b = clip.encode_crops(images, masks, size=32, mode="loop", crop=crop)
        c = clip.encode_crops(images, mixed, size=32, mode="batched", crop=crop)
        d = clip.encode_crops(images, mixed, size=32, mode="loop", crop=crop)
    assert a.shape == (5, clip.embed_dim) and c.shape == (3, clip.embed_dim)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(c, d, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(5))


def test_crop_geometry(clip):
    images, masks, _ = _regions()
    # A full-image box is a plain resize of the image.
    full = torch.tensor([[0.0, 0.0, 48.0, 40.0]])
    out = clip._cut(images[0], full, 32, "bbox")
    ref = F.interpolate(images[:1], size=(32, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    # The box of a mask is its tight bounding box; masked crops are 0 (CLIP mean) outside.
    boxes, _ = clip._boxes_of(masks[0], 40, 48)
    torch.testing.assert_close(boxes[0], torch.tensor([10.0, 5.0, 30.0, 20.0]))
    torch.testing.assert_close(boxes[1], torch.tensor([0.0, 0.0, 48.0, 40.0]))
    rect = clip._cut(images[0], masks[0][:1], 32, "masked")
    torch.testing.assert_close(rect, clip._cut(images[0], masks[0][:1], 32, "bbox"))
    two = clip._cut(images[0], masks[0][1:2], 32, "masked")
    assert (two[0, :, 8:24, 8:24] == 0).all()  # the gap between the blobs is background
    empty = torch.zeros(1, 40, 48, dtype=torch.bool)
    assert (clip._cut(images[0], empty, 32, "masked") == 0).all()
    with torch.no_grad():
        assert clip.encode_crops(images, [masks[0][:0], masks[1][:0]]).shape == (0, 32)


@pytest.mark.parametrize("crop", ["bbox", "masked"])
def test_square_box_keeps_the_aspect_ratio(clip, crop):
    # A 3:1 bar of 1s (rows 10-14, columns 9-23) on 2s: stretched, it fills the crop; squared,
    # it keeps its shape, centred, with the CLIP mean (0, masked) or its context (2, bbox) above
    # and below it.
    bar = torch.zeros(1, 30, 40, dtype=torch.bool)
    bar[0, 10:15, 9:24] = True
    image = torch.where(bar, 1.0, 2.0).expand(3, -1, -1).unsqueeze(0)
    stretched = clip._cut(image[0], bar, 15, crop)
    assert (stretched[:, :, 1:14] == 1).all()  # rows 0 and 14 blend with the context
    squared = clip._cut(image[0], bar, 15, crop, square=True)
    outside = 0.0 if crop == "masked" else 2.0
    assert (squared[:, :, 5:10] == 1).all()
    assert (squared[:, :, :5] == outside).all() and (squared[:, :, 10:] == outside).all()
    with torch.no_grad():
        a = clip.encode_crops(image, [bar], size=16, mode="batched", crop=crop, square=True)
        b = clip.encode_crops(image, [bar], size=16, mode="loop", crop=crop, square=True)
        c = clip.encode_crops(image, [bar], size=16, mode="batched", crop=crop)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert not torch.allclose(a, c, atol=1e-3)


def test_square_box_outside_the_image_is_the_clip_mean(clip):
    # A 40 x 10 box at the top edge grows to 40 x 40 (rows -15..25): the 15 rows above the image
    # (6 of 16 output rows) are 0, not replicated border pixels.
    image = torch.ones(3, 30, 40)
    cut = clip._cut(image, torch.tensor([[0.0, 0.0, 40.0, 10.0]]), 16, "bbox", square=True)
    assert (cut[:, :, :6] == 0).all() and (cut[:, :, 6:] == 1).all()


def test_crop_argument_errors(clip):
    images, masks, _ = _regions()
    with pytest.raises(ValueError, match="mode"):
        clip.encode_crops(images, masks, size=32, mode="fast")
    with pytest.raises(ValueError, match="crop"):
        clip.encode_crops(images, masks, size=32, crop="circle")
    with pytest.raises(ValueError, match="one entry per image"):
        clip.encode_crops(images, masks[:1], size=32)


def test_templates():
    assert len(SINGLE) == 1 and len(IMAGENET_80) == 80 and len(VILD_14) == 14
    assert all(t.count("{}") == 1 for t in IMAGENET_80 + VILD_14)
    assert get_templates("VILD_14") == VILD_14
    assert get_templates(["{} here"]) == ("{} here",)
    with pytest.raises(UserError, match="imagenet_80"):
        get_templates("imagenet")
    with pytest.raises(UserError, match="exactly one"):
        get_templates(["no placeholder"])


def test_embed_texts_ensemble_and_cache(clip, monkeypatch):
    names = ["red circle", "blue ring", "background"]
    emb = clip.embed_texts(names, "vild_14")
    assert emb.shape == (3, clip.embed_dim) and not emb.requires_grad
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    with torch.no_grad():
        per = clip.encode_text(clip.tokenize([t.format(names[1]) for t in VILD_14]))
    torch.testing.assert_close(emb[1], F.normalize(per.mean(0), dim=0), atol=1e-6, rtol=0)
    calls = []
    orig = clip.encode_text
    monkeypatch.setattr(clip, "encode_text", lambda t: calls.append(1) or orig(t))
    assert clip.embed_texts(names, "vild_14") is emb  # cached
    assert clip.embed_texts(list(names), VILD_14) is emb  # same templates given explicitly
    assert not calls
    single = clip.embed_texts(names, "single")
    assert calls and not torch.allclose(single, emb)
