"""ZegCLIP's non-mutually-exclusive loss: per-class sigmoid focal loss + dice loss.

As the official ``SegPlusCriterion`` (``models/losses/criterion.py``): every class of the
vocabulary gets a binary mask; the focal loss averages over pixels and sums over (image, class)
pairs, the dice loss sums over the (image, class) pairs present in the ground truth, and both
are divided by the number of those present pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zsseg_bench.data.zero_shot import IGNORE_LABEL
from zsseg_bench.modeling.inference_modes import resize_scores


def binary_targets(labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One binary mask per class from a label map.

    Args:
        labels: ``B x H x W`` class indices in ``0..num_classes-1``, 255 = ignore.
        num_classes: K.

    Returns:
        ``targets`` float ``B x K x H x W`` (all zero at ignored pixels) and ``valid`` bool
        ``B x 1 x H x W`` (pixels that are not ignored).
    """
    valid = labels != IGNORE_LABEL
    if (labels[valid] >= num_classes).any() or (labels[valid] < 0).any():
        raise ValueError(f"labels outside 0..{num_classes - 1} (and 255): "
                         f"{sorted(set(labels[valid].unique().tolist()))}")
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    targets = F.one_hot(safe.long(), num_classes).permute(0, 3, 1, 2).to(torch.float32)
    valid = valid.unsqueeze(1)
    return targets * valid, valid


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                       alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """RetinaNet focal loss per (image, class), averaged over the weighted pixels.

    Args:
        logits, targets: ``B x K x H x W``.
        weights: ``B x 1 x H x W`` pixel weights (1 where the pixel counts).
        alpha: weight of positives (``1 - alpha`` for negatives); < 0 disables it.
        gamma: focusing exponent.

    Returns:
        ``B x K`` losses.
    """
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    prob = logits.sigmoid()
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    denom = weights.flatten(2).sum(-1).clamp(min=1)
    return (loss * weights).flatten(2).sum(-1) / denom


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``1 - (2|p·t| + 1) / (|p| + |t| + 1)`` per (image, class), over the weighted pixels.

    Returns:
        ``B x K`` losses.
    """
    prob = (logits.sigmoid() * weights).flatten(2)
    targets = (targets * weights).flatten(2)
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def mask_losses(logits: torch.Tensor, labels: torch.Tensor, *, focal_weight: float,
                dice_weight: float, alpha: float = 0.25, gamma: float = 2.0,
                ignore_as_negative: bool = True) -> dict[str, torch.Tensor]:
    """Weighted focal + dice losses of one layer's class masks.

    Args:
        logits: ``B x K x h x w`` mask logits (upsampled here to the label size, unless
            already there).
        labels: ``B x H x W`` indices into the K classes, 255 = ignore.
        focal_weight, dice_weight: loss weights.
        alpha, gamma: focal-loss parameters.
        ignore_as_negative: ignored pixels count as negatives of every class (the official
            criterion); else they are left out of both losses.

    Returns:
        ``{"loss_focal": ..., "loss_dice": ...}`` (scalars, already weighted).
    """
    logits = resize_scores(logits.float(), labels.shape[-2:])
    targets, valid = binary_targets(labels, logits.shape[1])
    weights = torch.ones_like(valid, dtype=logits.dtype) if ignore_as_negative else valid.to(
        logits.dtype)
    present = targets.flatten(2).amax(-1) > 0  # B x K: (image, class) pairs in the labels
    num_masks = present.sum().clamp(min=1).to(logits.dtype)
    focal = sigmoid_focal_loss(logits, targets, weights, alpha, gamma).sum() / num_masks
    dice = (dice_loss(logits, targets, weights) * present).sum() / num_masks
    return {"loss_focal": focal_weight * focal, "loss_dice": dice_weight * dice}
