"""Hungarian matcher: optimal against brute force on small cases; costs equal the losses."""

from __future__ import annotations

import itertools

import pytest
import torch

from zsseg_bench.modeling.criterion import dice_loss, sigmoid_focal_loss
from zsseg_bench.modeling.matcher import (
    HungarianMatcher,
    pairwise_dice_cost,
    pairwise_focal_cost,
)


def _matcher(**kw) -> HungarianMatcher:
    args = {"cost_class": 1.0, "cost_mask": 20.0, "cost_dice": 1.0, "focal_alpha": 0.25,
            "focal_gamma": 2.0}
    args.update(kw)
    return HungarianMatcher(**args)


def _brute_force(cost: torch.Tensor) -> float:
    """Minimal total cost over every injective map targets -> queries."""
    q, t = cost.shape
    return min(sum(float(cost[p[j], j]) for j in range(t))
               for p in itertools.permutations(range(q), t))


@pytest.mark.parametrize("seed,num_queries,num_targets", [
    (0, 4, 2), (1, 5, 3), (2, 3, 3), (3, 6, 4), (4, 5, 1), (5, 6, 5)])
def test_hungarian_is_optimal_against_brute_force(seed, num_queries, num_targets):
    g = torch.Generator().manual_seed(seed)
    k = 4
    logits = torch.randn(1, num_queries, k + 1, generator=g) * 3
    masks = torch.randn(1, num_queries, 6, 7, generator=g) * 2
    labels = torch.randint(0, k, (num_targets,), generator=g)
    tmasks = (torch.rand(num_targets, 6, 7, generator=g) > 0.5).float()
    matcher = _matcher()
    (rows, cols), = matcher(logits, masks, [{"labels": labels, "masks": tmasks}])
    assert len(rows) == len(cols) == num_targets
    assert sorted(cols.tolist()) == list(range(num_targets))  # every target matched once
    assert len(set(rows.tolist())) == num_targets  # no query twice
    cost = matcher.cost_matrix(logits[0], masks[0], labels, tmasks)
    found = float(cost[rows, cols].sum())
    assert found == pytest.approx(_brute_force(cost), abs=1e-5)


def test_matcher_recovers_a_planted_assignment():
    g = torch.Generator().manual_seed(7)
    tmasks = (torch.rand(3, 8, 8, generator=g) > 0.5).float()
    labels = torch.tensor([2, 0, 1])
    perm = torch.tensor([4, 0, 2])  # target j lives in query perm[j]
    masks = torch.full((1, 5, 8, 8), -6.0)
    logits = torch.zeros(1, 5, 4)
    for j, q in enumerate(perm.tolist()):
        masks[0, q] = tmasks[j] * 12 - 6
        logits[0, q, labels[j]] = 8.0
    rows, cols = _matcher()(logits, masks, [{"labels": labels, "masks": tmasks}])[0]
    assert dict(zip(cols.tolist(), rows.tolist())) == {0: 4, 1: 0, 2: 2}


def test_pairwise_costs_equal_the_per_mask_losses():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 30, generator=g) * 2
    targets = (torch.rand(3, 30, generator=g) > 0.4).float()
    valid = torch.rand(30, generator=g) > 0.3
    focal = pairwise_focal_cost(logits, targets, 0.25, 2.0, valid)
    dice = pairwise_dice_cost(logits, targets, valid)
    for i in range(4):
        for j in range(3):
            one = logits[i:i + 1]
            tgt = targets[j:j + 1]
            assert focal[i, j] == pytest.approx(
                float(sigmoid_focal_loss(one, tgt, 0.25, 2.0, valid[None])), rel=1e-5)
            assert dice[i, j] == pytest.approx(float(dice_loss(one, tgt, valid[None])), rel=1e-5)


def test_image_without_targets_gives_empty_match():
    logits, masks = torch.randn(1, 3, 4), torch.randn(1, 3, 5, 5)
    empty = {"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, 5, 5)}
    rows, cols = _matcher()(logits, masks, [empty])[0]
    assert rows.numel() == 0 and cols.numel() == 0
