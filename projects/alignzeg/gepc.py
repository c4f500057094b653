"""Generalization-Enhanced Proposal Classification (GEPC): proposal features, class and background
prototypes, feature expansion (FES, Manifold Mixup) and background diversity (BDS).

A proposal is represented by its query state ``s`` (B x Q x C) and ``pooled``, the frozen CLIP
patch embeddings averaged under its soft mask (B x Q x D). Its feature in CLIP's joint space is
``z = normalize(MLP(s) + pooled)``; class logits are ``cos(z, t_k) / T`` against the CLIP text
prototypes ``t_k``, and the background ("no object") logit is the log-sum-exp of
``cos(z, b_m) / T`` over all background prototypes ``b_m``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.modeling.mlp import MLP


def mask_pool(dense: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """Average of ``dense`` (B x D x h x w) under each sigmoid mask (B x Q x H x W, detached,
    area-resized to h x w) -> B x Q x D."""
    masks = F.adaptive_avg_pool2d(mask_logits.detach().sigmoid(), dense.shape[-2:])
    weights = masks.flatten(2)
    pooled = torch.einsum("bqn,bdn->bqd", weights, dense.flatten(2).to(weights.dtype))
    return pooled / weights.sum(-1, keepdim=True).clamp(min=1e-6)


class ProposalClassifier(nn.Module):
    """Proposal features and logits over text prototypes + background prototypes.

    Args:
        hidden_dim: query-state width.
        embed_dim: CLIP joint-space size D.
        embed_hidden_dim, embed_layers: the query MLP.
        num_background: background prototypes (1 = a single void embedding).
        temperature: logits = cosine / temperature.
        clip_pool: add the mask-pooled CLIP embedding to the MLP output.
    """

    def __init__(self, hidden_dim: int, embed_dim: int, embed_hidden_dim: int,
                 embed_layers: int, num_background: int, temperature: float,
                 clip_pool: bool = True):
        super().__init__()
        self.embed = MLP(hidden_dim, embed_hidden_dim, embed_dim, embed_layers)
        self.clip_pool = clip_pool
        if clip_pool:  # start from CLIP's own region embedding
            nn.init.zeros_(self.embed.layers[-1].weight)
            nn.init.zeros_(self.embed.layers[-1].bias)
        self.background = nn.Parameter(F.normalize(torch.randn(num_background, embed_dim), dim=-1))
        self.temperature = temperature

    def features(self, states: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        """Unnormalised proposal features ``MLP(states) [+ pooled]`` (... x D)."""
        z = self.embed(states)
        return z + pooled.to(z.dtype) if self.clip_pool and pooled is not None else z

    def logits(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Logits ... x (K + 1) of unnormalised features over the K text prototypes (L2-normalised
        K x D) and the background (last: log-sum-exp over every background prototype)."""
        z = F.normalize(features, dim=-1)
        classes = z @ text.to(z.dtype).T / self.temperature
        background = z @ F.normalize(self.background, dim=-1).to(z.dtype).T / self.temperature
        return torch.cat([classes, background.logsumexp(-1, keepdim=True)], dim=-1)

    def background_regularisation(self) -> torch.Tensor:
        """L_reg: mean positive cosine similarity over pairs of background prototypes (0 with a
        single prototype)."""
        b = F.normalize(self.background, dim=-1)
        m = b.shape[0]
        if m < 2:
            return self.background.sum() * 0.0
        sim = b @ b.T
        off = ~torch.eye(m, dtype=torch.bool, device=b.device)
        return sim[off].clamp(min=0).mean()


def manifold_mixup(sources: list[torch.Tensor], labels: torch.Tensor, num_classes: int,
                   alpha: float, num_per_real: int = 1
                   ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Virtual samples ``lam * x_a + (1 - lam) * x_b`` of pairs with different labels.

    Args:
        sources: tensors N x ... of the same N real samples (mixed with the same lambda).
        labels: N class indices.
        num_classes: width of the soft targets.
        alpha: lambda ~ Beta(alpha, alpha).
        num_per_real: pairs drawn per real sample (random partners).

    Returns:
        (mixed tensors M x ..., soft targets M x num_classes, indices a M, indices b M); M = 0
        when fewer than two classes are present.
    """
    n = labels.shape[0]
    device = labels.device
    a = torch.arange(n, device=device).repeat(num_per_real)
    b = torch.randint(0, max(n, 1), (a.shape[0],), device=device)  # global RNG (seeded)
    keep = labels[a] != labels[b] if n else torch.zeros(0, dtype=torch.bool, device=device)
    a, b = a[keep], b[keep]
    lam = torch.distributions.Beta(alpha, alpha).sample((a.shape[0],)).to(device)
    mixed = []
    for x in sources:
        lx = lam.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        mixed.append(lx * x[a] + (1 - lx) * x[b])
    targets = (lam[:, None] * F.one_hot(labels[a], num_classes)
               + (1 - lam[:, None]) * F.one_hot(labels[b], num_classes))
    return mixed, targets, a, b


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-sum_k targets_k log softmax(logits)_k`` (0 for no rows)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return -(targets * logits.log_softmax(-1)).sum(-1).mean()
