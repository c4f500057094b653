"""Set criterion on tiny batches: semantic targets, CE with no-object weight, focal, dice."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zsseg_bench.modeling.criterion import (
    SetCriterion,
    dice_loss,
    semantic_targets,
    sigmoid_focal_loss,
)
from zsseg_bench.modeling.matcher import HungarianMatcher


def _criterion(deep_supervision: bool = True, mask_ignore_pixels: bool = False,
               **weights) -> SetCriterion:
    matcher = HungarianMatcher(cost_class=1.0, cost_mask=20.0, cost_dice=1.0, focal_alpha=0.25,
                               focal_gamma=2.0)
    w = {"class_weight": 1.0, "mask_weight": 20.0, "dice_weight": 1.0, "no_object_weight": 0.1}
    w.update(weights)
    return SetCriterion(matcher=matcher, focal_alpha=0.25, focal_gamma=2.0,
                        deep_supervision=deep_supervision,
                        mask_ignore_pixels=mask_ignore_pixels, **w)


def test_semantic_targets_one_mask_per_class_present():
    labels = torch.tensor([[[0, 0, 2, 255], [2, 2, 254, 0]]])
    (t,) = semantic_targets(labels, num_classes=3, with_valid=True)
    assert t["labels"].tolist() == [0, 2]
    assert t["masks"][0].tolist() == [[1, 1, 0, 0], [0, 0, 0, 1]]
    assert t["masks"][1].tolist() == [[0, 0, 1, 0], [1, 1, 0, 0]]
    assert t["valid"].tolist() == [[True, True, True, False], [True, True, False, True]]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        semantic_targets(labels, num_classes=2)


def test_semantic_targets_downsample_nearest():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[:, 4:, 4:] = 1
    (t,) = semantic_targets(labels, num_classes=2, size=(4, 4))
    assert t["masks"].shape == (2, 4, 4) and t["masks"][1].sum() == 4


def test_focal_and_dice_by_hand():
    x = torch.tensor([[0.0, 2.0]])
    t = torch.tensor([[1.0, 0.0]])
    p = torch.sigmoid(x)
    # pixel 1: target 1, p=0.5 ; pixel 2: target 0, p=sigmoid(2)
    f1 = -math.log(0.5) * (1 - 0.5) ** 2 * 0.25
    f2 = -math.log(1 - float(p[0, 1])) * float(p[0, 1]) ** 2 * 0.75
    assert float(sigmoid_focal_loss(x, t, 0.25, 2.0)) == pytest.approx((f1 + f2) / 2, rel=1e-5)
    d = 1 - (2 * 0.5 + 1) / (0.5 + float(p[0, 1]) + 1 + 1)
    assert float(dice_loss(x, t)) == pytest.approx(d, rel=1e-5)


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (2, 8, 8), generator=g)
    labels[0, :2] = 255
    targets = semantic_targets(labels, num_classes=3, with_valid=True)
    logits = torch.randn(2, 5, 4, generator=g, requires_grad=True)
    masks = torch.randn(2, 5, 8, 8, generator=g, requires_grad=True)
    return labels, targets, logits, masks


def test_losses_are_weighted_finite_and_differentiable():
    _, targets, logits, masks = _batch()
    crit = _criterion()
    losses = crit([(logits * 0.5, masks * 0.5), (logits, masks)], targets)
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice",
                           "loss_ce_0", "loss_mask_0", "loss_dice_0"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert logits.grad is not None and masks.grad.abs().sum() > 0
    with torch.no_grad():
        unweighted = _criterion(mask_weight=1.0)([(logits, masks)], targets)
        weighted = crit([(logits, masks)], targets)
    assert float(weighted["loss_mask"]) == pytest.approx(20 * float(unweighted["loss_mask"]))


def test_no_deep_supervision_only_final_losses():
    _, targets, logits, masks = _batch()
    losses = _criterion(deep_supervision=False)([(logits, masks), (logits, masks)], targets)
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice"}


def test_cross_entropy_matches_manual_computation_with_no_object_weight():
    labels, _, logits, masks = _batch(1)
    targets = semantic_targets(labels, num_classes=3)  # ignore pixels count (MaskFormer)
    crit = _criterion()
    indices = crit.matcher(logits, masks, targets)
    target_classes = torch.full((2, 5), 3)
    for b, (src, tgt) in enumerate(indices):
        target_classes[b, src] = targets[b]["labels"][tgt]
    weight = torch.tensor([1.0, 1.0, 1.0, 0.1])
    nll = -F.log_softmax(logits, -1).gather(-1, target_classes[..., None])[..., 0]
    w = weight[target_classes]
    manual = ((nll * w).sum() / w.sum()).detach()
    with torch.no_grad():
        loss_ce = crit([(logits, masks)], targets)["loss_ce"]
    assert float(loss_ce) == pytest.approx(float(manual), rel=1e-5)


def test_perfect_prediction_has_near_zero_loss():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 2:6, 2:6] = 2
    targets = semantic_targets(labels, num_classes=3)
    masks = torch.full((1, 4, 8, 8), -20.0)
    logits = torch.full((1, 4, 4), -20.0)
    logits[0, :, 3] = 20.0  # every query: no-object ...
    masks[0, 1] = targets[0]["masks"][0] * 40 - 20  # ... except q1 = background
    masks[0, 3] = targets[0]["masks"][1] * 40 - 20  # and q3 = class 2
    logits[0, 1], logits[0, 3] = -20.0, -20.0
    logits[0, 1, 0], logits[0, 3, 2] = 20.0, 20.0
    losses = _criterion()([(logits, masks)], targets)
    assert all(float(v) < 1e-3 for v in losses.values()), losses


def test_ignore_pixels_only_matter_when_counted():
    labels, targets, logits, masks = _batch(2)
    changed = masks.detach().clone()
    changed[0, :, :2] += 5.0  # predictions on ignore pixels (rows 0-1 of image 0) only
    for ignore, same in ((True, True), (False, False)):
        crit = _criterion(mask_ignore_pixels=ignore)
        a = crit([(logits.detach(), masks.detach())], targets)
        b = crit([(logits.detach(), changed)], targets)
        equal = all(torch.allclose(a[k], b[k]) for k in ("loss_mask", "loss_dice"))
        assert equal == same


def test_matching_at_mask_resolution_and_losses_of_the_matched_masks_only():
    # MaskFormer (zsseg @ d77c3af): the matcher compares the predictions with the targets
    # nearest-downsampled to their size; the losses upsample only the matched predictions
    # (bilinear) to the targets' size
    torch.manual_seed(0)
    criterion = _criterion(deep_supervision=False)
    logits, masks = torch.randn(1, 5, 4), torch.randn(1, 5, 8, 8, requires_grad=True)
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[0, 5:20, 3:17] = 1
    labels[0, 25:, :] = 255
    full = semantic_targets(labels, num_classes=3)
    losses = criterion([(logits, masks)], full)
    small = semantic_targets(labels, num_classes=3, size=(8, 8))
    (src, tgt), = criterion.matcher(logits, masks, small)
    up = F.interpolate(masks[0, src][:, None], size=(32, 32), mode="bilinear",
                       align_corners=False)[:, 0].flatten(1)
    gt = full[0]["masks"][tgt].flatten(1)
    n = float(len(full[0]["labels"]))
    torch.testing.assert_close(losses["loss_mask"],
                               20.0 * sigmoid_focal_loss(up, gt, 0.25, 2.0).sum() / n)
    torch.testing.assert_close(losses["loss_dice"], dice_loss(up, gt).sum() / n)
    losses["loss_mask"].backward()  # only the matched masks got a gradient
    unmatched = [q for q in range(5) if q not in src.tolist()]
    assert masks.grad[0, unmatched].abs().sum() == 0 and masks.grad[0, src].abs().sum() > 0
