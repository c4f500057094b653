"""Generalised zero-shot segmentation metrics from a confusion matrix (a pure function).

``confusion[g, p]`` counts pixels of ground-truth class ``g`` predicted as class ``p``, over the
dataset's full class list (ignore pixels are never counted). For class ``c``:

- ``IoU_c = TP / (TP + FP + FN)``, defined when the class occurs in the ground truth **or** in
  the prediction (``TP + FP + FN > 0``). A class absent from both is *excluded*: its
  ``IoU-<name>`` is NaN and it enters no mean. A class only predicted, never present, has
  IoU 0 and counts (its false positives are real errors). This is Detectron2's and mmseg's
  rule (``nanmean``), applied to every mean below.
- ``Acc_c = TP / (TP + FN)`` (recall), defined when the class occurs in the ground truth.

Reported (all percentages, 0-100, like mmseg / Detectron2):

- ``mIoU``: mean IoU over all defined classes; ``mIoU-seen`` / ``mIoU-unseen``: the same over
  the defined seen / unseen classes;
- ``hIoU = 2 * S * U / (S + U)`` with ``S = mIoU-seen``, ``U = mIoU-unseen``; 0 when either is 0;
- ``pAcc``: correctly classified pixels / all counted pixels;
- ``mAcc``: mean ``Acc_c`` over classes present in the ground truth;
- ``IoU-<name>``: per-class IoU.

A mean over an empty set (e.g. ``mIoU-unseen`` when no unseen class occurs anywhere, or
anything of an all-ignore dataset) is NaN, and so is an ``hIoU`` built on a NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["metrics_from_confusion", "harmonic_mean_iou", "METRIC_KEYS"]

#: The summary keys, in the order they are reported (per-class ``IoU-<name>`` follow).
METRIC_KEYS = ("mIoU", "mIoU-seen", "mIoU-unseen", "hIoU", "pAcc", "mAcc")


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
                           class_names: Sequence[str] | None = None) -> dict[str, float]:
    """mIoU, mIoU-seen, mIoU-unseen, hIoU, pAcc, mAcc and IoU-<name> (percentages).

    Args:
        confusion: ``N x N`` counts, rows = ground truth, columns = prediction.
        seen: seen class ids.
        unseen: unseen class ids.
        class_names: ``N`` names for the per-class keys (default: the ids).

    Returns:
        An ordered dict: the keys of :data:`METRIC_KEYS`, then ``IoU-<name>`` per class.
    """
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
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan) * 100.0
        acc = np.where(gt > 0, tp / gt, np.nan) * 100.0
    seen_idx = np.asarray(list(seen), dtype=np.int64)
    unseen_idx = np.asarray(list(unseen), dtype=np.int64)
    miou_seen = _mean(iou[seen_idx])
    miou_unseen = _mean(iou[unseen_idx])
    total = conf.sum()
    results = {
        "mIoU": _mean(iou),
        "mIoU-seen": miou_seen,
        "mIoU-unseen": miou_unseen,
        "hIoU": harmonic_mean_iou(miou_seen, miou_unseen),
        "pAcc": float(tp.sum() / total * 100.0) if total > 0 else math.nan,
        "mAcc": _mean(acc),
    }
    for name, value in zip(names, iou):
        results[f"IoU-{name}"] = float(value)
    return results
