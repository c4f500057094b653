"""Registration of the real benchmarks, whose label maps come from a prepare script.

A real benchmark (PASCAL VOC, COCO-Stuff, PASCAL Context; the evaluation-only ADE20K-150,
ADE20K-847 and PASCAL Context-459) is described once, as data, by a
:class:`BenchmarkSpec`: its class names in id order, the names of its unseen classes, and where
each split lives under the datasets root. The prepare script of the dataset
(``datasets/prepare_*.py``) writes the label PNGs of a split and, last, a *manifest*
(``<label_dir>.json``: stems and image sizes, see :mod:`zsseg_bench.data.prepare_utils`). The
manifest marks a split as complete, so loading never sees a half-prepared dataset: a missing
manifest is a :class:`UserError` that names the prepare script and the expected layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zsseg_bench.data.catalog import DatasetCatalog, MetadataCatalog
from zsseg_bench.data.datasets.load_sem_seg import load_sem_seg
from zsseg_bench.data.prepare_utils import manifest_path, read_manifest
from zsseg_bench.data.zero_shot import IGNORE_LABEL, MAX_NARROW_CLASSES, WIDE_IGNORE_LABEL
from zsseg_bench.utils.errors import UserError

#: The evaluator that every zero-shot benchmark uses (mIoU seen / unseen, hIoU).
EVALUATOR_TYPE = "gzsl_sem_seg"


@dataclass(frozen=True)
class PreparedSplit:
    """One split of a benchmark, as the prepare script leaves it on disk.

    Attributes:
        name: the registered dataset name (e.g. ``"voc_zs_train"``).
        split: the official split it holds (e.g. ``"train_aug"``).
        image_dir: folder of the official images, relative to the datasets root.
        label_dir: folder of the prepared label PNGs, relative to the datasets root; the
            manifest is ``<label_dir>.json``.
        official_count: number of images of the official split (printed and checked by the
            prepare script).
        image_ext: extension of the image files.
    """

    name: str
    split: str
    image_dir: str
    label_dir: str
    official_count: int
    image_ext: str = "jpg"


@dataclass(frozen=True)
class BenchmarkSpec:
    """A zero-shot benchmark: classes, seen/unseen split and prepared splits.

    Attributes:
        key: short name (``"voc"``, ``"coco_stuff"``, ``"pcontext"``).
        classes: class names in id order (ids of the label maps on disk).
        unseen_names: names of the unseen classes; every other class is seen.
        splits: the registered splits.
        prepare_script: the script that prepares the dataset (path in the repository).
        split_source: where the unseen classes come from (cited in the metadata and docs).
        ignore_label: the label value of pixels without a class: 255 (8-bit label PNGs, at
            most 254 classes), or :data:`~zsseg_bench.data.zero_shot.WIDE_IGNORE_LABEL` for
            the 16-bit label PNGs of an evaluation-only dataset with more classes.
    """

    key: str
    classes: tuple[str, ...]
    unseen_names: tuple[str, ...]
    splits: tuple[PreparedSplit, ...]
    prepare_script: str
    split_source: str
    ignore_label: int = IGNORE_LABEL

    def __post_init__(self) -> None:
        unknown = [n for n in self.unseen_names if n not in self.classes]
        if unknown or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{self.key}: unseen names {unknown} not among the classes, or "
                             f"duplicate class names")
        limit = {IGNORE_LABEL: MAX_NARROW_CLASSES, WIDE_IGNORE_LABEL: WIDE_IGNORE_LABEL}
        if len(self.classes) > limit.get(self.ignore_label, -1):
            raise ValueError(f"{self.key}: {len(self.classes)} classes do not fit labels with "
                             f"ignore_label {self.ignore_label}")

    @property
    def unseen_classes(self) -> list[int]:
        """Ids of the unseen classes, ascending."""
        return sorted(self.classes.index(n) for n in self.unseen_names)

    @property
    def seen_classes(self) -> list[int]:
        """Ids of the seen classes, ascending."""
        unseen = set(self.unseen_classes)
        return [i for i in range(len(self.classes)) if i not in unseen]

    def missing_hint(self, root: str, split: PreparedSplit) -> str:
        """What to do when a split is not prepared: the command and the expected layout."""
        return (f"prepare it with `python {self.prepare_script} --root {root}` (expects "
                f"{os.path.join(root, split.image_dir)}/<name>.{split.image_ext}, writes "
                f"{os.path.join(root, split.label_dir)}/<name>.png and "
                f"{manifest_path(os.path.join(root, split.label_dir))}; see datasets/README.md)")

    def metadata(self, root: str, split: PreparedSplit) -> dict:
        """The metadata of ``split`` under datasets root ``root``."""
        return {
            "stuff_classes": list(self.classes),
            "seen_classes": self.seen_classes,
            "unseen_classes": self.unseen_classes,
            "ignore_label": self.ignore_label,
            "evaluator_type": EVALUATOR_TYPE,
            "dataset_root": root,
            "image_root": os.path.join(root, split.image_dir),
            "sem_seg_root": os.path.join(root, split.label_dir),
            "split": split.split,
            "split_source": self.split_source,
        }

    def load(self, root: str, split: PreparedSplit) -> list[dict]:
        """Dataset dicts of a prepared split (sizes from the manifest, no image is opened).

        Raises:
            UserError: the split is not prepared (no manifest) or its files are incomplete.
        """
        label_dir = os.path.join(root, split.label_dir)
        hint = self.missing_hint(root, split)
        manifest = read_manifest(label_dir)
        if manifest is None:
            raise UserError(f"dataset '{split.name}' is not prepared (no "
                            f"{manifest_path(label_dir)}): {hint}")
        sizes = {stem: (h, w) for stem, h, w in manifest["images"]}
        dicts = load_sem_seg(label_dir, os.path.join(root, split.image_dir),
                             image_ext=split.image_ext, stems=list(sizes), missing_hint=hint,
                             read_sizes=False)
        for d in dicts:
            d["height"], d["width"] = sizes[d["image_id"]]
        return dicts

    def register(self, root: str) -> None:
        """Registers every split of the benchmark (lazily: nothing is read until loaded)."""
        for split in self.splits:
            DatasetCatalog.register(split.name, lambda s=split: self.load(root, s))
            MetadataCatalog.get(split.name).set(**self.metadata(root, split))
