"""``build_evaluator``: the evaluator a dataset's metadata asks for (``evaluator_type``)."""

from __future__ import annotations

from typing import Any

from zsseg_bench.data.catalog import MetadataCatalog
from zsseg_bench.data.transfer import evaluation_split
from zsseg_bench.evaluation.evaluator import DatasetEvaluator
from zsseg_bench.evaluation.sem_seg_evaluation import GZSLSemSegEvaluator
from zsseg_bench.utils.errors import UserError

#: ``evaluator_type`` (dataset metadata) -> evaluator class.
EVALUATOR_TYPES = {"gzsl_sem_seg": GZSLSemSegEvaluator}


def build_evaluator(cfg: Any, dataset_name: str, output_dir: str | None = None,
                    num_vis: int = 0) -> DatasetEvaluator:
    """The evaluator of ``dataset_name``.

    Args:
        cfg: the config (``TEST.IOU_RULE``: which classes a mean IoU runs over;
            ``DATASETS.TRAIN`` and ``ZERO_SHOT.SETTING``: the seen / unseen groups of another
            dataset than the training one, :mod:`zsseg_bench.data.transfer`).
        dataset_name: a registered dataset.
        output_dir: where the evaluator writes its files (confusion matrix, pictures).
        num_vis: pictures of the first ``num_vis`` images (``eval --vis N``), in
            ``<output_dir>/vis``.
    """
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", "gzsl_sem_seg")
    if evaluator_type not in EVALUATOR_TYPES:
        raise UserError(f"dataset '{dataset_name}' asks for evaluator '{evaluator_type}'; "
                        f"known: {', '.join(EVALUATOR_TYPES)}")
    _, seen, unseen = evaluation_split(dataset_name, training_dataset(cfg),
                                       cfg.ZERO_SHOT.SETTING)
    return EVALUATOR_TYPES[evaluator_type](dataset_name, output_dir=output_dir, num_vis=num_vis,
                                           iou_rule=cfg.TEST.IOU_RULE, split=(seen, unseen))


def training_dataset(cfg: Any) -> str | None:
    """The dataset the model's vocabulary was trained on (``DATASETS.TRAIN[0]``), or None."""
    return cfg.DATASETS.TRAIN[0] if cfg.DATASETS.TRAIN else None
