"""Evaluation: GZSL semantic segmentation metrics, evaluators, ``inference_on_dataset``."""

from zsseg_bench.evaluation.build import build_evaluator
from zsseg_bench.evaluation.evaluator import (
    DatasetEvaluator,
    DatasetEvaluators,
    inference_context,
    inference_on_dataset,
)
from zsseg_bench.evaluation.metrics import (
    IOU_RULES,
    METRIC_KEYS,
    harmonic_mean_iou,
    metrics_from_confusion,
)
from zsseg_bench.evaluation.sem_seg_evaluation import GZSLSemSegEvaluator, confusion_matrix

__all__ = [
    "IOU_RULES",
    "METRIC_KEYS",
    "DatasetEvaluator",
    "DatasetEvaluators",
    "GZSLSemSegEvaluator",
    "build_evaluator",
    "confusion_matrix",
    "harmonic_mean_iou",
    "inference_context",
    "inference_on_dataset",
    "metrics_from_confusion",
]
