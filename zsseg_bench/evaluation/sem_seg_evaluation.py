"""``GZSLSemSegEvaluator``: one confusion matrix over the full class list -> GZSL metrics.

The prediction of an image is the argmax of the model's ``sem_seg`` scores (``C x H x W`` at the
original size); the ground truth is read from ``sem_seg_file_name``. Pixels whose ground truth
is the dataset's ``ignore_label`` (255; 65535 for the wide 16-bit labels of datasets with more
classes than uint8 holds, e.g. ADE20K-847) are not counted. The confusion matrix is
accumulated with ``bincount`` on the device of the predictions and, under
``torch.distributed``, summed over ranks (all-reduce) before
:func:`~zsseg_bench.evaluation.metrics.metrics_from_confusion` turns it into metrics, so the
result does not depend on how the images were batched or sharded.

Which classes a mean IoU runs over (``iou_rule``: ``"union"``, the published numbers' rule, or
``"gt"``, detectron2's current one) and the metric definitions are those of
:mod:`zsseg_bench.evaluation.metrics`. Background, where a dataset has it as a class (the toy
world), is an ordinary seen class.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from zsseg_bench.data.catalog import MetadataCatalog, class_split
from zsseg_bench.data.image_io import read_image, read_sem_seg
from zsseg_bench.data.zero_shot import IGNORE_LABEL
from zsseg_bench.evaluation.evaluator import DatasetEvaluator
from zsseg_bench.evaluation.metrics import IOU_RULES, metrics_from_confusion
from zsseg_bench.utils.comm import is_distributed, is_main_process
from zsseg_bench.utils.file_io import atomic_write_json

__all__ = ["GZSLSemSegEvaluator", "confusion_matrix"]

logger = logging.getLogger(__name__)


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                     ignore_label: int = IGNORE_LABEL) -> torch.Tensor:
    """``num_classes x num_classes`` int64 counts (rows = ground truth) of one or more label
    maps, on ``pred``'s device; ground-truth ``ignore_label`` pixels are not counted."""
    gt = gt.to(pred.device).long().flatten()
    pred = pred.long().flatten()
    keep = gt != ignore_label
    index = gt[keep] * num_classes + pred[keep]
    return torch.bincount(index, minlength=num_classes * num_classes).view(
        num_classes, num_classes)


class GZSLSemSegEvaluator(DatasetEvaluator):
    """mIoU (all / seen / unseen), hIoU, pAcc, mAcc, fwIoU and per-class IoU of one dataset."""

    def __init__(self, dataset_name: str, *, output_dir: str | None = None, num_vis: int = 0,
                 iou_rule: str = "union",
                 split: tuple[Sequence[int], Sequence[int]] | None = None):
        """
        Args:
            dataset_name: a registered dataset; its metadata gives the class list
                (``stuff_classes``), the seen / unseen ids (``seen_classes``,
                ``unseen_classes``) and the ground-truth value not counted (``ignore_label``,
                default 255). Under torch.distributed the confusion matrix is summed over ranks.
            output_dir: if given, ``evaluate`` writes the confusion matrix there as JSON.
            num_vis: draw image | ground truth | prediction for the first ``num_vis`` images
                (of this rank) into ``<output_dir>/vis``.
            iou_rule: which classes a mean IoU runs over, ``"union"`` or ``"gt"`` (see
                :func:`~zsseg_bench.evaluation.metrics.metrics_from_confusion`).
            split: (seen ids, unseen ids) the metrics are grouped by, instead of the
                metadata's (cross-dataset evaluation: :mod:`zsseg_bench.data.transfer`).
        """
        if iou_rule not in IOU_RULES:
            raise ValueError(f"iou_rule {iou_rule!r} is not one of {', '.join(IOU_RULES)}")
        self.iou_rule = iou_rule
        self.dataset_name = dataset_name
        self.class_names, self.seen_classes, self.unseen_classes = class_split(dataset_name)
        if split is not None:
            self.seen_classes, self.unseen_classes = list(split[0]), list(split[1])
        self.num_classes = len(self.class_names)
        self.ignore_label = int(MetadataCatalog.get(dataset_name).get("ignore_label",
                                                                      IGNORE_LABEL))
        self.output_dir = output_dir
        self.num_vis = int(num_vis)
        self.vis_dir = os.path.join(output_dir, "vis") if output_dir else None
        if self.num_vis > 0 and self.vis_dir is None:
            raise ValueError("num_vis > 0 needs output_dir (pictures go to <output_dir>/vis)")
        self.reset()

    def reset(self) -> None:
        self._confusion: torch.Tensor | None = None
        self._num_images = 0
        self._num_drawn = 0

    def process(self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> None:
        """Adds each image's prediction vs ground truth to the confusion matrix."""
        for inp, out in zip(inputs, outputs):
            scores = out["sem_seg"]
            if scores.dim() != 3 or scores.shape[0] != self.num_classes:
                raise ValueError(f"sem_seg must be {self.num_classes} x H x W scores for "
                                 f"'{self.dataset_name}', got {tuple(scores.shape)}")
            pred = scores.argmax(dim=0)
            path = inp["sem_seg_file_name"]
            gt_np = read_sem_seg(path, self.num_classes, self.ignore_label)
            if tuple(gt_np.shape) != tuple(pred.shape):
                raise ValueError(f"prediction of {inp.get('file_name', path)} is "
                                 f"{tuple(pred.shape)} but its label {path} is "
                                 f"{gt_np.shape}: the model must resize scores to the "
                                 f"original size (height, width)")
            gt = torch.from_numpy(gt_np)
            conf = confusion_matrix(pred, gt, self.num_classes, self.ignore_label)
            self._confusion = conf if self._confusion is None else self._confusion + conf
            self._num_images += 1
            if self._num_drawn < self.num_vis:
                self._draw(inp, gt_np, pred.cpu().numpy())

    def _draw(self, inp: dict[str, Any], gt: np.ndarray, pred: np.ndarray) -> None:
        from zsseg_bench.utils.visualize import save_comparison

        image = read_image(inp["file_name"])
        stem = str(inp.get("image_id", os.path.splitext(os.path.basename(inp["file_name"]))[0]))
        path = os.path.join(self.vis_dir, f"{self._num_drawn:04d}_{stem}.png")
        save_comparison(path, image, gt, pred.astype(np.int64), self.class_names,
                        self.unseen_classes, title=f"{self.dataset_name}: {stem}")
        self._num_drawn += 1

    def confusion(self) -> torch.Tensor:
        """The confusion matrix so far (summed over ranks when distributed), int64 on CPU."""
        conf = self._confusion
        if is_distributed():
            if conf is None:
                device = "cuda" if dist.get_backend() == "nccl" else "cpu"
                conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64,
                                   device=device)
            conf = conf.clone()
            dist.all_reduce(conf)
        if conf is None:
            conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        return conf.cpu()

    def evaluate(self) -> dict[str, float]:
        """``mIoU``, ``mIoU-seen``, ``mIoU-unseen``, ``hIoU``, ``pAcc``, ``mAcc``, ``fwIoU`` and
        ``IoU-<name>`` in percent (see :mod:`zsseg_bench.evaluation.metrics`)."""
        conf = self.confusion()
        if int(conf.sum()) == 0:
            logger.warning("No labelled pixel was evaluated on %s: all metrics are NaN",
                           self.dataset_name)
        results = metrics_from_confusion(conf, self.seen_classes, self.unseen_classes,
                                         self.class_names, iou_rule=self.iou_rule)
        if self.output_dir and is_main_process():
            atomic_write_json(os.path.join(self.output_dir, "sem_seg_confusion.json"), {
                "dataset": self.dataset_name,
                "class_names": self.class_names,
                "seen_classes": self.seen_classes,
                "unseen_classes": self.unseen_classes,
                "iou_rule": self.iou_rule,
                "confusion": conf.tolist(),
            })
        return results
