"""ZegCLIP's non-mutually-exclusive loss: per-class sigmoid focal loss + dice loss; and the
one-stage baseline's exclusive loss it replaces, a softmax cross-entropy over the classes
(:func:`softmax_ce_loss`; ``MODEL.ZEGCLIP.LOSS.TYPE``).

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

#: ``MODEL.ZEGCLIP.LOSS.TYPE`` choices (see projects/zegclip/config.py).
LOSS_TYPES = ("focal_dice", "softmax_ce")


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
    b, h, w = labels.shape
    safe = torch.where(valid, labels, torch.zeros_like(labels)).long().view(b, 1, h * w)
    # A 1 at (class, pixel) of every valid pixel, written into zeros (one pass over B x K x HW).
    targets = torch.zeros(b, num_classes, h * w, device=labels.device)
    targets.scatter_(1, safe, valid.view(b, 1, h * w).to(targets.dtype))
    return targets.view(b, num_classes, h, w), valid.unsqueeze(1)


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor,
                       weights: torch.Tensor | None = None, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """RetinaNet focal loss per (image, class), averaged over the (weighted) pixels.

    Args:
        logits, targets: ``B x K x H x W`` (targets 0 or 1).
        weights: ``B x 1 x H x W`` pixel weights (1 where the pixel counts); None: every pixel
            counts (the plain mean, as the official criterion).
        alpha: weight of positives (``1 - alpha`` for negatives); < 0 disables it.
        gamma: focusing exponent.

    Returns:
        ``B x K`` losses.
    """
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    prob = logits.sigmoid()
    positive = targets > 0
    # For 0/1 targets, exactly the official p * t + (1 - p) * (1 - t) and
    # alpha * t + (1 - alpha) * (1 - t), in one pass each.
    p_t = torch.where(positive, prob, 1 - prob)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = torch.where(positive, alpha, 1 - alpha) * loss
    if weights is None:
        return loss.flatten(2).mean(-1)
    denom = weights.flatten(2).sum(-1).clamp(min=1)
    return (loss * weights).flatten(2).sum(-1) / denom


def dice_loss(logits: torch.Tensor, targets: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - (2|p·t| + 1) / (|p| + |t| + 1)`` per mask, over the (weighted) pixels.

    Args:
        logits, targets: ``N x ... x H x W`` masks (the last two dimensions are pixels).
        weights: pixel weights broadcastable to them; None: every pixel counts.

    Returns:
        The losses, ``N x ...``.
    """
    prob = logits.sigmoid()
    if weights is not None:
        prob, targets = prob * weights, targets * weights
    prob, targets = prob.flatten(-2), targets.flatten(-2)
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def mask_losses(logits: torch.Tensor, labels: torch.Tensor, *, focal_weight: float,
                dice_weight: float, alpha: float = 0.25, gamma: float = 2.0,
                ignore_as_negative: bool = True) -> dict[str, torch.Tensor]:
    """Weighted focal + dice losses of one layer's class masks.

    The focal loss covers every (image, class) pair, the dice loss only the pairs present in
    the labels (the official criterion computes it on those alone); both are divided by the
    number of present pairs.

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
    num_classes = logits.shape[1]
    targets, valid = binary_targets(labels, num_classes)
    weights = None if ignore_as_negative else valid.to(logits.dtype)
    present = torch.stack([torch.bincount(lab[lab != IGNORE_LABEL].long(),
                                          minlength=num_classes) > 0 for lab in labels])
    num_masks = present.sum().clamp(min=1).to(logits.dtype)
    focal = sigmoid_focal_loss(logits, targets, weights, alpha, gamma).sum() / num_masks
    image, cls = present.nonzero(as_tuple=True)
    dice = dice_loss(logits[image, cls], targets[image, cls],
                     None if weights is None else weights[image, 0]).sum() / num_masks
    return {"loss_focal": focal_weight * focal, "loss_dice": dice_weight * dice}


def softmax_ce_loss(logits: torch.Tensor, labels: torch.Tensor, *,
                    ce_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The one-stage baseline's exclusive loss: cross-entropy of a softmax over the K classes,
    averaged over the pixels that are not ignored (255 = ignore; none left: a zero loss that
    keeps the graph).

    Args:
        logits: ``B x K x h x w`` mask logits (upsampled here to the label size, unless
            already there).
        labels: ``B x H x W`` indices into the K classes, 255 = ignore.
        ce_weight: loss weight.

    Returns:
        ``{"loss_ce": ...}`` (a scalar, already weighted).
    """
    logits = resize_scores(logits.float(), labels.shape[-2:])
    if not (labels != IGNORE_LABEL).any():
        return {"loss_ce": logits.sum() * 0.0}
    loss = F.cross_entropy(logits, labels.long(), ignore_index=IGNORE_LABEL)
    return {"loss_ce": ce_weight * loss}
