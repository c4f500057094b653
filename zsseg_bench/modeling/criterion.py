"""Set criteria of mask-classification heads, and semantic targets.

Two criteria share their outline (Hungarian matching, then ``loss_ce`` over the vocabulary +
no-object, ``loss_mask`` and ``loss_dice`` of matched masks, deep supervision) but not their
maths, so they are two classes rather than one with options:

- :class:`SetCriterion`: MaskFormer's (zsseg's, AlignZeg's), at mask resolution, focal mask
  loss, optional valid-pixel maps; built from the keys :func:`add_set_criterion_config` mounts
  (:func:`build_set_criterion`);
- :class:`PointSetCriterion`: Mask2Former's (SAN's), on PointRend-sampled points, BCE mask loss,
  the number of masks averaged over processes.

MaskFormer's :class:`SetCriterion`
----------------------------------

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

Mask2Former's :class:`PointSetCriterion`
----------------------------------------

MendelXu/SAN @ e19262d copies it from Mask2Former (``san/model/criterion.py``) and builds it in
``san/model/san.py:62-97``. Per image, after :class:`~zsseg_bench.modeling.matcher.PointMatcher`:

- ``loss_ce``: cross-entropy over K + 1, unmatched queries -> no-object (index K) weighted
  ``no_object_weight``;
- ``loss_mask`` / ``loss_dice``: matched pairs on PointRend importance-sampled points of the
  prediction (:func:`~zsseg_bench.modeling.point_sampling.uncertain_points`), predictions at
  their own resolution, targets at theirs (normalised coordinates), summed over masks / the
  number of target masks (averaged over processes, at least 1);
- deep supervision: the same on every earlier output with its own matching, suffix ``_<i>``.

Random draws happen in the official order (matcher per image, then the mask losses' two draws;
the final output first, then the auxiliary ones), so a run seeded as the official one draws the
same points. Losses come back multiplied by their weights.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.data.zero_shot import IGNORE_LABEL, UNLABELLED_LABEL
from zsseg_bench.modeling.config_fragment import mount, node_at
from zsseg_bench.modeling.matcher import HungarianMatcher, PointMatcher
from zsseg_bench.modeling.point_sampling import point_sample, uncertain_points
from zsseg_bench.utils import comm

Targets = list[dict[str, torch.Tensor]]
Indices = list[tuple[torch.Tensor, torch.Tensor]]


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
    """MaskFormer's matching + class/mask/dice losses (+ deep supervision); module docstring."""

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


class PointSetCriterion(nn.Module):
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


def add_set_criterion_config(cfg: Any, prefix: str) -> None:
    """Adds the keys of MaskFormer's matcher and :class:`SetCriterion` below ``prefix``:
    ``<prefix>.MATCHER.*`` and ``<prefix>.LOSS.*`` (in place; a node that exists is left as it
    is, so a method may add its own keys to ``LOSS`` or ``MATCHER`` after this call)."""
    m, created = mount(cfg, f"{prefix}.MATCHER")
    if created:
        # MaskFormer HungarianMatcher(cost_class=1, cost_mask=MASK_WEIGHT=20,
        # cost_dice=DICE_WEIGHT=1) (facebookresearch/MaskFormer mask_former/config.py,
        # mask_former/mask_former_model.py).
        m.COST_CLASS = 1.0
        m.COST_MASK = 20.0
        m.COST_DICE = 1.0
    loss, created = mount(cfg, f"{prefix}.LOSS")
    if created:
        # MaskFormer: CE weight 1 with NO_OBJECT_WEIGHT 0.1, sigmoid focal x20 (alpha 0.25,
        # gamma 2, Detectron2's sigmoid_focal_loss defaults), dice x1 (same sources).
        loss.CLASS_WEIGHT = 1.0
        loss.MASK_WEIGHT = 20.0
        loss.DICE_WEIGHT = 1.0
        loss.NO_OBJECT_WEIGHT = 0.1
        loss.FOCAL_ALPHA = 0.25
        loss.FOCAL_GAMMA = 2.0
        # Mask losses compare masks at input resolution / TARGET_STRIDE (MaskFormer: 1, the
        # matched predictions upsampled to the target size, SetCriterion.loss_masks). A larger
        # stride saves time on CPU. Read by the head, which builds the targets.
        loss.TARGET_STRIDE = 1
        # MaskFormer counts ignore pixels as negatives of every target mask (False). True leaves
        # them out of the mask losses and the mask costs.
        loss.MASK_IGNORE_PIXELS = False


def build_set_criterion(cfg: Any, prefix: str, *, deep_supervision: bool) -> SetCriterion:
    """The :class:`SetCriterion` (and its :class:`~zsseg_bench.modeling.matcher.HungarianMatcher`)
    of the keys below ``prefix`` (:func:`add_set_criterion_config`)."""
    m, loss = node_at(cfg, f"{prefix}.MATCHER"), node_at(cfg, f"{prefix}.LOSS")
    matcher = HungarianMatcher(cost_class=m.COST_CLASS, cost_mask=m.COST_MASK,
                               cost_dice=m.COST_DICE, focal_alpha=loss.FOCAL_ALPHA,
                               focal_gamma=loss.FOCAL_GAMMA)
    return SetCriterion(matcher=matcher, class_weight=loss.CLASS_WEIGHT,
                        mask_weight=loss.MASK_WEIGHT, dice_weight=loss.DICE_WEIGHT,
                        no_object_weight=loss.NO_OBJECT_WEIGHT, focal_alpha=loss.FOCAL_ALPHA,
                        focal_gamma=loss.FOCAL_GAMMA, deep_supervision=deep_supervision,
                        mask_ignore_pixels=loss.MASK_IGNORE_PIXELS)
