"""Predictive Bias Correction (PBC): a binary class indicator and the inference-time correction.

The indicator is an MLP on the (detached) proposal feature giving the probability that the
proposal is *not* of a known seen class. Trained with ``L_bc`` (binary cross-entropy): real
proposals matched to seen classes are negatives, virtual FES features (and, in self-training,
proposals matched to pseudo-labelled unseen classes) are positives. At inference the seen-class
probabilities of flagged proposals are scaled down; unseen-class probabilities never change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.modeling.mlp import MLP


class BiasIndicator(nn.Module):
    """``features`` ... x D (unnormalised proposal features) -> ... logits of "not seen"."""

    def __init__(self, embed_dim: int, hidden_dim: int):
        super().__init__()
        self.mlp = MLP(embed_dim, hidden_dim, 1, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(F.normalize(features.detach(), dim=-1)).squeeze(-1)

    def loss(self, negatives: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """L_bc: mean BCE over negatives (target 0) and positives (target 1), each ... x D."""
        logits = torch.cat([self(negatives), self(positives)])
        if logits.numel() == 0:
            return self.mlp.layers[0].weight.sum() * 0.0
        targets = torch.cat([torch.zeros(negatives.shape[0]), torch.ones(positives.shape[0])])
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits))


def correct_seen_scores(probs: torch.Tensor, unseen_prob: torch.Tensor, is_seen: torch.Tensor,
                        threshold: float, factor: float) -> torch.Tensor:
    """Multiplies the seen-class probabilities of flagged proposals by ``factor``.

    Args:
        probs: B x Q x K class probabilities of the proposals.
        unseen_prob: B x Q indicator probabilities ("not a seen class").
        is_seen: K bool.
        threshold: a proposal is flagged when ``unseen_prob > threshold``.
        factor: multiplier of the flagged proposals' seen-class probabilities.

    Returns:
        The corrected B x Q x K probabilities (unflagged proposals and unseen classes unchanged).
    """
    flagged = (unseen_prob > threshold).unsqueeze(-1)  # B x Q x 1
    seen = is_seen.to(probs.device).view(1, 1, -1)
    scale = torch.where(flagged & seen, torch.full_like(probs, factor), torch.ones_like(probs))
    return probs * scale
