"""Deterministic procedural renderer of the toy world (numpy + OpenCV).

A scene is a textured, low-saturation background with 0-4 coloured shapes on top. The label map
holds the class id of every pixel (``0`` = background); there are no ignore pixels. Object
masks are drawn without anti-aliasing and the image uses the very same masks, so image and label
agree pixel for pixel (the JPEG encoding of the prepared dataset blurs edges slightly).

Everything is a pure function of a ``numpy.random.Generator``; callers derive generators from
``numpy.random.SeedSequence`` so any image can be re-rendered from (seed, index) alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .world import CLASS_ATTRIBUTES, COLOURS, OBJECT_CLASS_IDS

# --- Rendering constants (design choices of the toy world, not from a paper) -------------------
#: Segmentation images: height and width drawn independently, uniformly in this range (px).
SEG_IMAGE_SIZE_RANGE = (160, 224)
#: Segmentation images: number of objects per image (inclusive range).
SEG_NUM_OBJECTS_RANGE = (1, 4)
#: Object size (side of the bounding square of the shape, px) in segmentation images.
SEG_OBJECT_SIZE_RANGE = (28, 64)
#: Per-channel uniform jitter of an object's colour (0-255 scale).
COLOUR_JITTER = 14
#: Std of per-pixel Gaussian noise on objects and background (0-255 scale).
PIXEL_NOISE_STD = 6.0
#: Maximal in-plane rotation of shapes (degrees); small, so shapes stay canonical.
MAX_ROTATION_DEG = 12.0
#: Background base colours: muted, low saturation (greys, beiges, browns, dull olive).
BACKGROUND_PALETTE = (
    (128, 128, 128), (96, 96, 96), (160, 160, 155), (150, 135, 115), (120, 105, 90),
    (110, 115, 100), (175, 165, 145), (85, 80, 75), (140, 140, 150), (105, 110, 120),
)  # fmt: skip
#: Amplitude (0-255) of the low-frequency background texture.
BACKGROUND_TEXTURE_AMPLITUDE = 28.0
#: Size (px) of the cells of the background texture: same pixel scale on every canvas size.
BACKGROUND_CELL_PX_RANGE = (12.0, 40.0)
#: Attempts to place an object without overlapping earlier ones before allowing overlap.
PLACEMENT_TRIES = 20
#: Domain tag mixed into segmentation-image seeds (keeps them apart from caption/probe seeds).
SEG_SEED_DOMAIN = 1


@dataclass(frozen=True)
class PlacedObject:
    """One object of a rendered scene (centre and size in pixels, angle in degrees)."""

    class_id: int
    cx: float
    cy: float
    size: float
    angle: float


def _rotate(points: np.ndarray, cx: float, cy: float, angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return points @ rot.T + np.array([cx, cy])


def _poly(mask: np.ndarray, pts: np.ndarray, cx: float, cy: float, angle: float) -> None:
    pts = _rotate(pts, cx, cy, angle)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, lineType=cv2.LINE_8)


def shape_mask(shape: str, height: int, width: int, cx: float, cy: float, size: float,
               angle: float = 0.0) -> np.ndarray:
    """Binary uint8 mask (H x W) of one shape whose bounding square has side ``size``.

    Args:
        shape: one of :data:`~zsseg_bench.data.synthetic.world.SHAPES`.
        height, width: canvas size.
        cx, cy: centre (px).
        size: side of the bounding square (px).
        angle: in-plane rotation in degrees (ignored for circle and ring).
    """
    mask = np.zeros((height, width), np.uint8)
    h = size / 2.0
    centre = (int(round(cx)), int(round(cy)))
    if shape == "circle":
        cv2.circle(mask, centre, max(1, int(round(h))), 1, -1, lineType=cv2.LINE_8)
    elif shape == "ring":
        cv2.circle(mask, centre, max(2, int(round(h))), 1, -1, lineType=cv2.LINE_8)
        cv2.circle(mask, centre, max(1, int(round(0.5 * h))), 0, -1, lineType=cv2.LINE_8)
    elif shape == "square":
        s = 0.85 * h  # squares look larger than disks of the same extent
        _poly(mask, np.array([[-s, -s], [s, -s], [s, s], [-s, s]]), cx, cy, angle)
    elif shape == "triangle":
        _poly(mask, np.array([[0.0, -h], [h, 0.8 * h], [-h, 0.8 * h]]), cx, cy, angle)
    elif shape == "cross":
        t = h / 3.0
        pts = np.array([
            [-t, -h], [t, -h], [t, -t], [h, -t], [h, t], [t, t],
            [t, h], [-t, h], [-t, t], [-h, t], [-h, -t], [-t, -t],
        ])  # fmt: skip
        _poly(mask, pts, cx, cy, angle)
    elif shape == "bar":
        bh = h / 3.0
        _poly(mask, np.array([[-h, -bh], [h, -bh], [h, bh], [-h, bh]]), cx, cy, angle)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask


def render_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Textured low-saturation background, float32 H x W x 3 (0-255 scale)."""
    base = np.array(BACKGROUND_PALETTE[rng.integers(len(BACKGROUND_PALETTE))], np.float32)
    base = base + rng.uniform(-12, 12, size=3).astype(np.float32)
    # Low-frequency texture: a coarse random grid upsampled bicubically, mostly achromatic.
    cell_px = rng.uniform(*BACKGROUND_CELL_PX_RANGE)
    cells = max(2, int(round(max(height, width) / cell_px)))
    coarse = rng.standard_normal((cells, cells, 1)).astype(np.float32)
    coarse = coarse + 0.25 * rng.standard_normal((cells, cells, 3)).astype(np.float32)
    tex = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    img = base + BACKGROUND_TEXTURE_AMPLITUDE * tex
    # Linear gradient across the image.
    g = rng.uniform(-20, 20, size=2)
    yy = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None, None]
    xx = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :, None]
    return img + g[0] * yy + g[1] * xx


def _place(rng: np.random.Generator, height: int, width: int, size: float,
           placed: Sequence[PlacedObject]) -> tuple[float, float]:
    h = size / 2.0
    lo_x, hi_x = h, max(h, width - h)
    lo_y, hi_y = h, max(h, height - h)
    cx = cy = 0.0
    for _ in range(PLACEMENT_TRIES):
        cx, cy = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        if all(max(abs(cx - o.cx), abs(cy - o.cy)) > (size + o.size) / 2.0 + 2 for o in placed):
            break
    return float(cx), float(cy)


def render_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    class_ids: Sequence[int],
    size_range: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, list[PlacedObject]]:
    """Render one scene with the given object classes (drawn in order, later on top).

    Args:
        rng: random generator (all randomness comes from it).
        height, width: image size in pixels.
        class_ids: object class ids to draw (may repeat; empty -> background only).
        size_range: (min, max) side of an object's bounding square in pixels.

    Returns:
        (image uint8 H x W x 3 RGB, label uint8 H x W of class ids, placed objects).
    """
    img = render_background(rng, height, width)
    label = np.zeros((height, width), np.uint8)
    placed: list[PlacedObject] = []
    for cid in class_ids:
        attr = CLASS_ATTRIBUTES[cid]
        if attr is None:
            raise ValueError("class_ids must be object classes (background is implicit)")
        colour, shape = attr
        size = float(rng.uniform(*size_range))
        size = min(size, float(min(height, width)))
        angle = float(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
        cx, cy = _place(rng, height, width, size, placed)
        m = shape_mask(shape, height, width, cx, cy, size, angle).astype(bool)
        rgb = np.array(COLOURS[colour], np.float32) + rng.uniform(
            -COLOUR_JITTER, COLOUR_JITTER, size=3
        ).astype(np.float32)
        shade = rng.uniform(-10, 10)  # mild brightness gradient across the object
        ys, xs = np.nonzero(m)
        grad = shade * ((ys - cy) / max(size, 1.0))[:, None]
        img[ys, xs] = rgb[None, :] + grad
        label[m] = cid
        placed.append(PlacedObject(cid, cx, cy, size, angle))
    img = img + rng.normal(0.0, PIXEL_NOISE_STD, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).round().astype(np.uint8), label, placed


def seg_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of segmentation image ``index`` of a split with seed ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([SEG_SEED_DOMAIN, seed, index]))


def render_segmentation_sample(seed: int, index: int,
                               object_ids: Sequence[int] = OBJECT_CLASS_IDS,
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Render segmentation image ``index`` of the split seeded by ``seed`` (deterministic).

    All object classes (seen and unseen) may appear, or only ``object_ids`` (the toy
    open-vocabulary world); the zero-shot split is applied later by the data pipeline.

    Returns:
        (image uint8 H x W x 3 RGB, label uint8 H x W class ids, no ignore pixels).
    """
    rng = seg_rng(seed, index)
    height = int(rng.integers(SEG_IMAGE_SIZE_RANGE[0], SEG_IMAGE_SIZE_RANGE[1] + 1))
    width = int(rng.integers(SEG_IMAGE_SIZE_RANGE[0], SEG_IMAGE_SIZE_RANGE[1] + 1))
    n = int(rng.integers(SEG_NUM_OBJECTS_RANGE[0], SEG_NUM_OBJECTS_RANGE[1] + 1))
    ids = [int(c) for c in rng.choice(object_ids, size=n, replace=True)]
    image, label, _ = render_scene(rng, height, width, ids, SEG_OBJECT_SIZE_RANGE)
    return image, label
