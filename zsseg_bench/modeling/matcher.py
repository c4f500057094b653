"""Hungarian matching of predicted queries to target masks: two matchers, one cost form.

Cost of assigning query ``q`` to target ``t``::

    cost_class * (-p_q[class_t]) + cost_mask * mask_cost(q, t) + cost_dice * dice(q, t)

with ``p_q`` the softmax over the vocabulary plus the no-object class and ``dice`` one minus the
soft dice coefficient (+1 smoothing); the assignment minimising the total cost is found by
``scipy.optimize.linear_sum_assignment``. The two differ in where the masks are compared, which
is not an option of one matcher (other pixels, other randomness, other mask cost):

- :class:`HungarianMatcher` (MaskFormer's ``HungarianMatcher``, zsseg ``mask_former/modeling/
  matcher.py`` @ d77c3af): on every pixel of the given masks, ``mask_cost`` the sigmoid focal
  loss averaged over (optionally only valid) pixels; deterministic.
- :class:`PointMatcher` (Mask2Former's ``memory_efficient_forward``, as MendelXu/SAN @ e19262d
  copies it in ``san/model/matcher.py:99-164``): on ``num_points`` uniform random points shared
  by every predicted and target mask of an image, ``mask_cost`` the sigmoid cross-entropy, in
  float32. One ``torch.rand`` draw per image from the global generator, in the official order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from zsseg_bench.modeling.point_sampling import point_sample


def pairwise_focal_cost(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float,
                        valid: torch.Tensor | None = None) -> torch.Tensor:
    """Sigmoid focal loss of every (prediction, target) pair, averaged over (valid) pixels.

    Args:
        logits: Q x P mask logits. targets: T x P binary masks (float). valid: P bool or None.

    Returns:
        Q x T costs.
    """
    prob = logits.sigmoid()
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    pos = pos * (1 - prob) ** gamma
    neg = neg * prob ** gamma
    if alpha >= 0:
        pos, neg = pos * alpha, neg * (1 - alpha)
    if valid is not None:
        v = valid.to(logits.dtype)
        pos, neg, targets = pos * v, neg * v, targets * v
        n = v.sum().clamp(min=1)
    else:
        n = logits.shape[1]
    return (pos @ targets.T + neg @ (1 - targets).T) / n


def pairwise_dice_cost(logits: torch.Tensor, targets: torch.Tensor,
                       valid: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - (2|x t| + 1) / (|x| + |t| + 1)`` of every pair (x = sigmoid(logits)); Q x T."""
    prob = logits.sigmoid()
    if valid is not None:
        prob, targets = prob * valid.to(prob.dtype), targets * valid.to(prob.dtype)
    numerator = 2 * prob @ targets.T
    denominator = prob.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class _Matcher(nn.Module):
    """What both matchers share: the weights of the three costs and the assignment."""

    def __init__(self, *, cost_class: float, cost_mask: float, cost_dice: float):
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("all matcher costs are 0")
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice

    @staticmethod
    def assign(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(query indices, target indices), int64, of the least-cost assignment of a Q x T
        cost matrix."""
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)


class HungarianMatcher(_Matcher):
    """One-to-one assignment of queries to targets per image, on every pixel (module doc)."""

    def __init__(self, *, cost_class: float, cost_mask: float, cost_dice: float,
                 focal_alpha: float, focal_gamma: float):
        super().__init__(cost_class=cost_class, cost_mask=cost_mask, cost_dice=cost_dice)
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    def cost_matrix(self, logits: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor,
                    target_masks: torch.Tensor, valid: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """Q x T cost of one image.

        Args:
            logits: Q x (K+1) class logits. masks: Q x h x w mask logits.
            labels: T class indices. target_masks: T x h x w binary masks (same size as masks).
            valid: h x w bool of pixels that count, or None for all.
        """
        prob = logits.softmax(-1)
        cost = -prob[:, labels] * self.cost_class
        flat_pred = masks.flatten(1).float()
        flat_tgt = target_masks.flatten(1).float()
        flat_valid = None if valid is None else valid.flatten()
        if self.cost_mask:
            cost = cost + self.cost_mask * pairwise_focal_cost(
                flat_pred, flat_tgt, self.focal_alpha, self.focal_gamma, flat_valid)
        if self.cost_dice:
            cost = cost + self.cost_dice * pairwise_dice_cost(flat_pred, flat_tgt, flat_valid)
        return cost

    @torch.no_grad()
    def forward(self, logits: torch.Tensor, masks: torch.Tensor,
                targets: list[dict[str, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Matches each image's queries to its targets.

        Args:
            logits: B x Q x (K+1). masks: B x Q x h x w.
            targets: per image {"labels": T, "masks": T x h x w, optional "valid": h x w}.

        Returns:
            Per image (query indices, target indices), both int64 of length min(Q, T).
        """
        out = []
        for b, tgt in enumerate(targets):
            if len(tgt["labels"]) == 0:
                empty = torch.empty(0, dtype=torch.int64)
                out.append((empty, empty))
                continue
            cost = self.cost_matrix(logits[b], masks[b], tgt["labels"], tgt["masks"],
                                    tgt.get("valid"))
            out.append(self.assign(cost))
        return out


class PointMatcher(_Matcher):
    """Mask2Former's Hungarian matcher on randomly sampled points (module docstring)."""

    def __init__(self, *, cost_class: float, cost_mask: float, cost_dice: float,
                 num_points: int):
        super().__init__(cost_class=cost_class, cost_mask=cost_mask, cost_dice=cost_dice)
        self.num_points = num_points

    @torch.no_grad()
    def forward(self, logits: torch.Tensor, masks: torch.Tensor,
                targets: list[dict[str, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``logits``: B x Q x (K+1); ``masks``: B x Q x h x w; ``targets``: per image
        ``labels`` (T) and ``masks`` (T x H x W). Returns per image (query, target) indices."""
        out = []
        for b, tgt in enumerate(targets):
            prob = logits[b].softmax(-1)
            cost_class = -prob[:, tgt["labels"]]
            coords = torch.rand(1, self.num_points, 2, device=masks.device)
            tgt_masks = tgt["masks"].to(masks)[:, None]
            tgt_points = point_sample(tgt_masks, coords.expand(len(tgt_masks), -1, -1))[:, 0]
            pred_points = point_sample(masks[b][:, None], coords.expand(masks.shape[1], -1, -1))
            with torch.autocast(masks.device.type, enabled=False):
                pred_points, tgt_points = pred_points[:, 0].float(), tgt_points.float()
                # Sigmoid cross-entropy = the focal cost without focusing (gamma 0, no alpha).
                cost_mask = pairwise_focal_cost(pred_points, tgt_points, alpha=-1.0, gamma=0.0)
                cost_dice = pairwise_dice_cost(pred_points, tgt_points)
            cost = (self.cost_mask * cost_mask + self.cost_class * cost_class
                    + self.cost_dice * cost_dice)
            out.append(self.assign(cost.reshape(masks.shape[1], -1)))
        return out
