"""Generalised zero-shot segmentation metrics from a confusion matrix (a pure function).

``confusion[g, p]`` counts pixels of ground-truth class ``g`` predicted as class ``p``, over the
dataset's full class list (ignore pixels are never counted). For class ``c``,
``IoU_c = TP / (TP + FP + FN)`` and ``Acc_c = TP / (TP + FN)`` (recall).

Which classes a mean of IoUs runs over is the ``iou_rule`` (config key ``TEST.IOU_RULE``,
recorded in ``metrics.json``):

- ``"union"`` (default): classes whose union is non-empty (``TP + FP + FN > 0``), i.e. present
  in the ground truth **or** the prediction. A class only predicted, never present, has IoU 0
  and counts (its false positives are real errors); a class absent from both is excluded
  (NaN). This is the rule of the published numbers: mmseg's ``total_area_to_metrics``
  (``iou = intersect / union``, then ``nanmean``; open-mmlab/mmsegmentation
  ``mmseg/core/evaluation/metrics.py`` @ 020acda), which ZegCLIP averages in
  ``configs/_base_/datasets/dataloader/voc12.py`` (ZiqinZhou66/ZegCLIP @ 9ba4bb5); zsseg's
  ``mask_former/evaluation/generalized_sem_seg_evaluation.py`` (MendelXu/zsseg.baseline
  @ d77c3af), which divides by the number of classes with a non-empty union; and detectron2's
  ``SemSegEvaluator`` up to v0.6 (``detectron2/evaluation/sem_seg_evaluation.py`` @ d1e0456,
  the version zsseg and ZegFormer build on).
- ``"gt"``: classes present in the ground truth (``TP + FN > 0``); a class only predicted has
  NaN IoU and enters no mean. This is detectron2's current ``SemSegEvaluator``
  (``detectron2/evaluation/sem_seg_evaluation.py``, changed in commit f3c1bc1 of 2022-07-06,
  unchanged at 02b5c4e).

Reported (all percentages, 0-100, like mmseg / detectron2):

- ``mIoU``: mean IoU over the classes the rule keeps; ``mIoU-seen`` / ``mIoU-unseen``: the
  same over the kept seen / unseen classes;
- ``hIoU = 2 * S * U / (S + U)`` with ``S = mIoU-seen``, ``U = mIoU-unseen``; 0 when either is 0;
- ``pAcc``: correctly classified pixels / all counted pixels;
- ``mAcc``: mean ``Acc_c`` over classes present in the ground truth;
- ``fwIoU``: ``sum_c f_c IoU_c`` over classes present in the ground truth, with ``f_c`` the
  class's share of the counted ground-truth pixels (detectron2's definition; the same under
  both rules, since a class absent from the ground truth has weight 0);
- ``IoU-<name>``: per-class IoU (NaN for a class the rule excludes).

A mean over an empty set (e.g. ``mIoU-unseen`` when no unseen class occurs anywhere, or
anything of an all-ignore dataset) is NaN, and so is an ``hIoU`` built on a NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["metrics_from_confusion", "harmonic_mean_iou", "METRIC_KEYS", "IOU_RULES"]

#: The summary keys, in the order they are reported (per-class ``IoU-<name>`` follow).
METRIC_KEYS = ("mIoU", "mIoU-seen", "mIoU-unseen", "hIoU", "pAcc", "mAcc", "fwIoU")

#: The values of ``iou_rule`` (``TEST.IOU_RULE``): which classes a mean IoU runs over.
IOU_RULES = ("union", "gt")


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def harmonic_mean_iou(seen: float, unseen: float) -> float:
    """``2 S U / (S + U)``; 0 when either is 0; NaN when either is NaN."""
    if math.isnan(seen) or math.isnan(unseen):
        return math.nan
    if seen == 0 or unseen == 0:
        return 0.0
    return 2.0 * seen * unseen / (seen + unseen)


def metrics_from_confusion(confusion: np.ndarray | torch.Tensor, seen: Sequence[int],
                           unseen: Sequence[int],
                           class_names: Sequence[str] | None = None, *,
                           iou_rule: str = "union") -> dict[str, float]:
    """mIoU, mIoU-seen, mIoU-unseen, hIoU, pAcc, mAcc, fwIoU and IoU-<name> (percentages).

    Args:
        confusion: ``N x N`` counts, rows = ground truth, columns = prediction.
        seen: seen class ids.
        unseen: unseen class ids.
        class_names: ``N`` names for the per-class keys (default: the ids).
        iou_rule: ``"union"`` (classes present in the ground truth or the prediction) or
            ``"gt"`` (classes present in the ground truth); see the module docstring.

    Returns:
        An ordered dict: the keys of :data:`METRIC_KEYS`, then ``IoU-<name>`` per class.
    """
    if iou_rule not in IOU_RULES:
        raise ValueError(f"iou_rule {iou_rule!r} is not one of {', '.join(IOU_RULES)}")
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.detach().cpu().numpy()
    conf = np.asarray(confusion, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion must be N x N, got shape {conf.shape}")
    num = conf.shape[0]
    names = [str(i) for i in range(num)] if class_names is None else list(class_names)
    if len(names) != num:
        raise ValueError(f"{len(names)} class names for a {num}-class confusion matrix")
    for group in (seen, unseen):
        if any(not 0 <= int(i) < num for i in group):
            raise ValueError(f"class ids {list(group)} outside 0..{num - 1}")

    tp = np.diag(conf)
    gt = conf.sum(axis=1)
    union = gt + conf.sum(axis=0) - tp
    kept = union > 0 if iou_rule == "union" else gt > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(kept, tp / union, np.nan) * 100.0
        acc = np.where(gt > 0, tp / gt, np.nan) * 100.0
    seen_idx = np.asarray(list(seen), dtype=np.int64)
    unseen_idx = np.asarray(list(unseen), dtype=np.int64)
    miou_seen = _mean(iou[seen_idx])
    miou_unseen = _mean(iou[unseen_idx])
    total = conf.sum()
    present = gt > 0
    results = {
        "mIoU": _mean(iou),
        "mIoU-seen": miou_seen,
        "mIoU-unseen": miou_unseen,
        "hIoU": harmonic_mean_iou(miou_seen, miou_unseen),
        "pAcc": float(tp.sum() / total * 100.0) if total > 0 else math.nan,
        "mAcc": _mean(acc),
        "fwIoU": float((gt[present] / total * iou[present]).sum()) if total > 0 else math.nan,
    }
    for name, value in zip(names, iou):
        results[f"IoU-{name}"] = float(value)
    return results
