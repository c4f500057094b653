"""``SemSegDatasetMapper``: a dataset dict -> one element of ``batched_inputs``.

Output (a shallow copy of the dataset dict plus):

- ``image``: uint8 tensor 3 x H x W, RGB (``INPUT.FORMAT``), after augmentation / test resize;
- ``sem_seg`` (training only): int64 tensor H x W of *full* class ids, aligned with ``image``,
  255 = ignore, with the zero-shot split applied (unseen -> 255 inductive, 254 transductive);
  training takes uint8 labels only (at most 254 classes);
- ``height``, ``width``: the size of the original image (the size predictions are scored at).

In test mode the label map is not read: the evaluator reads ``sem_seg_file_name`` at the
original size.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from zsseg_bench.config.configurable import configurable
from zsseg_bench.config.setting import Setting
from zsseg_bench.data.catalog import class_split
from zsseg_bench.data.image_io import read_image, read_sem_seg
from zsseg_bench.data.transforms import Augmentation, apply_augmentations, build_augmentations
from zsseg_bench.data.zero_shot import MAX_NARROW_CLASSES, check_setting, zero_shot_lut
from zsseg_bench.utils.errors import UserError

__all__ = ["SemSegDatasetMapper", "training_split_of"]


def training_split_of(dataset_names: Sequence[str],
                      key: str = "DATASETS.TRAIN") -> tuple[int, list[int]]:
    """(number of classes, unseen class ids) shared by the given datasets.

    Args:
        dataset_names: registered dataset names.
        key: the config key that named them (for messages).

    Raises:
        UserError: no dataset given, a dataset without class metadata, or datasets whose class
            lists or splits differ (they cannot be mixed in one training run).
    """
    if not dataset_names:
        raise UserError(f"{key} is empty: name at least one registered dataset")
    splits = []
    for name in dataset_names:
        classes, _, unseen = class_split(name)
        splits.append((tuple(classes), tuple(unseen)))
    if len(set(splits)) > 1:
        raise UserError(f"datasets {list(dataset_names)} have different class lists or "
                        f"zero-shot splits and cannot be trained on together")
    classes, unseen = splits[0]
    return len(classes), list(unseen)


class SemSegDatasetMapper:
    """Reads, augments and tensorises one sample (Detectron2's ``DatasetMapper`` for semantic
    segmentation, plus the on-the-fly zero-shot split of training labels)."""

    @configurable
    def __init__(self, is_train: bool, *, augmentations: Sequence[Augmentation],
                 image_format: str = "RGB", num_classes: int,
                 unseen_classes: Sequence[int] = (), setting: str = Setting.INDUCTIVE):
        """
        Args:
            is_train: training (labels read, split applied, random augmentations) or test.
            augmentations: applied in order to image and label map.
            image_format: channel order of ``image`` (``"RGB"`` or ``"BGR"``).
            num_classes: size of the dataset's full class list (label values are checked).
            unseen_classes: unseen class ids (training only).
            setting: a :class:`~zsseg_bench.config.Setting` or its value (training only).
        """
        self.is_train = is_train
        self.augmentations = list(augmentations)
        self.image_format = image_format
        self.num_classes = int(num_classes)
        self.setting = check_setting(setting)
        self.unseen_classes = list(unseen_classes)
        # Test mode reads no label: no split table (so a dataset of wide, 16-bit labels with
        # more classes than uint8 holds can be evaluated; training on one is refused here).
        self._lut = zero_shot_lut(self.num_classes, self.unseen_classes, setting) \
            if is_train else None

    @classmethod
    def from_config(cls, cfg: Any, is_train: bool = True,
                    dataset_name: str | None = None) -> dict[str, Any]:
        """Keyword arguments from ``cfg`` (``INPUT.*``, ``ZERO_SHOT.SETTING``, datasets).

        Args:
            cfg: the config.
            is_train: training or test mapper.
            dataset_name: the dataset mapped (default: ``DATASETS.TRAIN`` for training,
                ``DATASETS.TEST[0]`` for test).
        """
        if dataset_name is not None:
            names = [dataset_name]
        elif is_train:
            names = list(cfg.DATASETS.TRAIN)
        else:
            names = list(cfg.DATASETS.TEST[:1])
        key = "DATASETS.TRAIN" if is_train and dataset_name is None else "DATASETS.TEST"
        num_classes, unseen = training_split_of(names, key)
        if is_train and num_classes > MAX_NARROW_CLASSES:
            raise UserError(f"{key}: {', '.join(names)} has {num_classes} classes, more than "
                            f"uint8 training labels hold ({MAX_NARROW_CLASSES}); datasets of "
                            f"wide (16-bit) labels are for evaluation only: name it in "
                            f"DATASETS.TEST")
        return {
            "is_train": is_train,
            "augmentations": build_augmentations(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
            "num_classes": num_classes,
            "unseen_classes": unseen,
            "setting": cfg.ZERO_SHOT.SETTING,
        }

    def __call__(self, dataset_dict: dict[str, Any],
                 rng: np.random.Generator | None = None) -> dict[str, Any]:
        """Maps one dataset dict.

        Args:
            dataset_dict: ``file_name``, ``sem_seg_file_name`` (training), optional ``height``,
                ``width``, ``image_id``.
            rng: random generator of the augmentations; default: one drawn from numpy's global
                RNG (so ``np.random.seed`` makes a run reproducible, as in Detectron2).
        """
        if rng is None:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        record = copy.copy(dataset_dict)
        image = read_image(record["file_name"], self.image_format)
        height, width = image.shape[:2]
        expected = (record.get("height", height), record.get("width", width))
        if expected != (height, width):
            raise UserError(f"image {record['file_name']} is {height}x{width} but its dataset "
                            f"dict says {expected[0]}x{expected[1]}; re-run the dataset's "
                            f"prepare script")
        record["height"], record["width"] = height, width
        sem_seg = None
        if self.is_train:
            if "sem_seg_file_name" not in record:
                raise UserError(f"image {record['file_name']} has no label file "
                                f"(sem_seg_file_name) in its dataset dict")
            sem_seg = read_sem_seg(record["sem_seg_file_name"], self.num_classes)
            if sem_seg.shape != (height, width):
                raise UserError(f"label {record['sem_seg_file_name']} is "
                                f"{sem_seg.shape[0]}x{sem_seg.shape[1]} but its image "
                                f"{record['file_name']} is {height}x{width}; re-run the "
                                f"dataset's prepare script")
            sem_seg = self._lut[sem_seg]
        image, sem_seg, _ = apply_augmentations(self.augmentations, image, sem_seg, rng)
        record["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if sem_seg is not None:
            record["sem_seg"] = torch.from_numpy(sem_seg.astype(np.int64))
        return record
