"""detectron2's data loaders with the suite's mapper (``SemSegDatasetMapper``: augmentation and
the zero-shot split of training labels)."""

from __future__ import annotations

from typing import Any

from detectron2.data import build_detection_test_loader, build_detection_train_loader

import zsseg_bench.data  # noqa: F401  (registers the built-in datasets in detectron2's catalogs)
from zsseg_bench.data.dataset_mapper import SemSegDatasetMapper


def build_train_loader(cfg: Any) -> Any:
    """detectron2's training loader (its sampler and ``DATALOADER.*`` keys) over
    ``DATASETS.TRAIN``, mapped by the suite's training mapper."""
    return build_detection_train_loader(cfg, mapper=SemSegDatasetMapper(cfg, True))


def build_test_loader(cfg: Any, dataset_name: str) -> Any:
    """detectron2's test loader of ``dataset_name`` (``TEST.IMS_PER_BATCH`` images per batch),
    mapped by the suite's test mapper."""
    return build_detection_test_loader(
        cfg, dataset_name, mapper=SemSegDatasetMapper(cfg, False, dataset_name=dataset_name),
        batch_size=int(cfg.TEST.IMS_PER_BATCH))
