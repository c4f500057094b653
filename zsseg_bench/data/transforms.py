"""Augmentations of the reference recipes (mmseg pipelines of ZegCLIP / zsseg), on fvcore.

As in Detectron2, an :class:`Augmentation` looks at the inputs and draws a deterministic
``fvcore.transforms.Transform``, which is then applied to the image and the label map alike.
Randomness comes from an explicit ``numpy.random.Generator``, so a sample's augmentation is a
function of (seed, sample position) only, whatever the number of loader workers.

Training (``cfg.INPUT``, mmseg's ``train_pipeline``)::

    RandomResizeRatio(RESIZE.SCALE, RESIZE.RATIO_RANGE)   # mmseg Resize(img_scale, ratio_range)
    RandomCropCatMax(CROP.SIZE, CROP.CAT_MAX_RATIO)       # mmseg RandomCrop(cat_max_ratio)
    RandomFlip(FLIP_PROB)                                  # mmseg RandomFlip
    PhotometricDistortion(PHOTOMETRIC.*)                   # mmseg PhotoMetricDistortion

Test: :class:`ResizeToFit` ``(INPUT.TEST_SCALE)``: the short side goes to ``TEST_SCALE[1]``
unless the long side would exceed ``TEST_SCALE[0]`` (mmseg's test ``Resize``, keep_ratio).
The crop is not padded here: the meta-architecture pads batches (images with 0 after
normalisation, labels with 255), as mmseg's ``Pad`` does after ``Normalize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from fvcore.transforms.transform import (
    CropTransform,
    HFlipTransform,
    NoOpTransform,
    Transform,
    TransformList,
)

from zsseg_bench.data.zero_shot import IGNORE_LABEL

__all__ = [
    "Augmentation",
    "ResizeTransform",
    "PhotometricDistortionTransform",
    "RandomResizeRatio",
    "ResizeToFit",
    "RandomCropCatMax",
    "RandomFlip",
    "PhotometricDistortion",
    "apply_augmentations",
    "build_augmentations",
]


# ------------------------------------------------------------------------------ transforms
class ResizeTransform(Transform):
    """Resizes to ``(new_h, new_w)``: bilinear for images, nearest for label maps (OpenCV)."""

    def __init__(self, h: int, w: int, new_h: int, new_w: int):
        super().__init__()
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        assert img.shape[:2] == (self.h, self.w), "image size differs from the transform's"
        if (self.new_h, self.new_w) == (self.h, self.w):
            return img
        return cv2.resize(img, (self.new_w, self.new_h), interpolation=cv2.INTER_LINEAR)

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        assert segmentation.shape[:2] == (self.h, self.w), "label size differs from the image's"
        if (self.new_h, self.new_w) == (self.h, self.w):
            return segmentation
        return cv2.resize(segmentation, (self.new_w, self.new_h),
                          interpolation=cv2.INTER_NEAREST)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords[:, 0] = coords[:, 0] * (self.new_w / self.w)
        coords[:, 1] = coords[:, 1] * (self.new_h / self.h)
        return coords

    def inverse(self) -> Transform:
        return ResizeTransform(self.new_h, self.new_w, self.h, self.w)


class PhotometricDistortionTransform(Transform):
    """mmseg's ``PhotoMetricDistortion`` with its random draws fixed (image only).

    Each factor is ``None`` when that step is skipped. Every step works on uint8 like mmseg
    (values clipped to 0-255 after brightness and contrast); saturation and hue are changed in
    OpenCV's HSV space (hue in 0..179).
    """

    def __init__(self, brightness: float | None, contrast: float | None,
                 saturation: float | None, hue: int | None, contrast_first: bool):
        super().__init__()
        self._set_attributes(locals())

    @staticmethod
    def _affine(img: np.ndarray, alpha: float, beta: float) -> np.ndarray:
        return np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        if img.dtype != np.uint8:
            raise TypeError("photometric distortion expects uint8 images")
        if self.brightness is not None:
            img = self._affine(img, 1.0, self.brightness)
        if self.contrast_first and self.contrast is not None:
            img = self._affine(img, self.contrast, 0.0)
        if self.saturation is not None or self.hue is not None:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            if self.saturation is not None:
                hsv[..., 1] = np.clip(hsv[..., 1].astype(np.float32) * self.saturation,
                                      0, 255).astype(np.uint8)
            if self.hue is not None:
                hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + self.hue) % 180).astype(np.uint8)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        if not self.contrast_first and self.contrast is not None:
            img = self._affine(img, self.contrast, 0.0)
        return img

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return segmentation

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords


# ---------------------------------------------------------------------------- augmentations
class Augmentation:
    """Draws a :class:`Transform` from the inputs (Detectron2's ``Augmentation``, reduced to
    image + label map, with an explicit random generator)."""

    def get_transform(self, image: np.ndarray, sem_seg: np.ndarray | None,
                      rng: np.random.Generator) -> Transform:
        """The transform for this image (H x W x C uint8) and label map (H x W or None)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def _rescale_size(height: int, width: int, scale: Sequence[float]) -> tuple[int, int]:
    """mmcv's ``rescale_size`` with keep_ratio: fit ``(long, short)`` edges, keep the ratio."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(height, width), short_edge / min(height, width))
    return max(1, int(height * factor + 0.5)), max(1, int(width * factor + 0.5))


class ResizeToFit(Augmentation):
    """Deterministic keep-ratio resize so the image fits ``scale = (long, short)`` edges."""

    def __init__(self, scale: Sequence[int]):
        self.scale = tuple(int(s) for s in scale)

    def get_transform(self, image: np.ndarray, sem_seg: np.ndarray | None,
                      rng: np.random.Generator) -> Transform:
        h, w = image.shape[:2]
        new_h, new_w = _rescale_size(h, w, self.scale)
        return ResizeTransform(h, w, new_h, new_w)


class RandomResizeRatio(Augmentation):
    """mmseg ``Resize(img_scale=scale, ratio_range=ratio_range, keep_ratio=True)``: the target
    ``(long, short)`` edges are ``scale`` times a ratio drawn uniformly in ``ratio_range``."""

    def __init__(self, scale: Sequence[int], ratio_range: Sequence[float]):
        self.scale = tuple(int(s) for s in scale)
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))

    def get_transform(self, image: np.ndarray, sem_seg: np.ndarray | None,
                      rng: np.random.Generator) -> Transform:
        ratio = rng.uniform(*self.ratio_range)
        h, w = image.shape[:2]
        new_h, new_w = _rescale_size(h, w, [s * ratio for s in self.scale])
        return ResizeTransform(h, w, new_h, new_w)


class RandomCropCatMax(Augmentation):
    """mmseg ``RandomCrop(crop_size, cat_max_ratio)``: a random crop (clipped to the image),
    re-drawn while one category covers ``cat_max_ratio`` or more of its labelled (non-ignore)
    pixels or the crop holds a single category (up to ``max_tries`` checks; the last draw is
    kept unchecked)."""

    def __init__(self, crop_size: Sequence[int], cat_max_ratio: float = 1.0,
                 ignore_label: int = IGNORE_LABEL, max_tries: int = 10):
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.cat_max_ratio = float(cat_max_ratio)
        self.ignore_label = ignore_label
        self.max_tries = max_tries

    def _draw(self, height: int, width: int, rng: np.random.Generator) -> CropTransform:
        crop_h, crop_w = min(self.crop_size[0], height), min(self.crop_size[1], width)
        y0 = int(rng.integers(0, height - crop_h + 1))
        x0 = int(rng.integers(0, width - crop_w + 1))
        return CropTransform(x0, y0, crop_w, crop_h, orig_w=width, orig_h=height)

    def get_transform(self, image: np.ndarray, sem_seg: np.ndarray | None,
                      rng: np.random.Generator) -> Transform:
        h, w = image.shape[:2]
        crop = self._draw(h, w, rng)
        if sem_seg is None or self.cat_max_ratio >= 1.0:
            return crop
        for _ in range(self.max_tries):
            counts = np.bincount(crop.apply_segmentation(sem_seg).ravel(), minlength=256)
            counts[self.ignore_label] = 0
            counts = counts[counts > 0]
            if len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                break
            crop = self._draw(h, w, rng)
        return crop


class RandomFlip(Augmentation):
    """Horizontal flip with probability ``prob``."""

    def __init__(self, prob: float = 0.5):
        self.prob = float(prob)

    def get_transform(self, image: np.ndarray, sem_seg: np.ndarray | None,
                      rng: np.random.Generator) -> Transform:
        if rng.random() < self.prob:
            return HFlipTransform(image.shape[1])
        return NoOpTransform()


class PhotometricDistortion(Augmentation):
    """mmseg ``PhotoMetricDistortion``: brightness, contrast (before or after the colour
    steps), saturation, hue; each step applied with probability 1/2."""

    def __init__(self, brightness_delta: float, contrast_range: Sequence[float],
                 saturation_range: Sequence[float], hue_delta: int):
        self.brightness_delta = float(brightness_delta)
        self.contrast_range = (float(contrast_range[0]), float(contrast_range[1]))
        self.saturation_range = (float(saturation_range[0]), float(saturation_range[1]))
        self.hue_delta = int(hue_delta)

    def get_transform(self, image: np.ndarray, sem_seg: np.ndarray | None,
                      rng: np.random.Generator) -> Transform:
        def maybe(value: Any) -> Any:
            return value if rng.random() < 0.5 else None

        brightness = maybe(rng.uniform(-self.brightness_delta, self.brightness_delta))
        contrast_first = bool(rng.random() < 0.5)
        contrast = maybe(rng.uniform(*self.contrast_range))
        saturation = maybe(rng.uniform(*self.saturation_range))
        hue = maybe(int(rng.integers(-self.hue_delta, self.hue_delta + 1)))
        return PhotometricDistortionTransform(brightness, contrast, saturation, hue,
                                              contrast_first)


def apply_augmentations(augmentations: Sequence[Augmentation], image: np.ndarray,
                        sem_seg: np.ndarray | None, rng: np.random.Generator,
                        ) -> tuple[np.ndarray, np.ndarray | None, TransformList]:
    """Applies augmentations in order, each drawn on the output of the previous one.

    Returns:
        The augmented image, label map (or None) and the list of transforms applied.
    """
    transforms = []
    for aug in augmentations:
        tfm = aug.get_transform(image, sem_seg, rng)
        image = tfm.apply_image(image)
        if sem_seg is not None:
            sem_seg = tfm.apply_segmentation(sem_seg)
        transforms.append(tfm)
    return image, sem_seg, TransformList(transforms)


def build_augmentations(cfg: Any, is_train: bool) -> list[Augmentation]:
    """The augmentations ``cfg.INPUT`` describes, for training or test.

    Args:
        cfg: config with the ``INPUT`` keys of ``config/defaults.py``.
        is_train: training pipeline (random resize, crop, flip, colour) or test (resize).
    """
    inp = cfg.INPUT
    if not is_train:
        scale = tuple(inp.TEST_SCALE)
        return [ResizeToFit(scale)] if scale and min(scale) > 0 else []
    augs: list[Augmentation] = []
    if inp.RESIZE.ENABLED:
        augs.append(RandomResizeRatio(inp.RESIZE.SCALE, inp.RESIZE.RATIO_RANGE))
    if inp.CROP.ENABLED:
        augs.append(RandomCropCatMax(inp.CROP.SIZE, inp.CROP.CAT_MAX_RATIO,
                                     max_tries=inp.CROP.MAX_TRIES))
    if inp.FLIP:
        augs.append(RandomFlip(inp.FLIP_PROB))
    if inp.COLOR_AUG:
        p = inp.PHOTOMETRIC
        augs.append(PhotometricDistortion(p.BRIGHTNESS_DELTA, p.CONTRAST_RANGE,
                                          p.SATURATION_RANGE, p.HUE_DELTA))
    return augs
