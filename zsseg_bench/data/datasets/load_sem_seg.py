"""Generic loader of a semantic segmentation dataset stored as image / label folder pairs.

Used for the toy world and reused for the real datasets (VOC, COCO-Stuff, Context): each pairs
``<image_root>/<stem>.<image_ext>`` with ``<gt_root>/<stem>.<gt_ext>``. Problems stop the run
with one :class:`UserError` naming the file and the fix; nothing is skipped silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from PIL import Image, UnidentifiedImageError

from zsseg_bench.data.file_listing import files_by_stem, listing
from zsseg_bench.utils.errors import UserError

logger = logging.getLogger(__name__)

def _image_size(path: str) -> tuple[int, int]:
    try:
        with Image.open(path) as img:  # reads the header only
            width, height = img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image file {path} ({e}); re-run the dataset's prepare "
                        f"script (or replace the file)") from e
    return height, width


def load_sem_seg(
    gt_root: str,
    image_root: str,
    gt_ext: str = "png",
    image_ext: str = "jpg",
    *,
    stems: Sequence[str] | None = None,
    missing_hint: str = "",
    read_sizes: bool = True,
) -> list[dict]:
    """Lists the (image, label) pairs of a dataset as Detectron2 dataset dicts.

    Args:
        gt_root: folder of label PNGs (single channel, class ids, 255 = ignore).
        image_root: folder of images.
        gt_ext: label file extension.
        image_ext: image file extension.
        stems: the file names (without extension) that make up this split, e.g. from an
            official split list; ``None`` = every image of ``image_root`` (every one must then
            have a label and every label an image).
        missing_hint: what to do when a folder is missing (e.g. the prepare script to run and
            the expected layout); appended to the error message.
        read_sizes: read ``height``/``width`` from the image headers (fast: no decoding).

    Returns:
        Dicts with ``file_name``, ``sem_seg_file_name``, ``image_id`` (the stem) and, when
        ``read_sizes``, ``height`` and ``width``; sorted by stem.

    Raises:
        UserError: a folder is missing or empty, an image has no label (or, without ``stems``, a
            label has no image), or a listed stem has no image.
    """
    hint = f"; {missing_hint}" if missing_hint else ""
    for kind, root in (("image", image_root), ("label", gt_root)):
        if not os.path.isdir(root):
            raise UserError(f"{kind} folder not found: {root}{hint}")
    images = files_by_stem(image_root, image_ext)
    labels = files_by_stem(gt_root, gt_ext)
    if stems is None:
        if not images:
            raise UserError(f"no *.{image_ext} image in {image_root}{hint}")
        wanted = sorted(images)
        orphans = sorted(set(labels) - set(images))
        if orphans:
            raise UserError(
                f"label(s) without an image in {image_root}: "
                f"{listing([os.path.join(gt_root, labels[s]) for s in orphans])}; "
                f"the dataset is incomplete: re-run its prepare script{hint}")
    else:
        wanted = sorted(dict.fromkeys(stems))
        no_image = [s for s in wanted if s not in images]
        if no_image:
            raise UserError(
                f"image(s) of the split list missing: "
                f"{listing([os.path.join(image_root, f'{s}.{image_ext}') for s in no_image])}"
                f"{hint}")
    no_label = [s for s in wanted if s not in labels]
    if no_label:
        raise UserError(
            f"image(s) without a label: "
            f"{listing([os.path.join(image_root, images[s]) for s in no_label])} "
            f"(expected {os.path.join(gt_root, '<name>.' + gt_ext)}); the dataset is "
            f"incomplete: re-run its prepare script{hint}")
    dicts = []
    for stem in wanted:
        record = {
            "file_name": os.path.join(image_root, images[stem]),
            "sem_seg_file_name": os.path.join(gt_root, labels[stem]),
            "image_id": stem,
        }
        if read_sizes:
            record["height"], record["width"] = _image_size(record["file_name"])
        dicts.append(record)
    logger.info("Loaded %d images with labels from %s", len(dicts), image_root)
    return dicts
