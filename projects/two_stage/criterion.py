"""Set criterion of the proposal network (MaskFormer's ``SetCriterion``), and semantic targets.

Semantic-segmentation labels become one target "instance" per class present in the image
(:func:`semantic_targets`), as MaskFormer's semantic mapper does. After Hungarian matching:

- ``loss_ce``: cross-entropy over the vocabulary + no-object, no-object weighted down
  (``no_object_weight``); unmatched queries target no-object;
- ``loss_mask``: sigmoid focal loss of matched masks, mean over pixels, summed over masks and
  divided by the number of target masks in the batch;
- ``loss_dice``: dice loss of matched masks, same normalisation;
- deep supervision: the same losses on every intermediate prediction (suffix ``_<layer>``).

Predicted and target masks may differ in resolution (MaskFormer's ``SetCriterion`` and
``HungarianMatcher.memory_efficient_forward``, zsseg ``mask_former/modeling/{criterion,matcher}.py``
@ d77c3af): the matcher compares the predictions with the targets nearest-downsampled to the
predictions' size, and the losses upsample (bilinear) only the matched predictions to the
targets' size.

Losses come back already multiplied by their weights (their sum is the training objective).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.config import configurable
from zsseg_bench.data.zero_shot import IGNORE_LABEL, UNLABELLED_LABEL

from .matcher import HungarianMatcher


def semantic_targets(labels: torch.Tensor, num_classes: int, size: tuple[int, int] | None = None,
                     with_valid: bool = False) -> list[dict[str, torch.Tensor]]:
    """Per image: the classes present and one binary mask per class.

    Args:
        labels: B x H x W int64 in vocabulary index space (255 ignore, 254 unlabelled; both are
            no class).
        num_classes: K; ids >= K other than 254/255 are an error.
        size: (h, w) to downsample the labels to (nearest) first; None keeps H x W.
        with_valid: add a "valid" h x w bool map (pixels with a class).

    Returns:
        list of {"labels": T int64, "masks": T x h x w float, ["valid": h x w bool]}.
    """
    if size is not None and tuple(labels.shape[-2:]) != tuple(size):
        labels = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
    out = []
    for lab in labels:
        classes = lab.unique()
        classes = classes[(classes != IGNORE_LABEL) & (classes != UNLABELLED_LABEL)]
        if len(classes) and int(classes.max()) >= num_classes:
            raise ValueError(f"label id {int(classes.max())} outside the vocabulary "
                             f"({num_classes} classes)")
        item = {"labels": classes, "masks": (lab[None] == classes[:, None, None]).float()}
        if with_valid:
            item["valid"] = (lab != IGNORE_LABEL) & (lab != UNLABELLED_LABEL)
        out.append(item)
    return out


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float,
                       gamma: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017) per mask, averaged over (valid) pixels: N x P -> N."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    if valid is None:
        return loss.mean(-1)
    v = valid.to(loss.dtype)
    return (loss * v).sum(-1) / v.sum(-1).clamp(min=1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor,
              valid: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - (2|x t| + 1) / (|x| + |t| + 1)`` per mask (x = sigmoid(logits)): N x P -> N."""
    prob = logits.sigmoid()
    if valid is not None:
        prob, targets = prob * valid.to(prob.dtype), targets * valid.to(prob.dtype)
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


class SetCriterion(nn.Module):
    """Matching + class/mask/dice losses (+ deep supervision)."""

    @configurable
    def __init__(self, *, matcher: HungarianMatcher, class_weight: float, mask_weight: float,
                 dice_weight: float, no_object_weight: float, focal_alpha: float,
                 focal_gamma: float, deep_supervision: bool = True,
                 mask_ignore_pixels: bool = False):
        super().__init__()
        self.matcher = matcher
        self.class_weight = class_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.no_object_weight = no_object_weight
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.deep_supervision = deep_supervision
        self.mask_ignore_pixels = mask_ignore_pixels

    @classmethod
    def from_config(cls, cfg: Any) -> dict[str, Any]:
        loss = cfg.MODEL.TWO_STAGE.LOSS
        return {"matcher": HungarianMatcher(cfg), "class_weight": loss.CLASS_WEIGHT,
                "mask_weight": loss.MASK_WEIGHT, "dice_weight": loss.DICE_WEIGHT,
                "no_object_weight": loss.NO_OBJECT_WEIGHT, "focal_alpha": loss.FOCAL_ALPHA,
                "focal_gamma": loss.FOCAL_GAMMA,
                "deep_supervision": cfg.MODEL.TWO_STAGE.DECODER.DEEP_SUPERVISION,
                "mask_ignore_pixels": loss.MASK_IGNORE_PIXELS}

    def single(self, logits: torch.Tensor, masks: torch.Tensor,
               targets: list[dict[str, torch.Tensor]], num_masks: float,
               match_targets: list[dict[str, torch.Tensor]] | None = None
               ) -> dict[str, torch.Tensor]:
        """Losses of one prediction (logits B x Q x (K+1), masks B x Q x h x w logits).

        Args:
            targets: per image, target masks at the losses' resolution.
            num_masks: the normalisation of the mask losses.
            match_targets: the targets at the predictions' resolution (None: ``targets``).
        """
        if not self.mask_ignore_pixels:
            targets = [{k: v for k, v in t.items() if k != "valid"} for t in targets]
        indices = self.matcher(logits, masks, match_targets or targets)
        b, q, k1 = logits.shape
        # classification: unmatched -> no-object (index K)
        target_classes = torch.full((b, q), k1 - 1, dtype=torch.long, device=logits.device)
        for i, ((src, tgt), t) in enumerate(zip(indices, targets)):
            target_classes[i, src.to(logits.device)] = t["labels"][tgt.to(logits.device)]
        weight = torch.ones(k1, device=logits.device, dtype=logits.dtype)
        weight[-1] = self.no_object_weight
        loss_ce = F.cross_entropy(logits.transpose(1, 2), target_classes, weight)
        # masks: matched pairs only, upsampled to the targets' size
        pred, gt, valid = [], [], []
        size = tuple(targets[0]["masks"].shape[-2:]) if targets else tuple(masks.shape[-2:])
        resize = size != tuple(masks.shape[-2:])
        for i, ((src, tgt), t) in enumerate(zip(indices, targets)):
            matched = masks[i, src.to(masks.device)]
            pred.append(matched if resize else matched.flatten(1))
            gt.append(t["masks"][tgt.to(masks.device)].flatten(1))
            if "valid" in t:
                valid.append(t["valid"].flatten()[None].expand(len(src), -1))
        pred_t, gt_t = torch.cat(pred), torch.cat(gt).to(masks.dtype)
        if resize and len(pred_t):
            pred_t = F.interpolate(pred_t[:, None], size=size, mode="bilinear",
                                   align_corners=False).flatten(1)
        valid_t = torch.cat(valid) if valid else None
        if len(pred_t):
            loss_mask = sigmoid_focal_loss(pred_t, gt_t, self.focal_alpha, self.focal_gamma,
                                           valid_t).sum() / num_masks
            loss_dice = dice_loss(pred_t, gt_t, valid_t).sum() / num_masks
        else:  # no target in the batch: keep the graph, no mask signal
            loss_mask = loss_dice = masks.sum() * 0.0
        return {"loss_ce": loss_ce * self.class_weight, "loss_mask": loss_mask * self.mask_weight,
                "loss_dice": loss_dice * self.dice_weight}

    def forward(self, predictions: list[tuple[torch.Tensor, torch.Tensor]],
                targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Weighted losses of the last prediction, plus ``<name>_<i>`` for earlier ones.

        Args:
            predictions: per decoder output (class logits B x Q x (K+1), mask logits), the last
                one final; the masks of every output have one size.
            targets: per image, target masks at the losses' resolution (module docstring).
        """
        num_masks = float(max(sum(len(t["labels"]) for t in targets), 1))
        match_targets = downsample_targets(targets, tuple(predictions[-1][1].shape[-2:]))
        losses = self.single(*predictions[-1], targets, num_masks, match_targets)
        if self.deep_supervision:
            for i, (logits, masks) in enumerate(predictions[:-1]):
                for name, value in self.single(logits, masks, targets, num_masks,
                                               match_targets).items():
                    losses[f"{name}_{i}"] = value
        return losses


def downsample_targets(targets: list[dict[str, torch.Tensor]], size: tuple[int, int]
                       ) -> list[dict[str, torch.Tensor]] | None:
    """The targets nearest-downsampled to ``size`` for the matcher (MaskFormer's matcher:
    ``F.interpolate(tgt_mask[:, None], size, mode="nearest")``); None when they have that size."""
    if not targets or tuple(targets[0]["masks"].shape[-2:]) == tuple(size):
        return None
    out = []
    for t in targets:
        item = dict(t)
        for key in ("masks", "valid"):
            if key in t:
                m = t[key].float()
                m = m[:, None] if key == "masks" else m[None, None]
                m = F.interpolate(m, size=size, mode="nearest")
                item[key] = m[:, 0] if key == "masks" else m[0, 0] > 0.5
        out.append(item)
    return out
