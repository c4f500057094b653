"""A second toy dataset with a vocabulary of its own, for cross-dataset evaluation on a CPU.

``synthetic_ov_val`` is rendered by the toy world's renderer (same backgrounds, sizes, noise)
with a base seed no other split uses, but its images hold only the ten object classes of its
own vocabulary, numbered in its own order (0 = background, then :data:`OV_OBJECTS`). Five of
them are the toy world's unseen classes, so a model trained on ``synthetic_train`` has labels
for background and the other five only: evaluated on this dataset (its full vocabulary; the
seen / unseen groups come from the training dataset, :mod:`zsseg_bench.data.transfer`), it
measures transfer to a class list it was not trained with.

Every class here is one the toy CLIP was pretrained on (it saw captions of all 20 toy classes,
``scripts/pretrain_toy_clip.py``): colour x shape combinations it never saw would test
compositional generalisation of the toy CLIP rather than transfer of the segmentation method.

Layout under ``{root}/synthetic_ov/``: ``images/val/NNNNNN.jpg``, ``labels/val/NNNNNN.png``
(ids of this vocabulary, no ignore pixels) and ``info.json`` (written last: its presence with the
expected content means the dataset is complete).
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np

from zsseg_bench.utils.file_io import atomic_write_bytes, atomic_write_json

from .prepare import JPEG_QUALITY
from .render import render_segmentation_sample
from .world import BACKGROUND_NAME, CLASS_NAMES, WORLD_VERSION, class_name

OV_DIRNAME = "synthetic_ov"
#: (colour, shape) of the object classes, in this dataset's id order (ids 1..10): the toy
#: world's five unseen classes and five of its seen ones, interleaved.
OV_OBJECTS: tuple[tuple[str, str], ...] = (
    ("blue", "ring"), ("red", "circle"), ("yellow", "bar"), ("green", "square"),
    ("cyan", "circle"), ("purple", "bar"), ("red", "triangle"), ("yellow", "circle"),
    ("green", "cross"), ("cyan", "square"),
)  # fmt: skip
OV_CLASS_NAMES: tuple[str, ...] = (BACKGROUND_NAME,) + tuple(class_name(c, s)
                                                             for c, s in OV_OBJECTS)
#: Base seed of the renders (the toy world uses 0 / 1,000,003, the held-out split 5,000,000).
OV_SEED = 7_000_000
DEFAULT_NUM_IMAGES = 200
_TOY_IDS = tuple(CLASS_NAMES.index(n) for n in OV_CLASS_NAMES[1:])
_INFO = "info.json"


def _paths(root: str, index: int) -> tuple[str, str]:
    base = os.path.join(root, OV_DIRNAME)
    return (os.path.join(base, "images", "val", f"{index:06d}.jpg"),
            os.path.join(base, "labels", "val", f"{index:06d}.png"))


def _expected_info(num_images: int) -> dict:
    return {"version": WORLD_VERSION, "seed": OV_SEED, "num_images": num_images,
            "class_names": list(OV_CLASS_NAMES)}


def open_vocab_is_complete(root: str, num_images: int = DEFAULT_NUM_IMAGES) -> bool:
    """Whether ``root`` holds the complete dataset of ``num_images`` images."""
    try:
        with open(os.path.join(root, OV_DIRNAME, _INFO), encoding="utf-8") as f:
            return json.load(f) == _expected_info(num_images)
    except (OSError, ValueError):
        return False


def render_open_vocab_sample(index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image ``index`` (uint8 RGB) and its label map in this dataset's ids (deterministic)."""
    image, toy_label = render_segmentation_sample(OV_SEED, index, object_ids=_TOY_IDS)
    lut = np.zeros(256, dtype=np.uint8)
    lut[list(_TOY_IDS)] = np.arange(1, len(_TOY_IDS) + 1)
    return image, lut[toy_label]


def prepare_open_vocab(root: str, num_images: int = DEFAULT_NUM_IMAGES) -> None:
    """Renders the dataset under ``root`` (idempotent: complete files are kept)."""
    if open_vocab_is_complete(root, num_images):
        return
    for folder in ("images", "labels"):
        os.makedirs(os.path.join(root, OV_DIRNAME, folder, "val"), exist_ok=True)
    for index in range(num_images):
        image_file, label_file = _paths(root, index)
        if os.path.exists(image_file) and os.path.exists(label_file):
            continue
        image, label = render_open_vocab_sample(index)
        ok1, jpg = cv2.imencode(".jpg", image[:, :, ::-1],
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        ok2, png = cv2.imencode(".png", label)
        if not (ok1 and ok2):
            raise RuntimeError(f"OpenCV failed to encode image {index} of {OV_DIRNAME}")
        atomic_write_bytes(image_file, jpg.tobytes())
        atomic_write_bytes(label_file, png.tobytes())
    atomic_write_json(os.path.join(root, OV_DIRNAME, _INFO), _expected_info(num_images))
