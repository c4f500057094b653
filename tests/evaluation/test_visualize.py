"""Side-by-side pictures: layout, legend marking unseen classes, PNG output."""

import numpy as np
from PIL import Image

from zsseg_bench.utils.visualize import colorize, draw_comparison, palette, save_comparison

NAMES = ["background", "red circle", "blue ring"]
UNSEEN_MARK = np.array([200, 0, 0])


def _inputs():
    image = np.full((40, 50, 3), 128, dtype=np.uint8)
    gt = np.zeros((40, 50), dtype=np.uint8)
    gt[10:20, 10:20] = 2
    gt[0, :] = 255
    pred = np.zeros((40, 50), dtype=np.int64)
    pred[10:20, 10:20] = 1
    return image, gt, pred


def _has_mark(picture):
    return bool(np.all(picture == UNSEEN_MARK, axis=-1).any())


def test_three_panels_and_unseen_marked():
    image, gt, pred = _inputs()
    picture = draw_comparison(image, gt, pred, NAMES, unseen_classes=[2])
    assert picture.dtype == np.uint8 and picture.shape[1] >= 3 * 50
    assert _has_mark(picture)
    assert not _has_mark(draw_comparison(image, gt, pred, NAMES, unseen_classes=[]))
    # the unseen class occurs nowhere: nothing is marked
    assert not _has_mark(draw_comparison(image, None, pred, NAMES, unseen_classes=[2]))


def test_colorize_and_palette():
    colours = palette(3)
    assert len({tuple(c) for c in colours}) == 3
    out = colorize(np.array([[0, 1, 255]]), colours)
    assert (out[0, 2] == (210, 210, 210)).all() and (out[0, 1] == colours[1]).all()


def test_save_comparison_writes_png(tmp_path):
    image, gt, pred = _inputs()
    path = tmp_path / "sub" / "x.png"
    save_comparison(path, image, gt, pred, NAMES, [2], title="x")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
