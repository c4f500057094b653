"""Which classes of a dataset a model has training labels for: the seen / unseen split of the
vocabulary and of the metrics, on the training benchmark and across datasets.

- **The training benchmark** (the test dataset has the training dataset's class list): the
  split is the dataset's metadata (``seen_classes`` / ``unseen_classes``). In the fully
  supervised setting every class has labels, so every vocabulary class is seen; the metrics
  are still grouped by the metadata's split (the upper bound of the zero-shot settings).
- **Another dataset** (cross-dataset evaluation: trained on one dataset, evaluated on another's
  full vocabulary; ZegCLIP's ``configs/cross_dataset/coco-to-voc.py``): a class is *seen* when
  its name is the name of a class the model had training labels for, and *unseen* otherwise.
  Names are compared ignoring case and surrounding space (``"TV monitor"`` and ``"tvmonitor"``
  differ); a name listing synonyms separated by commas (ADE20K-847's ``"person, individual,
  someone, ..."``) matches when one of its synonyms does. Training labels: the training
  dataset's seen classes (inductive, transductive: the unseen ones have no ground truth) or all
  its classes (fully).
"""

from __future__ import annotations

from collections.abc import Sequence

from zsseg_bench.config.setting import Setting
from zsseg_bench.data.catalog import class_split, dataset_class_names

__all__ = ["evaluation_split", "is_transfer", "labelled_names", "labelled_mask"]


def _synonyms(name: str) -> set[str]:
    """The comma-separated synonyms of a class name, case-folded and stripped."""
    return {part.strip().casefold() for part in str(name).split(",")} - {""}


def labelled_names(train_dataset: str, setting: str) -> set[str]:
    """Names (case-folded synonyms) of the classes of ``train_dataset`` with training labels."""
    names, seen, _ = class_split(train_dataset)
    ids = range(len(names)) if setting == Setting.FULLY else seen
    return set().union(*(_synonyms(names[i]) for i in ids))


def is_transfer(dataset: str, train_dataset: str | None) -> bool:
    """Whether ``dataset`` has another class list than ``train_dataset`` (cross-dataset)."""
    return train_dataset is not None and \
        dataset_class_names(dataset) != dataset_class_names(train_dataset)


def labelled_mask(names: Sequence[str], train_dataset: str | None, setting: str) -> list[bool]:
    """Per name: whether it names a class with training labels (none without a training
    dataset)."""
    labelled = set() if train_dataset is None else labelled_names(train_dataset, setting)
    return [bool(_synonyms(n) & labelled) for n in names]


def evaluation_split(dataset: str, train_dataset: str | None,
                     setting: str) -> tuple[list[str], list[int], list[int]]:
    """(class names, seen ids, unseen ids) the metrics of ``dataset`` are grouped by: the
    metadata's split on the training benchmark, the training labels across datasets."""
    if not is_transfer(dataset, train_dataset):
        return class_split(dataset)
    names = dataset_class_names(dataset)
    mask = labelled_mask(names, train_dataset, setting)
    return names, [i for i, m in enumerate(mask) if m], [i for i, m in enumerate(mask) if not m]
