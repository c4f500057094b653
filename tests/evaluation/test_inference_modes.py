"""Whole vs sliding-window inference (pure functions of a score function)."""

import pytest
import torch

from zsseg_bench.modeling.inference_modes import (
    pad_to_batch,
    resize_scores,
    slide_inference,
    whole_inference,
    window_starts,
)


@pytest.fixture()
def per_pixel_model():
    torch.manual_seed(0)
    return torch.nn.Conv2d(3, 5, kernel_size=1)


@pytest.mark.parametrize("size,crop,stride,div", [
    ((70, 90), (32, 48), (20, 30), 0),     # overlapping windows, stride not dividing
    ((64, 64), (32, 32), (32, 32), 0),     # tiling without overlap
    ((50, 41), (64, 64), (40, 40), 0),     # image smaller than the window
    ((77, 53), (40, 40), (26, 26), 32),    # windows padded to a multiple of 32
])
@torch.no_grad()
def test_slide_equals_whole_for_a_per_pixel_model(per_pixel_model, size, crop, stride, div):
    image = torch.randn(3, *size)
    whole = whole_inference(per_pixel_model, [image], div)[0]
    slide = slide_inference(per_pixel_model, image, crop, stride, div, num_classes=5)
    assert slide.shape == (5, *size)
    torch.testing.assert_close(slide, whole, rtol=1e-5, atol=1e-5)
    batched = slide_inference(per_pixel_model, image, crop, stride, div, windows_per_batch=1)
    torch.testing.assert_close(batched, slide, rtol=1e-5, atol=1e-5)


def test_overlaps_are_averaged():
    calls = []

    def fn(batch):  # window i scores i everywhere
        calls.append(batch.shape[0])
        return torch.arange(batch.shape[0], dtype=torch.float32).view(-1, 1, 1, 1).expand(
            -1, 1, *batch.shape[-2:])

    out = slide_inference(fn, torch.zeros(3, 10, 16), crop=(10, 10), stride=(10, 6))
    # windows start at x = 0 and 6: columns 6..9 are covered by both (0 + 1) / 2
    assert calls == [2]
    assert torch.all(out[0, :, :6] == 0) and torch.all(out[0, :, 6:10] == 0.5)
    assert torch.all(out[0, :, 10:] == 1)


def test_low_resolution_scores_are_upsampled():
    out = whole_inference(lambda b: torch.ones(b.shape[0], 2, 4, 4), [torch.zeros(3, 32, 24)])
    assert out[0].shape == (2, 32, 24)


def test_whole_inference_crops_each_image_of_a_batch(per_pixel_model):
    images = [torch.randn(3, 20, 30), torch.randn(3, 33, 17)]
    with torch.no_grad():
        together = whole_inference(per_pixel_model, images, 16)
        for img, out in zip(images, together):
            alone = per_pixel_model(img[None])[0]
            torch.testing.assert_close(out, alone, rtol=1e-5, atol=1e-5)


def test_window_starts_cover_and_end_at_border():
    assert window_starts(100, 40, 30) == [0, 30, 60]
    assert window_starts(40, 64, 10) == [0]
    for length, crop, stride in [(512, 512, 426), (700, 512, 426), (1000, 96, 17)]:
        starts = window_starts(length, crop, stride)
        assert starts[0] == 0 and starts[-1] + crop == max(length, crop)
        assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


def test_pad_and_resize_helpers():
    batch = pad_to_batch([torch.ones(5, 7), torch.ones(3, 9)], 4, pad_value=255)
    assert batch.shape == (2, 8, 12)
    assert batch[0, 5:].eq(255).all() and batch[1, :3, :9].eq(1).all()
    assert resize_scores(torch.zeros(2, 4, 4), (8, 6)).shape == (2, 8, 6)
