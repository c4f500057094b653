"""Whole-image and sliding-window inference, shared by every method (``cfg.TEST.MODE``).

Pure functions of a score function ``fn(batch) -> B x K x h x w`` (any resolution; upsampled
bilinearly to the batch size here when needed), so the meta-architecture uses them for every
head and tests can use them with any per-pixel model. With ``with_sizes=True`` the function is
called as ``fn(batch, image_sizes)``: the (h, w) of each batch element without its padding
(detectron2's ``ImageList.image_sizes``), for methods that must not look at the padding.

- ``whole``: the images are padded into one batch (to a multiple of ``size_divisibility``),
  scored at once and each result is cropped back to its own size.
- ``slide`` (mmseg's ``slide_inference``): windows of ``crop`` pixels every ``stride`` pixels,
  the last row/column of windows shifted back to end at the border; scores of overlapping
  windows are averaged per pixel. An image smaller than the window is a single window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def _round_up(x: int, divisor: int) -> int:
    return x if divisor <= 1 else (x + divisor - 1) // divisor * divisor


def pad_to_batch(tensors: Sequence[torch.Tensor], size_divisibility: int = 0,
                 pad_value: float = 0.0) -> torch.Tensor:
    """Pads tensors (``... x H x W``) at the bottom/right to a common size and stacks them.

    Args:
        tensors: same leading shape, any H x W.
        size_divisibility: the common size is rounded up to a multiple of this (0/1: no rounding).
        pad_value: value of padded pixels (0 for normalised images, 255 for labels).

    Returns:
        ``B x ... x H_max x W_max``.
    """
    if not tensors:
        raise ValueError("pad_to_batch needs at least one tensor")
    max_h = _round_up(max(int(t.shape[-2]) for t in tensors), size_divisibility)
    max_w = _round_up(max(int(t.shape[-1]) for t in tensors), size_divisibility)
    first = tensors[0]
    batch = first.new_full((len(tensors), *first.shape[:-2], max_h, max_w), pad_value)
    for i, t in enumerate(tensors):
        batch[i, ..., : t.shape[-2], : t.shape[-1]].copy_(t)
    return batch


def _size(image: torch.Tensor) -> tuple[int, int]:
    return int(image.shape[-2]), int(image.shape[-1])


def resize_scores(scores: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of ``K x h x w`` (or ``B x K x h x w``) scores to ``size`` = (H, W)."""
    size = (int(size[0]), int(size[1]))
    if tuple(scores.shape[-2:]) == size:
        return scores
    squeeze = scores.dim() == 3
    out = F.interpolate(scores[None] if squeeze else scores, size=size, mode="bilinear",
                        align_corners=False)
    return out[0] if squeeze else out


def _score(fn: ScoreFn, batch: torch.Tensor,
           sizes: list[tuple[int, int]] | None = None) -> torch.Tensor:
    scores = fn(batch) if sizes is None else fn(batch, sizes)
    if scores.dim() != 4 or scores.shape[0] != batch.shape[0]:
        raise ValueError(f"the score function must return B x K x h x w for a batch of "
                         f"{batch.shape[0]}, got shape {tuple(scores.shape)}")
    return resize_scores(scores, batch.shape[-2:])


def whole_inference(fn: ScoreFn, images: Sequence[torch.Tensor] | torch.Tensor,
                    size_divisibility: int = 0, with_sizes: bool = False) -> list[torch.Tensor]:
    """Scores whole images in one padded batch.

    Args:
        fn: ``B x 3 x H x W`` -> ``B x K x h x w`` scores.
        images: ``3 x H_i x W_i`` tensors (or a ``B x 3 x H x W`` batch).
        size_divisibility: pad the batch to a multiple of this.
        with_sizes: call ``fn(batch, image_sizes)`` (module docstring).

    Returns:
        One ``K x H_i x W_i`` score map per image, at the image's own size.
    """
    images = list(images)
    sizes = [_size(img) for img in images] if with_sizes else None
    scores = _score(fn, pad_to_batch(images, size_divisibility), sizes)
    return [s[:, : img.shape[-2], : img.shape[-1]] for s, img in zip(scores, images)]


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Start offsets of the windows along one axis (mmseg's grid; the last one ends at the
    border; a single window at 0 when ``length <= crop``)."""
    if crop <= 0 or stride <= 0:
        raise ValueError(f"slide inference needs positive crop and stride, got {crop}, {stride}")
    num = max(length - crop + stride - 1, 0) // stride + 1
    return sorted({max(min(i * stride + crop, length) - crop, 0) for i in range(num)})


def slide_inference(fn: ScoreFn, image: torch.Tensor, crop: Sequence[int],
                    stride: Sequence[int], size_divisibility: int = 0,
                    num_classes: int | None = None,
                    windows_per_batch: int | None = None,
                    with_sizes: bool = False) -> torch.Tensor:
    """Scores one image with overlapping windows whose scores are averaged.

    Args:
        fn: ``B x 3 x h x w`` -> ``B x K x h' x w'`` scores.
        image: ``3 x H x W`` (one image).
        crop: window (height, width).
        stride: step (height, width) between windows.
        size_divisibility: each batch of windows is padded to a multiple of this.
        num_classes: expected K (checked when given).
        windows_per_batch: windows scored per call of ``fn`` (None: all at once).
        with_sizes: call ``fn(batch, image_sizes)`` with each window's size (module docstring).

    Returns:
        ``K x H x W`` scores.
    """
    if image.dim() != 3:
        raise ValueError(f"slide_inference takes one 3 x H x W image, got {tuple(image.shape)}")
    height, width = int(image.shape[-2]), int(image.shape[-1])
    crop_h, crop_w = int(crop[0]), int(crop[1])
    boxes = [(y, x, min(y + crop_h, height), min(x + crop_w, width))
             for y in window_starts(height, crop_h, int(stride[0]))
             for x in window_starts(width, crop_w, int(stride[1]))]
    step = windows_per_batch or len(boxes)
    total: torch.Tensor | None = None
    count = image.new_zeros((1, height, width))
    for start in range(0, len(boxes), step):
        chunk = boxes[start: start + step]
        windows = [image[:, y0:y1, x0:x1] for y0, x0, y1, x1 in chunk]
        sizes = [_size(w) for w in windows] if with_sizes else None
        scores = _score(fn, pad_to_batch(windows, size_divisibility), sizes)
        if total is None:
            if num_classes is not None and scores.shape[1] != num_classes:
                raise ValueError(f"the score function returned {scores.shape[1]} classes, "
                                 f"expected {num_classes}")
            total = scores.new_zeros((scores.shape[1], height, width))
        for s, (y0, x0, y1, x1) in zip(scores, chunk):
            total[:, y0:y1, x0:x1] += s[:, : y1 - y0, : x1 - x0]
            count[:, y0:y1, x0:x1] += 1
    assert total is not None and bool((count > 0).all()), "windows must cover the image"
    return total / count.to(total.dtype)
