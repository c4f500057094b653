"""zsseg's CLIP ensemble on hand-made numbers, and MaskFormer's semantic inference."""

from __future__ import annotations

import pytest
import torch

from zsseg_bench.modeling.semantic_inference import semantic_inference
from zsseg_bench.projects.two_stage.ensemble import ensemble_probs


def test_ensemble_formula_on_hand_made_numbers():
    # one proposal, classes (seen, seen, unseen)
    p = torch.tensor([[0.5, 0.3, 0.2]])
    c = torch.tensor([[0.1, 0.2, 0.7]])
    seen = torch.tensor([True, True, False])
    out = ensemble_probs(p, c, seen, weight=0.8)
    expected = [0.5 ** 0.8 * 0.1 ** 0.2,   # seen: p^w c^(1-w)
                0.3 ** 0.8 * 0.2 ** 0.2,
                0.2 ** 0.2 * 0.7 ** 0.8]   # unseen: p^(1-w) c^w
    assert out[0].tolist() == pytest.approx(expected, rel=1e-6)
    # worked out by hand: 0.5^0.8 = 0.574349, 0.1^0.2 = 0.630957 -> 0.362390
    assert float(out[0, 0]) == pytest.approx(0.362390, abs=1e-6)
    # 0.2^0.2 = 0.724780, 0.7^0.8 = 0.751759 -> 0.544859
    assert float(out[0, 2]) == pytest.approx(0.544859, abs=1e-6)


def test_weight_extremes_select_one_classifier_per_group():
    p = torch.tensor([[0.6, 0.4]])
    c = torch.tensor([[0.1, 0.9]])
    seen = torch.tensor([True, False])
    assert ensemble_probs(p, c, seen, 1.0)[0].tolist() == pytest.approx([0.6, 0.9])
    assert ensemble_probs(p, c, seen, 0.5)[0].tolist() == pytest.approx(
        [(0.6 * 0.1) ** 0.5, (0.4 * 0.9) ** 0.5])


def test_weight_zero_is_clip_alone_without_empty_proposals():
    # zsseg semantic_inference with CLIP_ENSEMBLE_WEIGHT 0: mask_cls = clip_cls and the
    # proposals without a crop are left out (mask_pred[valid_flag]), not the formula's p / c.
    p = torch.tensor([[[0.6, 0.4], [0.3, 0.7]]])
    c = torch.tensor([[[0.1, 0.9], [0.5, 0.5]]])
    seen = torch.tensor([True, False])
    out = ensemble_probs(p, c, seen, 0.0, torch.tensor([[True, False]]))
    assert out[0, 0].tolist() == pytest.approx([0.1, 0.9])
    assert out[0, 1].tolist() == [0.0, 0.0]


def test_invalid_proposals_keep_the_query_classifier():
    p = torch.tensor([[[0.5, 0.5], [0.25, 0.75]]])  # B=1, Q=2, K=2
    c = torch.tensor([[[0.9, 0.1], [0.3, 0.3]]])
    valid = torch.tensor([[True, False]])
    seen = torch.tensor([True, False])
    out = ensemble_probs(p, c, seen, 0.7, valid)
    assert out[0, 1].tolist() == pytest.approx([0.25 ** 0.7, 0.75 ** 0.3])
    assert out[0, 0].tolist() == pytest.approx([0.5 ** 0.7 * 0.9 ** 0.3, 0.5 ** 0.3 * 0.1 ** 0.7])
    assert torch.equal(ensemble_probs(p, None, seen, 0.7), p)


def test_semantic_inference_sums_mask_times_class_over_queries():
    scores = torch.tensor([[[0.9, 0.1], [0.2, 0.8]]])  # B=1, Q=2, K=2
    masks = torch.tensor([[[[1.0, 0.0]], [[0.5, 1.0]]]])  # Q=2 masks of 1 x 2 pixels
    out = semantic_inference(scores, masks)
    assert out.shape == (1, 2, 1, 2)
    assert out[0, :, 0, 0].tolist() == pytest.approx([0.9 + 0.1, 0.1 + 0.4])
    assert out[0, :, 0, 1].tolist() == pytest.approx([0.2, 0.8])
