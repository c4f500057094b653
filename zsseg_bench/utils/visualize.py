"""Side-by-side pictures of predictions: image | ground truth | prediction, with a legend.

The legend lists every class that occurs in the ground truth or the prediction, with its colour;
unseen classes are marked ``[unseen]`` (and written in a highlight colour), so zero-shot
successes and failures show at a glance. Ignore pixels are drawn in a light grey.
``zsseg-bench eval --vis N`` writes one such PNG for each of the first N images;
``zsseg-bench predict`` draws the image beside the prediction over it (:func:`draw_overlay`).

Colours come from the class names (:func:`class_palette`): a class named after a colour ("blue
ring", "black car") is drawn in a shade of that colour, every other class in a distinct
saturated colour far from those; no two classes share a colour, and region outlines keep dark
and grey classes visible over any image.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from zsseg_bench.utils.file_io import atomic_write_bytes

__all__ = ["class_palette", "palette", "colorize", "draw_comparison", "draw_overlay",
           "save_comparison", "save_png"]

#: Colour of ignore pixels (and of ids outside the palette).
IGNORE_COLOR = (210, 210, 210)
#: Panels are upscaled (nearest) by an integer factor to at least this height.
MIN_PANEL_HEIGHT = 256
_MARGIN = 6
_SWATCH = 12
_TITLE_H = 18
_BG = (255, 255, 255)
_TEXT = (0, 0, 0)
_UNSEEN_TEXT = (200, 0, 0)


#: Colour words of class names and the colour each is drawn in (RGB). Black, grey and white stay
#: visible: their swatches and regions are outlined.
COLOUR_WORDS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 80, 230),
    "yellow": (240, 215, 20), "purple": (150, 50, 200), "violet": (140, 80, 220),
    "cyan": (20, 200, 215), "teal": (0, 140, 140), "orange": (245, 130, 20),
    "pink": (240, 120, 180), "magenta": (220, 30, 200), "brown": (140, 80, 30),
    "black": (45, 45, 45), "white": (245, 245, 245), "grey": (140, 140, 140),
    "gray": (140, 140, 140), "silver": (190, 190, 200), "gold": (210, 170, 30),
    "navy": (20, 30, 120), "maroon": (120, 20, 30), "olive": (120, 130, 30),
    "lime": (150, 230, 40), "beige": (225, 205, 160),
}
#: Lightness steps (HLS) of the classes that share a colour word, in order.
_SHADES = (0.0, 0.17, -0.15, 0.3, -0.25, 0.4)


def _colour_word(name: str) -> str | None:
    for word in name.lower().replace("-", " ").replace(",", " ").split():
        if word in COLOUR_WORDS:
            return word
    return None


def _shade(rgb: tuple[int, int, int], step: float) -> tuple[int, int, int]:
    import colorsys

    h, lum, s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    lum = min(max(lum + step, 0.12), 0.9)
    return tuple(int(round(255 * c)) for c in colorsys.hls_to_rgb(h, lum, s))


def _candidates(num_classes: int) -> list[tuple[int, int, int]]:
    """Saturated, mid-lightness colours over the hue circle (no black, grey or white), at
    least as many as classes."""
    import colorsys

    out = []
    hues = max(36, num_classes)
    for lum, sat in ((0.5, 0.85), (0.38, 0.8), (0.65, 0.8), (0.3, 0.6), (0.75, 0.65)):
        for k in range(hues):
            r, g, b = colorsys.hls_to_rgb(k / hues, lum, sat)
            out.append((int(round(255 * r)), int(round(255 * g)), int(round(255 * b))))
    return out


def class_palette(class_names: Sequence[str]) -> np.ndarray:
    """One colour per class, ``len(class_names) x 3`` uint8, chosen from the names.

    A name with a colour word (:data:`COLOUR_WORDS`, e.g. "blue ring") gets that colour, in
    another shade for each further class with the same word; every other class gets, in order,
    the saturated colour farthest from all colours given so far. Deterministic; no two classes
    share a colour.
    """
    colours: list[tuple[int, int, int] | None] = [None] * len(class_names)
    used_words: dict[str, int] = {}
    for i, name in enumerate(class_names):
        word = _colour_word(str(name))
        if word is not None:
            k = used_words.get(word, 0)
            used_words[word] = k + 1
            colours[i] = _shade(COLOUR_WORDS[word], _SHADES[k % len(_SHADES)]
                                + 0.05 * (k // len(_SHADES)))
    candidates = np.array(_candidates(len(class_names)), dtype=np.float64)
    taken = [np.array(c, dtype=np.float64) for c in colours if c is not None]
    nearest = np.full(len(candidates), np.inf)
    for c in taken:
        nearest = np.minimum(nearest, np.linalg.norm(candidates - c, axis=1))
    for i in range(len(class_names)):
        if colours[i] is not None:
            continue
        j = int(np.argmax(nearest))  # ties: the first (lowest hue, mid lightness)
        colours[i] = tuple(int(v) for v in candidates[j])
        nearest = np.minimum(nearest, np.linalg.norm(candidates - candidates[j], axis=1))
        nearest[j] = -1.0  # never twice
    out = np.array(colours, dtype=np.int64).reshape(-1, 3)
    # Classes with the same shade (more than the shades of one word): nudge them apart.
    for i in range(len(out)):
        while any((out[i] == out[j]).all() for j in range(i)):
            out[i] = (out[i] + np.array([7, 13, 5])) % 256
    return out.astype(np.uint8)


def palette(num_classes: int) -> np.ndarray:
    """The PASCAL VOC colour map (bit-interleaved, distinct colours) for ``num_classes`` ids,
    ``num_classes x 3`` uint8."""
    colours = np.zeros((num_classes, 3), dtype=np.uint8)
    for i in range(num_classes):
        c, r, g, b = i, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        colours[i] = (r, g, b)
    return colours


def colorize(label: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """H x W class ids -> H x W x 3 RGB; ids without a colour (255 ignore) are light grey."""
    label = np.asarray(label).astype(np.int64)
    out = np.empty((*label.shape, 3), dtype=np.uint8)
    out[:] = IGNORE_COLOR
    valid = (label >= 0) & (label < len(colours))
    out[valid] = colours[label[valid]]
    return out


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def _upscale(panel: np.ndarray, factor: int) -> np.ndarray:
    return panel if factor == 1 else panel.repeat(factor, axis=0).repeat(factor, axis=1)


def draw_comparison(image: np.ndarray, gt: np.ndarray | None, pred: np.ndarray,
                    class_names: Sequence[str], unseen_classes: Sequence[int] = (),
                    colours: np.ndarray | None = None, title: str | None = None) -> np.ndarray:
    """Draws image | ground truth | prediction with a legend of the classes shown.

    Args:
        image: H x W x 3 uint8 RGB.
        gt: H x W class ids (255 = ignore), or None (the panel is left out).
        pred: H x W predicted class ids.
        class_names: names in id order.
        unseen_classes: ids marked ``[unseen]`` in the legend.
        colours: ``N x 3`` uint8 colours (default :func:`class_palette` of the names).
        title: optional line above the panels (e.g. the image id).

    Returns:
        The picture, uint8 RGB.
    """
    colours = class_palette(class_names) if colours is None else np.asarray(colours, np.uint8)
    panels = [("image", image)]
    if gt is not None:
        panels.append(("ground truth", colorize(gt, colours)))
    panels.append(("prediction", colorize(pred, colours)))
    present = set(np.unique(pred).tolist())
    if gt is not None:
        present |= set(np.unique(gt).tolist())
    return _compose(panels, present, class_names, unseen_classes, colours, title)


def outline(labels: np.ndarray) -> np.ndarray:
    """Pixels on the border between two regions of a label map (``H x W`` bool)."""
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def draw_overlay(image: np.ndarray, pred: np.ndarray, class_names: Sequence[str],
                 unseen_classes: Sequence[int] = (), colours: np.ndarray | None = None,
                 title: str | None = None, alpha: float = 0.55) -> np.ndarray:
    """Draws the image beside the prediction's colours blended over it, region borders in
    white, with a legend of the classes shown (arguments as :func:`draw_comparison`;
    ``alpha``: weight of the colours)."""
    colours = class_palette(class_names) if colours is None else np.asarray(colours, np.uint8)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colorize(pred, colours)
    panel = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    panel[outline(pred)] = 255
    return _compose([("image", image), ("prediction", panel)], set(np.unique(pred).tolist()),
                    class_names, unseen_classes, colours, title)


def _compose(panels: list[tuple[str, np.ndarray]], present: set[int],
             class_names: Sequence[str], unseen_classes: Sequence[int], colours: np.ndarray,
             title: str | None) -> np.ndarray:
    """Named panels side by side (upscaled to :data:`MIN_PANEL_HEIGHT`), a legend of the
    ``present`` classes below, an optional title above."""
    height = panels[0][1].shape[0]
    factor = max(1, -(-MIN_PANEL_HEIGHT // max(height, 1)))
    panels = [(name, _upscale(p, factor)) for name, p in panels]
    ph, pw = panels[0][1].shape[:2]
    width = len(panels) * pw + (len(panels) + 1) * _MARGIN

    shown = [c for c in range(len(class_names)) if c in present]
    unseen = set(int(c) for c in unseen_classes)
    font = _font()
    entries = [f"{class_names[c]} [unseen]" if c in unseen else class_names[c] for c in shown]
    entry_w = max([int(font.getlength(e)) for e in entries] + [1]) + _SWATCH + 3 * _MARGIN
    per_row = max(1, (width - _MARGIN) // entry_w)
    rows = -(-len(entries) // per_row)
    top = _MARGIN + (_TITLE_H if title else 0) + _TITLE_H
    legend_top = top + ph + _MARGIN
    canvas = Image.new("RGB", (width, legend_top + rows * (_SWATCH + _MARGIN) + _MARGIN), _BG)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((_MARGIN, _MARGIN), title, fill=_TEXT, font=font)
    for k, (name, panel) in enumerate(panels):
        x = _MARGIN + k * (pw + _MARGIN)
        draw.text((x, top - _TITLE_H + 2), name, fill=_TEXT, font=font)
        canvas.paste(Image.fromarray(panel), (x, top))
    for k, (c, text) in enumerate(zip(shown, entries)):
        x = _MARGIN + (k % per_row) * entry_w
        y = legend_top + (k // per_row) * (_SWATCH + _MARGIN)
        colour = tuple(int(v) for v in colours[c]) if c < len(colours) else IGNORE_COLOR
        draw.rectangle((x, y, x + _SWATCH, y + _SWATCH), fill=colour,
                       outline=_UNSEEN_TEXT if c in unseen else _TEXT,
                       width=2 if c in unseen else 1)
        draw.text((x + _SWATCH + _MARGIN, y), text,
                  fill=_UNSEEN_TEXT if c in unseen else _TEXT, font=font)
    return np.asarray(canvas)


def save_png(path: str | os.PathLike, picture: np.ndarray) -> None:
    """Writes an image array as a PNG to ``path`` (atomically)."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def save_comparison(path: str | os.PathLike, image: np.ndarray, gt: np.ndarray | None,
                    pred: np.ndarray, class_names: Sequence[str],
                    unseen_classes: Sequence[int] = (), colours: np.ndarray | None = None,
                    title: str | None = None) -> None:
    """:func:`draw_comparison` written as a PNG to ``path`` (atomically)."""
    save_png(path, draw_comparison(image, gt, pred, class_names, unseen_classes, colours, title))
