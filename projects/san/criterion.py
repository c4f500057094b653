"""SAN's training losses: Mask2Former's Hungarian matcher and set criterion on sampled points.

MendelXu/SAN @ e19262d copies them from Mask2Former (``san/model/matcher.py``,
``san/model/criterion.py``) and builds them in ``san/model/san.py:62-97``. Per image:

- **matching** (``memory_efficient_forward``, matcher.py:99-164): one set of ``num_points``
  uniform points shared by every predicted and target mask of the image; cost
  ``class_weight * (-p[class]) + mask_weight * BCE + dice_weight * dice`` (softmax over the
  K classes and no-object; BCE and dice with +1 smoothing on the points, in float32);
  ``scipy.optimize.linear_sum_assignment``;
- ``loss_ce``: cross-entropy over K + 1, unmatched queries -> no-object (index K) weighted
  ``no_object_weight``;
- ``loss_mask`` / ``loss_dice``: matched pairs on PointRend importance-sampled points of the
  prediction (:func:`~.point_sampling.uncertain_points`), predictions at their own resolution,
  targets at theirs (normalised coordinates), summed over masks / the number of target masks
  (averaged over processes, at least 1);
- deep supervision: the same on every earlier output with its own matching, suffix ``_<i>``.

Random draws happen in the official order (matcher per image, then the mask losses' two draws;
the final output first, then the auxiliary ones), so a run seeded as the official one draws the
same points. Losses come back multiplied by their weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from zsseg_bench.projects.two_stage.matcher import pairwise_dice_cost, pairwise_focal_cost
from zsseg_bench.utils import comm

from .point_sampling import point_sample, uncertain_points

Targets = list[dict[str, torch.Tensor]]
Indices = list[tuple[torch.Tensor, torch.Tensor]]


class PointMatcher(nn.Module):
    """Mask2Former's Hungarian matcher on randomly sampled points (module docstring)."""

    def __init__(self, *, cost_class: float, cost_mask: float, cost_dice: float,
                 num_points: int):
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("all matcher costs are 0")
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def forward(self, logits: torch.Tensor, masks: torch.Tensor, targets: Targets) -> Indices:
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
            rows, cols = linear_sum_assignment(cost.reshape(masks.shape[1], -1).cpu())
            out.append((torch.as_tensor(rows, dtype=torch.int64),
                        torch.as_tensor(cols, dtype=torch.int64)))
        return out


class SetCriterion(nn.Module):
    """Mask2Former's set criterion with point-sampled mask losses (module docstring).

    Args:
        matcher: the :class:`PointMatcher`.
        class_weight, mask_weight, dice_weight: loss weights.
        no_object_weight: cross-entropy weight of the no-object class.
        num_points, oversample_ratio, importance_sample_ratio: point sampling of the mask losses.
    """

    def __init__(self, *, matcher: PointMatcher, class_weight: float, mask_weight: float,
                 dice_weight: float, no_object_weight: float, num_points: int,
                 oversample_ratio: float, importance_sample_ratio: float):
        super().__init__()
        self.matcher = matcher
        self.weights = {"loss_ce": class_weight, "loss_mask": mask_weight,
                        "loss_dice": dice_weight}
        self.no_object_weight = no_object_weight
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    def loss_labels(self, logits: torch.Tensor, targets: Targets,
                    indices: Indices) -> torch.Tensor:
        logits = logits.float()
        num_classes = logits.shape[-1] - 1
        classes = torch.full(logits.shape[:2], num_classes, dtype=torch.int64,
                             device=logits.device)
        for b, (src, tgt) in enumerate(indices):
            classes[b, src.to(logits.device)] = targets[b]["labels"][tgt.to(logits.device)]
        weight = torch.ones(num_classes + 1, device=logits.device)
        weight[-1] = self.no_object_weight
        return F.cross_entropy(logits.transpose(1, 2), classes, weight)

    def loss_masks(self, masks: torch.Tensor, targets: Targets, indices: Indices,
                   num_masks: float) -> dict[str, torch.Tensor]:
        src = torch.cat([masks[b, s.to(masks.device)] for b, (s, _) in enumerate(indices)])
        tgt = torch.cat([targets[b]["masks"][t.to(masks.device)]
                         for b, (_, t) in enumerate(indices)]).to(masks)
        src, tgt = src[:, None], tgt[:, None]
        with torch.no_grad():
            coords = uncertain_points(src, self.num_points, self.oversample_ratio,
                                      self.importance_sample_ratio)
            labels = point_sample(tgt, coords)[:, 0]
        logits = point_sample(src, coords)[:, 0]
        loss_mask = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        prob = logits.sigmoid()
        dice = 1 - (2 * (prob * labels).sum(-1) + 1) / (prob.sum(-1) + labels.sum(-1) + 1)
        return {"loss_mask": loss_mask.mean(1).sum() / num_masks,
                "loss_dice": dice.sum() / num_masks}

    def single(self, logits: torch.Tensor, masks: torch.Tensor, targets: Targets,
               num_masks: float) -> dict[str, torch.Tensor]:
        indices = self.matcher(logits, masks, targets)
        losses = {"loss_ce": self.loss_labels(logits, targets, indices)}
        losses.update(self.loss_masks(masks, targets, indices, num_masks))
        return {k: v * self.weights[k] for k, v in losses.items()}

    def forward(self, outputs: list[tuple[torch.Tensor, torch.Tensor]],
                targets: Targets) -> dict[str, torch.Tensor]:
        """Weighted losses of the last output and ``<name>_<i>`` of the earlier ones.

        Args:
            outputs: per decoded output, (class logits B x Q x (K+1), mask logits B x Q x h x w),
                the final one last.
            targets: per image ``labels`` (T, indices < K) and ``masks`` (T x H x W).
        """
        device = outputs[-1][0].device
        count = torch.tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
        num_masks = float(comm.all_reduce_mean(count).clamp(min=1).item())
        losses = self.single(*outputs[-1], targets, num_masks)
        for i, (logits, masks) in enumerate(outputs[:-1]):
            losses.update({f"{k}_{i}": v for k, v in
                           self.single(logits, masks, targets, num_masks).items()})
        return losses
