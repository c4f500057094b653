"""MaskFormer's semantic inference: per-class scores from mask proposals (zsseg, AlignZeg, SAN)."""

from __future__ import annotations

import torch


def semantic_inference(class_scores: torch.Tensor, mask_probs: torch.Tensor) -> torch.Tensor:
    """MaskFormer's semantic inference: ``sum_q score[q, k] * mask[q]``.

    Args:
        class_scores: B x Q x K. mask_probs: B x Q x h x w (sigmoid of mask logits).

    Returns:
        B x K x h x w per-class scores.
    """
    return torch.einsum("bqk,bqhw->bkhw", class_scores, mask_probs)
