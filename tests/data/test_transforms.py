"""Augmentations: sizes, alignment of image and label, determinism, mmseg semantics."""

import numpy as np
import pytest

from zsseg_bench.config import get_cfg
from zsseg_bench.data.transforms import (
    PhotometricDistortion,
    RandomCropCatMax,
    RandomFlip,
    RandomResizeRatio,
    ResizeToFit,
    apply_augmentations,
    build_augmentations,
)


def _pair(h=60, w=80):
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[..., 0] = np.arange(w, dtype=np.uint8)[None]  # red channel encodes x
    label = np.tile((np.arange(w) // 10).astype(np.uint8)[None], (h, 1))
    return image, label


def test_random_resize_ratio_within_range():
    aug = RandomResizeRatio((200, 50), (0.5, 2.0))
    image, label = _pair(60, 80)  # short 60 -> 50 * ratio
    for seed in range(20):
        out, seg, _ = apply_augmentations([aug], image, label, np.random.default_rng(seed))
        assert out.shape[:2] == seg.shape
        assert 25 - 1 <= min(out.shape[:2]) <= 100 + 1
        assert set(np.unique(seg)) <= set(np.unique(label))  # nearest: no new values


def test_resize_to_fit_caps_the_long_side():
    tfm = ResizeToFit((100, 50)).get_transform(np.zeros((40, 200, 3), np.uint8), None, None)
    assert (tfm.new_h, tfm.new_w) == (20, 100)
    tfm = ResizeToFit((2048, 512)).get_transform(np.zeros((200, 300, 3), np.uint8), None, None)
    assert (tfm.new_h, tfm.new_w) == (512, 768)


def test_crop_flip_keep_image_and_label_aligned():
    image, label = _pair()
    augs = [RandomCropCatMax((32, 48), 0.75), RandomFlip(1.0)]
    for seed in range(10):
        out, seg, _ = apply_augmentations(augs, image, label, np.random.default_rng(seed))
        assert out.shape[:2] == seg.shape == (32, 48)
        np.testing.assert_array_equal(seg, out[..., 0] // 10)
        assert out[0, 0, 0] > out[0, -1, 0]  # flipped


def test_crop_is_clipped_to_small_images():
    image, label = _pair(20, 30)
    out, seg, _ = apply_augmentations([RandomCropCatMax((64, 64), 0.75)], image, label,
                                      np.random.default_rng(0))
    assert out.shape[:2] == seg.shape == (20, 30)


def test_cat_max_ratio_avoids_single_class_crops():
    label = np.zeros((100, 100), dtype=np.uint8)
    label[:, 90:] = 1  # class 1 only in the last 10 columns
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    aug = RandomCropCatMax((50, 50), cat_max_ratio=0.99)
    hits = 0
    for seed in range(30):
        seg = aug.get_transform(image, label, np.random.default_rng(seed)).apply_segmentation(
            label)
        hits += len(np.unique(seg)) > 1
    # one draw contains class 1 with probability 10/51; 10 checks + 1: about 0.91
    assert hits >= 22
    plain = RandomCropCatMax((50, 50), cat_max_ratio=1.0)
    plain_hits = sum(len(np.unique(plain.get_transform(image, label, np.random.default_rng(s))
                                   .apply_segmentation(label))) > 1 for s in range(30))
    assert plain_hits < hits


def test_photometric_distortion_changes_image_only():
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    label = np.ones((16, 16), dtype=np.uint8)
    aug = PhotometricDistortion(32, (0.5, 1.5), (0.5, 1.5), 18)
    changed = 0
    for seed in range(10):
        out, seg, _ = apply_augmentations([aug], image, label, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.shape == image.shape
        np.testing.assert_array_equal(seg, label)
        changed += not np.array_equal(out, image)
    assert changed >= 5


@pytest.mark.parametrize("is_train", [True, False])
def test_build_from_config_is_deterministic(is_train):
    cfg = get_cfg()
    augs = build_augmentations(cfg, is_train)
    assert len(augs) == (4 if is_train else 1)
    image, label = _pair(120, 160)
    a = apply_augmentations(augs, image, label, np.random.default_rng(3))
    b = apply_augmentations(augs, image, label, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_disabled_augmentations():
    cfg = get_cfg()
    cfg.INPUT.RESIZE.ENABLED = False
    cfg.INPUT.CROP.ENABLED = False
    cfg.INPUT.FLIP = False
    cfg.INPUT.COLOR_AUG = False
    cfg.INPUT.TEST_SCALE = ()
    assert build_augmentations(cfg, True) == [] and build_augmentations(cfg, False) == []
