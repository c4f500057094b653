"""Write the toy segmentation dataset to disk in the layout of the real datasets.

Layout under ``{root}/synthetic/``::

    images/{train,val}/NNNNNN.jpg   RGB, JPEG quality 95
    labels/{train,val}/NNNNNN.png   single channel, class ids (0 = background), no ignore
    info.json                       {"version", "seed", "counts", "class_names", ...}

Preparation is idempotent: existing files are kept (every file is written under a temporary
name and moved into place, so an existing file is complete), and ``info.json`` is written last,
so its presence with the expected version, seed and counts means the dataset is complete.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor

import cv2

from zsseg_bench.utils.file_io import atomic_write_json

from .render import render_segmentation_sample
from .world import CLASS_NAMES, SEEN_CLASS_IDS, UNSEEN_CLASS_IDS, WORLD_VERSION

DATASET_DIRNAME = "synthetic"
SPLITS = ("train", "val")
DEFAULT_NUM_TRAIN = 2000
DEFAULT_NUM_VAL = 500
#: Base seed; split ``s`` uses ``DEFAULT_SEED + SPLIT_SEED_OFFSET[s]`` so splits never share images.
DEFAULT_SEED = 0
SPLIT_SEED_OFFSET = {"train": 0, "val": 1_000_003}
JPEG_QUALITY = 95
INFO_FILE = "info.json"


def image_path(root: str, split: str, index: int) -> str:
    """Path of image ``index`` of ``split`` under datasets root ``root``."""
    return os.path.join(root, DATASET_DIRNAME, "images", split, f"{index:06d}.jpg")


def label_path(root: str, split: str, index: int) -> str:
    """Path of the label PNG of image ``index`` of ``split`` under datasets root ``root``."""
    return os.path.join(root, DATASET_DIRNAME, "labels", split, f"{index:06d}.png")


def split_seed(seed: int, split: str) -> int:
    """Seed of one split derived from the base seed."""
    return seed + SPLIT_SEED_OFFSET[split]


def _write_atomic(path: str, data: bytes) -> None:
    # Rendered files are deterministic and cheap to redo: temp name + rename, without fsync.
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_one(args) -> int:
    root, split, seed, index = args
    img_p, lbl_p = image_path(root, split, index), label_path(root, split, index)
    if os.path.exists(img_p) and os.path.exists(lbl_p):
        return 0
    image, label = render_segmentation_sample(split_seed(seed, split), index)
    ok1, jpg = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    ok2, png = cv2.imencode(".png", label)
    if not (ok1 and ok2):
        raise RuntimeError(f"OpenCV failed to encode image {index} of {split}")
    _write_atomic(img_p, jpg.tobytes())
    _write_atomic(lbl_p, png.tobytes())
    return 1


def _expected_info(seed: int, counts: dict[str, int]) -> dict:
    return {
        "version": WORLD_VERSION,
        "seed": seed,
        "counts": dict(counts),
        "class_names": list(CLASS_NAMES),
        "seen_classes": list(SEEN_CLASS_IDS),
        "unseen_classes": list(UNSEEN_CLASS_IDS),
    }


def read_info(root: str) -> dict | None:
    """The ``info.json`` of a prepared dataset, or ``None`` if absent/unreadable."""
    path = os.path.join(root, DATASET_DIRNAME, INFO_FILE)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def dataset_is_complete(root: str, num_train: int | None = None,
                        num_val: int | None = None, seed: int | None = None) -> bool:
    """Whether ``{root}/synthetic`` holds a complete dataset of the current world version.

    Args:
        root: datasets root.
        num_train, num_val, seed: if given, the dataset must also match them.
    """
    info = read_info(root)
    if info is None or info.get("version") != WORLD_VERSION:
        return False
    if info.get("class_names") != list(CLASS_NAMES):
        return False
    if seed is not None and info.get("seed") != seed:
        return False
    counts = info.get("counts", {})
    wanted = {"train": num_train, "val": num_val}
    for split in SPLITS:
        if wanted[split] is not None and counts.get(split) != wanted[split]:
            return False
        n = counts.get(split, 0)
        if n and not (os.path.exists(image_path(root, split, n - 1))
                      and os.path.exists(label_path(root, split, n - 1))):
            return False
    return True


def prepare_synthetic(
    root: str,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
    seed: int = DEFAULT_SEED,
    num_workers: int = 1,
) -> dict[str, int]:
    """Render the toy segmentation dataset into ``{root}/synthetic`` (idempotent).

    Args:
        root: datasets root (e.g. ``zsseg_bench.data.catalog.get_datasets_root()``).
        num_train, num_val: number of images per split.
        seed: base seed; the same seed always yields the same images.
        num_workers: processes used to render (1 = in this process).

    Returns:
        ``{"train": n_train, "val": n_val, "written": files newly written}``.
    """
    info = read_info(root)
    if info is not None and (info.get("version") != WORLD_VERSION or info.get("seed") != seed):
        # Stale dataset from another world version or seed: re-render everything.
        _remove_split_files(root)
    counts = {"train": int(num_train), "val": int(num_val)}
    for split in SPLITS:
        os.makedirs(os.path.dirname(image_path(root, split, 0)), exist_ok=True)
        os.makedirs(os.path.dirname(label_path(root, split, 0)), exist_ok=True)
    jobs = [(root, s, seed, i) for s in SPLITS for i in range(counts[s])]
    if num_workers > 1:
        with ProcessPoolExecutor(num_workers) as ex:
            written = sum(ex.map(_write_one, jobs, chunksize=64))
    else:
        written = sum(map(_write_one, jobs))
    atomic_write_json(os.path.join(root, DATASET_DIRNAME, INFO_FILE), _expected_info(seed, counts))
    return {**counts, "written": written}


def _remove_split_files(root: str) -> None:
    for kind in ("images", "labels"):
        for split in SPLITS:
            d = os.path.join(root, DATASET_DIRNAME, kind, split)
            if os.path.isdir(d):
                for name in os.listdir(d):
                    os.remove(os.path.join(d, name))
    info_path = os.path.join(root, DATASET_DIRNAME, INFO_FILE)
    if os.path.exists(info_path):
        os.remove(info_path)
