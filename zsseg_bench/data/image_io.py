"""Reading images and label maps, with one clear :class:`UserError` per kind of bad file.

Shared by the dataset mapper (training and test images) and the evaluator (ground truth), so a
broken file gives the same message wherever it is met.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from zsseg_bench.data.zero_shot import IGNORE_LABEL, WIDE_IGNORE_LABEL
from zsseg_bench.utils.errors import UserError

_REGENERATE = "re-run the dataset's prepare script (or replace the file)"


def read_image(path: str, image_format: str = "RGB", hint: str = _REGENERATE) -> np.ndarray:
    """Reads an image as an H x W x 3 uint8 array (EXIF orientation applied, as detectron2).

    Args:
        path: image file.
        image_format: ``"RGB"`` or ``"BGR"`` channel order of the result.
        hint: what to do about a bad file (the end of the error message).

    Raises:
        UserError: the file is missing or not a readable image.
    """
    if image_format not in ("RGB", "BGR"):
        raise UserError(f"INPUT.FORMAT: unknown image format '{image_format}'; use RGB or BGR")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            array = np.array(img.convert("RGB"))
    except FileNotFoundError as e:
        raise UserError(f"image file not found: {path}; {hint}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image file {path} ({e}); {hint}") from e
    if image_format == "BGR":
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)


def read_sem_seg(path: str, num_classes: int | None = None,
                 ignore_label: int = IGNORE_LABEL) -> np.ndarray:
    """Reads a label map (single-channel PNG of class ids) as an H x W array.

    Two formats, chosen by the dataset's ``ignore_label`` (its metadata):

    - 255 (every dataset of at most 254 classes): an 8-bit PNG, returned as uint8;
    - :data:`~zsseg_bench.data.zero_shot.WIDE_IGNORE_LABEL` (65535; ADE20K-847, PASCAL
      Context-459): a 16-bit PNG (8-bit accepted too), returned as int32, so that no id is
      truncated and torch can index with it.

    Args:
        path: label file.
        num_classes: size of the dataset's class list; when given, every value must lie in
            ``0 .. num_classes-1`` or be ``ignore_label``.
        ignore_label: the value of pixels without a label (255 or 65535).

    Raises:
        UserError: the file is missing, unreadable, not single-channel, or holds a value outside
            the class list.
    """
    try:
        with Image.open(path) as img:
            mode = img.mode
            label = np.array(img)
    except FileNotFoundError as e:
        raise UserError(f"label file not found: {path}; {_REGENERATE}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read label file {path} ({e}); {_REGENERATE}") from e
    if label.ndim != 2:
        raise UserError(f"label file {path} has {label.shape[2]} channels (mode {mode}); label "
                        f"maps must be single-channel PNGs of class ids ({ignore_label} = "
                        f"ignore)")
    if ignore_label == WIDE_IGNORE_LABEL:
        if label.size and (label.min() < 0 or label.max() > WIDE_IGNORE_LABEL):
            raise UserError(f"label file {path} holds values outside 0..{WIDE_IGNORE_LABEL} "
                            f"(mode {mode}); label maps must hold class ids "
                            f"({WIDE_IGNORE_LABEL} = ignore)")
        label = label.astype(np.int32)
    elif ignore_label != IGNORE_LABEL:
        raise ValueError(f"ignore_label must be {IGNORE_LABEL} or {WIDE_IGNORE_LABEL}, "
                         f"got {ignore_label}")
    elif label.dtype != np.uint8:
        if label.size and (label.min() < 0 or label.max() > IGNORE_LABEL):
            raise UserError(f"label file {path} holds values outside 0..255 (mode {mode}); "
                            f"label maps must hold class ids (255 = ignore)")
        label = label.astype(np.uint8)
    if num_classes is not None:
        check_label_values(label, num_classes, path, ignore_label)
    return label


def check_label_values(label: np.ndarray, num_classes: int, path: str,
                       ignore_label: int = IGNORE_LABEL) -> None:
    """Raises :class:`UserError` if ``label`` holds a value that is neither a class id below
    ``num_classes`` nor ``ignore_label``; the message names ``path`` and the bad values.

    ``label`` is uint8 when ``ignore_label`` is 255, else integers in 0..65535."""
    size = max(256, ignore_label + 1)
    counts = np.bincount(np.asarray(label, dtype=np.uint8 if size == 256 else np.int64).ravel(),
                         minlength=size)
    counts[ignore_label] = 0
    bad = np.flatnonzero(counts[num_classes:]) + num_classes
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:10].tolist())
        raise UserError(f"label file {path} holds value(s) {shown} outside the class list "
                        f"0..{num_classes - 1} ({ignore_label} = ignore); the labels do not "
                        f"match the dataset's classes: {_REGENERATE}")
