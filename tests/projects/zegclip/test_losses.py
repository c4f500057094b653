"""Focal + dice losses and pseudo-labels of ZegCLIP on hand-sized examples."""

import math

import pytest
import torch

from zsseg_bench.projects.zegclip.losses import binary_targets, mask_losses


def _focal(logit: float, target: float, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = 1 / (1 + math.exp(-logit))
    ce = -math.log(p) if target else -math.log(1 - p)
    p_t = p if target else 1 - p
    a = alpha if target else 1 - alpha
    return a * ce * (1 - p_t) ** gamma


def test_binary_targets_zero_at_ignored_pixels():
    labels = torch.tensor([[[0, 1], [255, 1]]])
    targets, valid = binary_targets(labels, 3)
    assert targets.shape == (1, 3, 2, 2)
    assert targets[0, :, 1, 0].sum() == 0 and not valid[0, 0, 1, 0]
    assert targets[0, 1].tolist() == [[0, 1], [0, 1]]
    with pytest.raises(ValueError):
        binary_targets(torch.tensor([[[3]]]), 3)


def test_focal_and_dice_match_hand_computation():
    # One image, 2 classes, 2 pixels: pixel 0 is class 0, pixel 1 is ignored.
    logits = torch.tensor([[[[2.0, -1.0]], [[0.5, 1.0]]]])  # 1 x 2 x 1 x 2
    labels = torch.tensor([[[0, 255]]])
    out = mask_losses(logits, labels, focal_weight=1.0, dice_weight=1.0)
    # Ignored pixels are negatives of every class (official criterion); one class present.
    focal = ((_focal(2.0, 1) + _focal(-1.0, 0)) / 2 + (_focal(0.5, 0) + _focal(1.0, 0)) / 2) / 1
    assert out["loss_focal"].item() == pytest.approx(focal, rel=1e-5)
    p = torch.sigmoid(torch.tensor([2.0, -1.0]))
    dice = 1 - (2 * p[0] + 1) / (p.sum() + 1 + 1)  # only the present class (0)
    assert out["loss_dice"].item() == pytest.approx(dice.item(), rel=1e-5)
    # Weights multiply; ignored pixels can also be left out.
    weighted = mask_losses(logits, labels, focal_weight=100.0, dice_weight=2.0)
    assert weighted["loss_focal"].item() == pytest.approx(100 * focal, rel=1e-5)
    assert weighted["loss_dice"].item() == pytest.approx(2 * dice.item(), rel=1e-5)
    left_out = mask_losses(logits, labels, focal_weight=1.0, dice_weight=1.0,
                           ignore_as_negative=False)
    assert left_out["loss_focal"].item() == pytest.approx(_focal(2.0, 1) + _focal(0.5, 0),
                                                          rel=1e-5)


def test_losses_upsample_logits_and_normalise_by_present_masks():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 4, 4, requires_grad=True)
    labels = torch.randint(0, 4, (2, 16, 16))
    out = mask_losses(logits, labels, focal_weight=100.0, dice_weight=1.0)
    assert all(v.ndim == 0 and torch.isfinite(v) and v > 0 for v in out.values())
    sum(out.values()).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # All-ignore batch: zero present masks -> divided by 1, still finite.
    empty = mask_losses(logits, torch.full((2, 16, 16), 255), focal_weight=1.0, dice_weight=1.0)
    assert empty["loss_dice"].item() == 0 and torch.isfinite(empty["loss_focal"])
