"""The resizing of Mask2Former's ADE20K-full converter, without OpenCV.

``datasets/prepare_ade20k_full_sem_seg.py`` of facebookresearch/MaskFormer @ da3e60d (the script
Mask2Former, SAN and CAT-Seg take their ADE20K-847 data from) shrinks every image whose short
side exceeds 512 pixels to a short side of 512 (the long side ``round(long / short * 512)``),
the image with ``cv2.INTER_LINEAR``, the label map with ``cv2.INTER_NEAREST``. The suite does not
depend on OpenCV; these functions follow OpenCV's definitions of the two modes:

- nearest: output pixel ``x`` takes input pixel ``min(floor(x * src / dst), src - 1)`` (no
  half-pixel offset), exactly;
- bilinear: output pixel ``x`` samples input coordinate ``(x + 0.5) * src / dst - 0.5`` (clamped
  to the border), no antialiasing, in OpenCV's fixed-point arithmetic.

Both were compared with ``cv2.resize`` (opencv-python 5.0.0) on random images shrunk as the
converter does (e.g. 2048x1536 -> 683x512): identical outputs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resize_bilinear", "resize_nearest", "short_side_size"]


def short_side_size(height: int, width: int, max_short_side: int) -> tuple[int, int]:
    """(height, width) after shrinking the short side to ``max_short_side`` if it is longer
    (Python's ``round`` for the long side, as the official script); else unchanged."""
    if width >= height > max_short_side:
        return max_short_side, round(width / float(height) * max_short_side)
    if height >= width > max_short_side:
        return round(height / float(width) * max_short_side), max_short_side
    return height, width


def _nearest_index(src: int, dst: int) -> np.ndarray:
    inverse_scale = 1.0 / (dst / src)  # as OpenCV: 1 / fx with fx = dst / src
    return np.minimum(np.floor(np.arange(dst) * inverse_scale).astype(np.int64), src - 1)


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` (H x W [x C]) resized to ``height x width`` as ``cv2.INTER_NEAREST``."""
    rows = _nearest_index(array.shape[0], height)
    cols = _nearest_index(array.shape[1], width)
    return array[rows[:, None], cols[None, :]]


#: Fixed-point bits of OpenCV's linear resize coefficients (``INTER_RESIZE_COEF_BITS``).
_COEF_BITS = 11


def _linear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output pixel: left tap, right tap and their fixed-point weights (sum 2048)."""
    coord = ((np.arange(dst) + 0.5) * (src / dst) - 0.5).astype(np.float32)
    left = np.floor(coord).astype(np.int64)
    frac = (coord - left).astype(np.float32)
    border = (left < 0) | (left >= src - 1)  # OpenCV: weight 0 on the border tap
    frac[border] = 0.0
    left = np.clip(left, 0, src - 1)
    right = np.minimum(left + 1, src - 1)
    one = 1 << _COEF_BITS
    return (left, right, np.rint((1 - frac) * one).astype(np.int64),
            np.rint(frac * one).astype(np.int64))


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 ``image`` (H x W [x C]) shrunk to ``height x width`` as ``cv2.INTER_LINEAR``.

    Horizontal pass in 11-bit fixed point, vertical pass with the rounding of OpenCV's SIMD
    path (``VResizeLinearVec_32s8u``); the result equals OpenCV's (checked against
    opencv-python 5.0.0 on downscaling, the only use here)."""
    top, bottom, wy0, wy1 = _linear_taps(image.shape[0], height)
    left, right, wx0, wx1 = _linear_taps(image.shape[1], width)
    extra = (1,) * (image.ndim - 2)
    data = image.astype(np.int64)
    rows = data[:, left] * wx0.reshape(1, -1, *extra) + data[:, right] * wx1.reshape(1, -1, *extra)
    wy0, wy1 = wy0.reshape(-1, 1, *extra), wy1.reshape(-1, 1, *extra)
    out = (((rows[top] >> 4) * wy0) >> 16) + (((rows[bottom] >> 4) * wy1) >> 16)
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8)
