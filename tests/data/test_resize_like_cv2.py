"""The OpenCV-compatible resizing of the ADE20K-847 converter, on cases computed by hand."""

from __future__ import annotations

import numpy as np

from zsseg_bench.data.resize_like_cv2 import resize_bilinear, resize_nearest, short_side_size


def test_short_side_rule():
    assert short_side_size(520, 600, 512) == (512, 591)  # round(600 / 520 * 512)
    assert short_side_size(1536, 2048, 512) == (512, 683)
    assert short_side_size(2048, 1536, 512) == (683, 512)
    assert short_side_size(512, 3000, 512) == (512, 3000)  # not above 512: kept
    assert short_side_size(300, 200, 512) == (300, 200)


def test_nearest_takes_floor_of_x_times_scale():
    label = np.arange(6 * 3).reshape(6, 3)
    out = resize_nearest(label, 4, 2)  # rows floor(0, 1.5, 3, 4.5), cols floor(0, 1.5)
    np.testing.assert_array_equal(out, label[[0, 1, 3, 4]][:, [0, 1]])


def test_bilinear_halving_averages_pixel_pairs():
    """Halving samples (x + 0.5) * 2 - 0.5 = 2x + 0.5: the mean of each 2 x 2 block."""
    image = np.array([[0, 4, 100, 200], [8, 12, 50, 250], [1, 1, 9, 9], [3, 3, 9, 9]],
                     dtype=np.uint8)
    out = resize_bilinear(np.stack([image, 255 - image], axis=-1), 2, 2)
    np.testing.assert_array_equal(out[..., 0], [[6, 150], [2, 9]])
    np.testing.assert_array_equal(out[..., 1], [[249, 105], [253, 246]])
    assert out.dtype == np.uint8
    flat = np.full((7, 9), 77, dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(flat, 3, 4), np.full((3, 4), 77))
