"""Side-by-side pictures: layout, legend marking unseen classes, PNG output."""

import numpy as np
from PIL import Image

from zsseg_bench.utils.visualize import (
    MIN_PANEL_HEIGHT,
    colorize,
    draw_comparison,
    palette,
    save_comparison,
)

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


def _hue_of(rgb):
    import colorsys

    return colorsys.rgb_to_hls(*(np.asarray(rgb) / 255.0))


def test_class_palette_follows_colour_names_and_keeps_every_class_distinct_and_visible():
    from zsseg_bench.data.synthetic import CLASS_NAMES
    from zsseg_bench.utils.visualize import COLOUR_WORDS, class_palette

    names = [*CLASS_NAMES, "black car", "grey road", "cat", "dog", "wall, brick wall"]
    colours = class_palette(names).astype(int)
    assert len({tuple(c) for c in colours}) == len(names)  # distinct
    for name, colour in zip(names, colours):
        word = next((w for w in name.split() if w in COLOUR_WORDS), None)
        if word in ("red", "green", "blue", "yellow", "purple", "cyan"):
            # the class's own colour, in a shade: the same hue ("blue ring" is never green)
            assert abs(_hue_of(colour)[0] - _hue_of(COLOUR_WORDS[word])[0]) < 0.02, name
        elif word is None:  # an invented colour: saturated, neither black nor grey
            hue, lightness, saturation = _hue_of(colour)
            assert saturation > 0.5 and 0.25 < lightness < 0.8, (name, colour)
    # The VOC palette gave class 0 black and class 7 grey, and "blue ring" another hue.
    assert (palette(8)[0] == 0).all()


def test_overlay_shows_the_image_beside_outlined_regions():
    from zsseg_bench.utils.visualize import draw_overlay

    image = np.zeros((40, 50, 3), dtype=np.uint8)  # a black image, a black class on it
    pred = np.zeros((40, 50), dtype=np.int64)
    pred[10:20, 10:20] = 1
    picture = draw_overlay(image, pred, ["background", "black cat"])
    scale = -(-MIN_PANEL_HEIGHT // 40)  # panels are upscaled by this factor
    assert picture.shape[1] >= 2 * 50 * scale  # image | prediction
    top, left = 6 + 18, 6 + 50 * scale + 6  # the prediction panel (margins, its name)

    def at(y, x):
        return picture[top + y * scale + scale // 2, left + x * scale + scale // 2]

    assert (at(10, 10) == 255).all() and (at(10, 15) == 255).all()  # the region's outline
    assert at(15, 15).max() < 60 and (at(15, 15) > 0).any()  # inside: dark, not black
