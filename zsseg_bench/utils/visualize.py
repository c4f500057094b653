"""Side-by-side pictures of predictions: image | ground truth | prediction, with a legend.

The legend lists every class that occurs in the ground truth or the prediction, with its colour;
unseen classes are marked ``[unseen]`` (and written in a highlight colour), so zero-shot
successes and failures show at a glance. Ignore pixels are drawn in a light grey.
``zsseg-bench eval --vis N`` writes one such PNG for each of the first N images;
``zsseg-bench predict`` draws the prediction over the image (:func:`draw_overlay`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from zsseg_bench.utils.file_io import atomic_write_bytes

__all__ = ["palette", "colorize", "draw_comparison", "draw_overlay", "save_comparison",
           "save_png"]

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
        colours: ``N x 3`` uint8 colours (default :func:`palette`).
        title: optional line above the panels (e.g. the image id).

    Returns:
        The picture, uint8 RGB.
    """
    colours = palette(len(class_names)) if colours is None else np.asarray(colours, np.uint8)
    panels = [("image", image)]
    if gt is not None:
        panels.append(("ground truth", colorize(gt, colours)))
    panels.append(("prediction", colorize(pred, colours)))
    present = set(np.unique(pred).tolist())
    if gt is not None:
        present |= set(np.unique(gt).tolist())
    return _compose(panels, present, class_names, unseen_classes, colours, title)


def draw_overlay(image: np.ndarray, pred: np.ndarray, class_names: Sequence[str],
                 unseen_classes: Sequence[int] = (), colours: np.ndarray | None = None,
                 title: str | None = None, alpha: float = 0.5) -> np.ndarray:
    """Draws the prediction's colours blended over the image, with a legend of the classes
    shown (arguments as :func:`draw_comparison`; ``alpha``: weight of the colours)."""
    colours = palette(len(class_names)) if colours is None else np.asarray(colours, np.uint8)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colorize(pred, colours)
    panel = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return _compose([("prediction", panel)], set(np.unique(pred).tolist()), class_names,
                    unseen_classes, colours, title)


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
