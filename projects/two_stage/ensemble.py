"""Fusion of the query classifier with CLIP crop classification (zsseg's CLIP ensemble; the sum
over queries that follows is the core's :mod:`zsseg_bench.modeling.semantic_inference`).

For every proposal, ``p`` (query classifier, softmax over vocabulary + void, void dropped) and
``c`` (CLIP on the proposal's crop, softmax over the vocabulary) are combined per class with the
ensemble weight ``w`` (MendelXu/zsseg.baseline, ``semantic_inference``)::

    seen classes:   p ** w       * c ** (1 - w)
    unseen classes: p ** (1 - w) * c ** w

A proposal without a CLIP score (empty mask after thresholding) gets ``c = 1``: its fused score
is ``p`` raised to the class's exponent, as in zsseg. With ``w = 0`` zsseg takes CLIP alone
(``mask_cls = clip_cls``) and leaves the proposals without a crop out of the sum over queries:
their scores are 0 here.
"""

from __future__ import annotations

import torch


def ensemble_probs(p: torch.Tensor, c: torch.Tensor | None, is_seen: torch.Tensor, weight: float,
                   valid: torch.Tensor | None = None) -> torch.Tensor:
    """Fuses query-classifier and CLIP probabilities.

    Args:
        p: ... x K query-classifier probabilities.
        c: ... x K CLIP probabilities (any values where ``valid`` is False), or None for "no
            CLIP scores at all" (returns ``p``).
        is_seen: K bool.
        weight: the ensemble weight w in [0, 1] (0: CLIP alone, module docstring).
        valid: ... bool (same leading shape), True where ``c`` exists; None = all.

    Returns:
        ... x K fused scores.
    """
    if c is None:
        return p
    if weight == 0:  # zsseg: CLIP's scores only, proposals without a crop dropped
        return c if valid is None else torch.where(valid[..., None], c, torch.zeros_like(c))
    if valid is not None:
        c = torch.where(valid[..., None], c, torch.ones_like(c))
    seen = is_seen.to(device=p.device, dtype=torch.bool)
    exp_p = seen.to(p.dtype) * weight + (~seen).to(p.dtype) * (1 - weight)  # K
    return p.pow(exp_p) * c.pow(1 - exp_p)
