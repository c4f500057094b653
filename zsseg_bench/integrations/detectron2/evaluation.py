"""The suite's GZSL evaluator in detectron2's ``DatasetEvaluator`` interface, run beside
detectron2's ``SemSegEvaluator``.

Both read the same predictions (the argmax of ``sem_seg``) and ground truth and agree on
``pAcc``/``pACC``, ``mAcc``/``mACC`` and the IoU of every class present in the ground truth.
They differ on a class that is predicted but absent from the ground truth: the suite counts its
IoU as 0 and keeps it in ``mIoU`` (its false positives are errors; ``metrics.py``), detectron2
leaves it out (NaN IoU) and averages ``mIoU`` over the classes present in the ground truth only
(``detectron2/evaluation/sem_seg_evaluation.py``, ``iou_valid = acc_valid & (union > 0)``).
Only the suite reports ``mIoU-seen``, ``mIoU-unseen`` and ``hIoU``; only detectron2 ``fwIoU``.
"""

from __future__ import annotations

import math
import os
from typing import Any

from detectron2.evaluation import DatasetEvaluator, DatasetEvaluators, SemSegEvaluator

from zsseg_bench.evaluation import DatasetEvaluator as SuiteDatasetEvaluator
from zsseg_bench.evaluation import build_evaluator as build_suite_evaluator

#: The task name the suite's metrics are reported under (detectron2's results are
#: ``{task: {metric: value}}``; its ``SemSegEvaluator`` reports under ``"sem_seg"``).
GZSL_TASK = "gzsl_sem_seg"

#: Rows of :func:`side_by_side`: (suite key, detectron2 key); None where one has no such metric.
_ROWS = (("mIoU", "mIoU"), ("pAcc", "pACC"), ("mAcc", "mACC"), ("mIoU-seen", None),
         ("mIoU-unseen", None), ("hIoU", None), (None, "fwIoU"))


class SuiteEvaluator(DatasetEvaluator):
    """A suite evaluator (``zsseg_bench.evaluation``) as a detectron2 ``DatasetEvaluator``: its
    flat metrics come back under ``task``."""

    def __init__(self, evaluator: SuiteDatasetEvaluator, task: str = GZSL_TASK):
        self.evaluator = evaluator
        self.task = task

    def reset(self) -> None:
        self.evaluator.reset()

    def process(self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> None:
        self.evaluator.process(inputs, outputs)

    def evaluate(self) -> dict[str, dict[str, float]]:
        return {self.task: self.evaluator.evaluate()}


def build_evaluator(cfg: Any, dataset_name: str, output_dir: str | None = None,
                    ) -> DatasetEvaluators:
    """The suite's evaluator of ``dataset_name`` (as its metadata's ``evaluator_type`` asks)
    and detectron2's ``SemSegEvaluator``, on the same predictions.

    Args:
        cfg: the config.
        dataset_name: a registered dataset.
        output_dir: where both write their files (``sem_seg_confusion.json``;
            ``sem_seg_predictions.json``, ``sem_seg_evaluation.pth``).
    """
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
    return DatasetEvaluators([
        SuiteEvaluator(build_suite_evaluator(cfg, dataset_name, output_dir=output_dir)),
        SemSegEvaluator(dataset_name, distributed=True, output_dir=output_dir),
    ])


def _cell(results: dict[str, float], key: str | None) -> str:
    if key is None or key not in results:
        return "-"
    value = float(results[key])
    return "nan" if math.isnan(value) else f"{value:.2f}"


def side_by_side(results: dict[str, dict[str, float]]) -> str:
    """A markdown table of one dataset's results: the suite's metrics beside detectron2's.

    Args:
        results: ``{"gzsl_sem_seg": {...}, "sem_seg": {...}}`` (:func:`build_evaluator`).
    """
    ours, theirs = results.get(GZSL_TASK, {}), results.get("sem_seg", {})
    lines = ["| metric | zsseg-bench (GZSL) | detectron2 SemSegEvaluator |", "|---|---:|---:|"]
    for our_key, their_key in _ROWS:
        lines.append(f"| {our_key or their_key} | {_cell(ours, our_key)} | "
                     f"{_cell(theirs, their_key)} |")
    return "\n".join(lines)
