"""Registration of the toy world (``synthetic_train`` / ``synthetic_val``).

Classes and split come from :mod:`zsseg_bench.data.synthetic` (the one place that states them).
Background (id 0) is a class of its own and a *seen* class: it is evaluated like any other
class (its IoU enters mIoU and mIoU-seen, hence hIoU), never mapped to ignore. The world has no
ignore pixels.

The dataset is rendered on first use when absent (one log line says so; not within
:func:`no_rendering`, e.g. a sweep's dry run); ``zsseg-bench prepare synthetic`` renders it ahead
of time. Several processes starting at once (DDP ranks) render it once: preparation holds a file
lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator

from zsseg_bench.data.catalog import DatasetCatalog, MetadataCatalog
from zsseg_bench.data.datasets.load_sem_seg import load_sem_seg
from zsseg_bench.data.datasets.prepared import EVALUATOR_TYPE
from zsseg_bench.data.synthetic import (
    BACKGROUND_ID,
    CLASS_NAMES,
    DATASET_DIRNAME,
    DEFAULT_NUM_TRAIN,
    DEFAULT_NUM_VAL,
    SEEN_CLASS_IDS,
    UNSEEN_CLASS_IDS,
    dataset_is_complete,
    image_path,
    prepare_synthetic,
)
from zsseg_bench.data.synthetic.open_vocab import DEFAULT_NUM_IMAGES as DEFAULT_NUM_OV_IMAGES
from zsseg_bench.data.synthetic.open_vocab import (
    OV_CLASS_NAMES,
    OV_DIRNAME,
    open_vocab_is_complete,
    prepare_open_vocab,
)
from zsseg_bench.data.synthetic.prepare import read_info
from zsseg_bench.data.zero_shot import IGNORE_LABEL
from zsseg_bench.utils.errors import UserError

logger = logging.getLogger(__name__)

#: Registered name -> split of the toy world.
SYNTHETIC_SPLITS = {"synthetic_train": "train", "synthetic_val": "val"}
#: Images of ``synthetic_val_16``: the first ones of ``synthetic_val``, a test split for quick
#: looks (``zsseg-bench demo --quick``), as detectron2's ``coco_2017_val_100``.
QUICK_VAL_IMAGES = 16
_LOCK_FILE = ".prepare.lock"
_RENDERING = {"enabled": True}


@contextlib.contextmanager
def no_rendering() -> Iterator[None]:
    """Within the block, loading a toy dataset that is absent raises :class:`UserError`
    instead of rendering it (what must write nothing, e.g. a dry run, reads only)."""
    previous = _RENDERING["enabled"]
    _RENDERING["enabled"] = False
    try:
        yield
    finally:
        _RENDERING["enabled"] = previous


def _check_rendering(what: str, root: str) -> None:
    if not _RENDERING["enabled"]:
        raise UserError(f"{what} is not rendered in {root} (`zsseg-bench prepare synthetic` "
                        "renders the toy world)")


@contextlib.contextmanager
def _prepare_lock(root: str) -> Iterator[None]:
    folder = os.path.join(root, DATASET_DIRNAME)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, _LOCK_FILE), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_synthetic(root: str, num_workers: int | None = None,
                     num_train: int = DEFAULT_NUM_TRAIN, num_val: int = DEFAULT_NUM_VAL) -> None:
    """Renders the toy world under ``root`` unless a complete one is there (logs one line).

    Args:
        root: datasets root.
        num_workers: rendering processes (default: the CPU count).
        num_train, num_val: images per split when rendering.
    """
    if dataset_is_complete(root):
        return
    _check_rendering("the toy world", root)
    with _prepare_lock(root):
        if dataset_is_complete(root):  # another process prepared it meanwhile
            return
        workers = num_workers or os.cpu_count() or 1
        logger.info("Toy world not found in %s: rendering it now (%d train + %d val images, "
                    "%d process(es); `zsseg-bench prepare synthetic` does this ahead of time)",
                    os.path.join(root, DATASET_DIRNAME), num_train, num_val, workers)
        start = time.perf_counter()
        prepare_synthetic(root, num_train=num_train, num_val=num_val, num_workers=workers)
        logger.debug("Toy world rendered in %.1f s", time.perf_counter() - start)


def load_synthetic(root: str, split: str, **prepare_kwargs: int) -> list[dict]:
    """Dataset dicts of one split of the toy world, rendering it first if absent.

    Args:
        root: datasets root.
        split: ``"train"`` or ``"val"``.
        **prepare_kwargs: ``num_train`` / ``num_val`` used if it must be rendered.
    """
    ensure_synthetic(root, **prepare_kwargs)
    info = read_info(root)
    if info is None or split not in info.get("counts", {}):
        raise UserError(f"toy world under {os.path.join(root, DATASET_DIRNAME)} has no "
                        f"'{split}' split in its info.json; delete the folder and run "
                        f"`zsseg-bench prepare synthetic --root {root}`")
    first = image_path(root, split, 0)
    stems = [os.path.splitext(os.path.basename(image_path(root, split, i)))[0]
             for i in range(int(info["counts"][split]))]
    return load_sem_seg(
        os.path.join(root, DATASET_DIRNAME, "labels", split), os.path.dirname(first),
        gt_ext="png", image_ext=os.path.splitext(first)[1].lstrip("."), stems=stems,
        missing_hint=f"delete {os.path.join(root, DATASET_DIRNAME)} and run "
                     f"`zsseg-bench prepare synthetic --root {root}`")


def synthetic_metadata(root: str, split: str) -> dict:
    """Metadata of one split of the toy world."""
    return {
        "stuff_classes": list(CLASS_NAMES),
        "seen_classes": list(SEEN_CLASS_IDS),
        "unseen_classes": list(UNSEEN_CLASS_IDS),
        "ignore_label": IGNORE_LABEL,
        "evaluator_type": EVALUATOR_TYPE,
        "dataset_root": root,
        "image_root": os.path.join(root, DATASET_DIRNAME, "images", split),
        "sem_seg_root": os.path.join(root, DATASET_DIRNAME, "labels", split),
        "split": split,
        # Background is a seen class of its own, evaluated like any other class.
        "background_class": BACKGROUND_ID,
        "split_source": "zsseg_bench.data.synthetic (toy world definition)",
    }


def register_all_synthetic(root: str, prefix: str = "synthetic",
                           **prepare_kwargs: int) -> None:
    """Registers ``{prefix}_train``, ``{prefix}_val`` and ``{prefix}_val_16`` (the first 16
    images of the validation split) under datasets root ``root``.

    Args:
        root: datasets root (``get_datasets_root()`` for the built-in names).
        prefix: name prefix; tests register a private copy under another prefix.
        **prepare_kwargs: ``num_train`` / ``num_val`` if rendered on first use (default: the
            toy world's defaults).
    """
    for name, split in SYNTHETIC_SPLITS.items():
        name = prefix + name[len("synthetic"):]
        DatasetCatalog.register(name, lambda s=split: load_synthetic(root, s, **prepare_kwargs))
        MetadataCatalog.get(name).set(**synthetic_metadata(root, split))
    quick = f"{prefix}_val_{QUICK_VAL_IMAGES}"
    DatasetCatalog.register(quick, lambda: load_synthetic(root, "val", **prepare_kwargs)[
        :QUICK_VAL_IMAGES])
    MetadataCatalog.get(quick).set(**synthetic_metadata(root, "val"))


#: Registered name of the toy open-vocabulary dataset (:mod:`..synthetic.open_vocab`).
OPEN_VOCAB_NAME = "synthetic_ov_val"


def register_open_vocab(root: str, name: str = OPEN_VOCAB_NAME,
                        num_images: int = DEFAULT_NUM_OV_IMAGES) -> None:
    """Registers the toy open-vocabulary dataset under datasets root ``root`` (rendered on
    first use, ``num_images`` images). A test-only dataset: in cross-dataset evaluation the
    model's training labels decide which of its classes are seen
    (:mod:`zsseg_bench.data.transfer`); its own metadata calls every class seen."""
    def load() -> list[dict]:
        if not open_vocab_is_complete(root, num_images):
            _check_rendering(name, root)
            with _prepare_lock(root):
                logger.info("Rendering %s (%d images) in %s", name, num_images, root)
                prepare_open_vocab(root, num_images)
        base = os.path.join(root, OV_DIRNAME)
        return load_sem_seg(os.path.join(base, "labels", "val"),
                            os.path.join(base, "images", "val"), gt_ext="png", image_ext="jpg")

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        stuff_classes=list(OV_CLASS_NAMES), seen_classes=list(range(len(OV_CLASS_NAMES))),
        unseen_classes=[], ignore_label=IGNORE_LABEL, evaluator_type=EVALUATOR_TYPE,
        dataset_root=root, background_class=BACKGROUND_ID,
        split_source="zsseg_bench.data.synthetic.open_vocab (test-only; seen / unseen from "
                     "the model's training dataset)")
