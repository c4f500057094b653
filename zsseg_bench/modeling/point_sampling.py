"""PointRend's point sampling, as Mask2Former's (and so SAN's) matcher and mask losses use it
(:class:`~zsseg_bench.modeling.matcher.PointMatcher`, :class:`~zsseg_bench.modeling.criterion.
PointSetCriterion`).

Written after detectron2 ``projects/PointRend/point_rend/point_features.py`` (``point_sample``,
``get_uncertain_point_coords_with_randomness``; detectron2 @ 02b5c4e2), which MendelXu/SAN @
e19262d imports in ``san/model/criterion.py:9-12`` and ``san/model/matcher.py:12``.

Randomness: points are drawn with ``torch.rand`` from the global generator (as the official code
does), in a fixed order, so that a run seeded like another draws the same points; the engine
seeds it (``SEED``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_sample(features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``features`` (N x C x H x W) at ``coords`` (N x P x 2, (x, y) in
    [0, 1]^2 over the whole map) -> N x C x P (``grid_sample``, ``align_corners=False``, zeros
    outside)."""
    out = F.grid_sample(features, 2.0 * coords.unsqueeze(2) - 1.0, align_corners=False)
    return out.squeeze(3)


def uncertain_points(logits: torch.Tensor, num_points: int, oversample_ratio: float,
                     importance_sample_ratio: float) -> torch.Tensor:
    """Points N x P x 2 where the mask logits (N x 1 x H x W) are most uncertain, plus random
    ones: ``num_points * oversample_ratio`` uniform candidates, the ``importance_sample_ratio``
    share of ``num_points`` with the smallest ``|logit|`` (sampled at the point), the rest
    uniform. Two draws from the global generator: candidates, then the random rest."""
    if oversample_ratio < 1 or not 0 <= importance_sample_ratio <= 1:
        raise ValueError("oversample_ratio must be >= 1 and importance_sample_ratio in [0, 1]")
    n = logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, num_sampled, 2, device=logits.device)
    uncertainty = -point_sample(logits, coords).abs()  # N x 1 x S
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = torch.topk(uncertainty[:, 0], k=num_uncertain, dim=1)[1]
    idx = idx + num_sampled * torch.arange(n, dtype=torch.long, device=logits.device)[:, None]
    coords = coords.view(-1, 2)[idx.view(-1)].view(n, num_uncertain, 2)
    num_random = num_points - num_uncertain
    if num_random > 0:
        coords = torch.cat([coords, torch.rand(n, num_random, 2, device=logits.device)], dim=1)
    return coords
