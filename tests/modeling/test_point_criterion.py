"""Mask2Former's point-sampled matcher and set criterion (SAN's; zsseg_bench/modeling/matcher.py,
criterion.py) and PointRend's point sampling, against hand-computed expectations."""

import pytest
import torch

from zsseg_bench.modeling.criterion import PointSetCriterion
from zsseg_bench.modeling.matcher import PointMatcher
from zsseg_bench.modeling.point_sampling import point_sample, uncertain_points

pytestmark = pytest.mark.usefixtures("one_thread")


def test_point_sample_reads_pixel_centres():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    coords = torch.tensor([[[0.5 / 4, 0.5 / 3], [3.5 / 4, 2.5 / 3], [1.5 / 4, 1.5 / 3]]])
    torch.testing.assert_close(point_sample(x, coords).flatten(), torch.tensor([0.0, 11.0, 5.0]))


def test_uncertain_points_take_the_most_uncertain_share_and_draw_in_order():
    logits = torch.full((2, 1, 8, 8), 10.0)
    logits[:, :, :, 4:] = 0.01  # the right half is uncertain
    torch.manual_seed(0)
    coords = uncertain_points(logits, 100, 3.0, 0.75)
    assert coords.shape == (2, 100, 2)
    assert bool((coords[:, :75, 0] > 0.5 - 1 / 16).all())  # importance-sampled: right half
    # the two draws of the global generator, in order: candidates, then the random rest
    torch.manual_seed(0)
    candidates = torch.rand(2, 300, 2)
    rest = torch.rand(2, 25, 2)
    torch.testing.assert_close(coords[:, 75:], rest)
    assert all(any(torch.equal(c, cand) for cand in candidates[0]) for c in coords[0, :5])


def _criterion(num_points=256) -> PointSetCriterion:
    matcher = PointMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=num_points)
    return PointSetCriterion(matcher=matcher, class_weight=2.0, mask_weight=5.0,
                             dice_weight=5.0, no_object_weight=0.1, num_points=num_points,
                             oversample_ratio=3.0, importance_sample_ratio=0.75)


def _target() -> list[dict[str, torch.Tensor]]:
    masks = torch.zeros(2, 16, 16)
    masks[0, :8], masks[1, 8:] = 1, 1
    return [{"labels": torch.tensor([2, 0]), "masks": masks}]


def test_matcher_finds_the_obvious_assignment():
    masks = torch.full((1, 3, 4, 4), -8.0)
    masks[0, 2, :2], masks[0, 0, 2:] = 8.0, 8.0  # query 2 = top half, query 0 = bottom half
    logits = torch.zeros(1, 3, 4)
    logits[0, 2, 2], logits[0, 0, 0] = 5.0, 5.0
    torch.manual_seed(0)
    (rows, cols), = _criterion().matcher(logits, masks, _target())
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 1, 2: 0}


def test_criterion_hand_checks():
    """Right classes: CE ~0; the no-object weight enters the CE as a class weight (weighted
    mean); mask losses of the right masks far below those of inverted ones (not 0: 75% of the
    points sit where the logits are least certain, on the mask boundary)."""
    target = _target()
    right = torch.where(target[0]["masks"].bool(), 20.0, -20.0)  # target 0 top, 1 bottom
    masks = torch.stack([right[1], torch.full((16, 16), -20.0), right[0]])[None]
    logits = torch.full((1, 3, 4), -20.0)
    logits[0, 2, 2], logits[0, 0, 0], logits[0, 1, 3] = 20.0, 20.0, 20.0
    criterion = _criterion()
    torch.manual_seed(0)
    assert float(criterion([(logits, masks)], target)["loss_ce"]) < 1e-6
    wrong = logits.clone()
    wrong[0, 1] = torch.tensor([20.0, -20.0, -20.0, -20.0])  # unmatched query says class 0
    torch.manual_seed(0)
    ce = float(criterion([(wrong, masks)], target)["loss_ce"])
    # two matched queries ~0 (weight 1 each), the no-object query 40 (weight 0.1), divided by
    # the weights' sum 2.1; times the class weight 2
    assert ce == pytest.approx(2.0 * 0.1 * 40.0 / 2.1, rel=1e-3)
    indices = [(torch.tensor([0, 2]), torch.tensor([1, 0]))]
    torch.manual_seed(0)
    good = criterion.loss_masks(masks, target, indices, 2.0)
    torch.manual_seed(0)
    bad = criterion.loss_masks(-masks, target, indices, 2.0)
    assert float(good["loss_dice"]) < 0.15 and float(bad["loss_dice"]) > 0.9
    assert float(good["loss_mask"]) * 5 < float(bad["loss_mask"])


def test_criterion_deep_supervision_names_and_an_image_without_targets():
    torch.manual_seed(0)
    logits, masks = torch.randn(2, 3, 4), torch.randn(2, 3, 4, 4)
    targets = _target() + [{"labels": torch.zeros(0, dtype=torch.long),
                            "masks": torch.zeros(0, 16, 16)}]
    losses = _criterion()([(logits, masks), (logits * 2, masks * 2)], targets)
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "loss_mask_0",
                           "loss_dice_0"}
    assert all(bool(torch.isfinite(v)) for v in losses.values())
