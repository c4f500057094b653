"""Mutually-Refined Proposal Extraction (MRPE): mask queries and pixel features refine each other.

Each layer (post-norm, DETR-style blocks): query self-attention -> query-to-feature
cross-attention -> query FFN, then (MRPE on) feature-to-query cross-attention that updates the
pixel features. Every layer predicts class-agnostic masks ``einsum(mask_embed(q), features)``
from its own (updated) features; the queries' states are the proposals' hidden states.
With ``mutual=False`` the features stay fixed (a MaskFormer-style decoder on one scale).
"""

from __future__ import annotations

import torch
from torch import nn

from zsseg_bench.modeling.mlp import MLP
from zsseg_bench.modeling.position_encoding import sine_position_encoding


class _Attention(nn.Module):
    """``norm(x + dropout(attn(x + pos_x, memory + pos_m, memory)))`` (post-norm)."""

    def __init__(self, dim: int, nheads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, nheads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None, memory: torch.Tensor,
                memory_pos: torch.Tensor | None) -> torch.Tensor:
        q = x if pos is None else x + pos
        k = memory if memory_pos is None else memory + memory_pos
        return self.norm(x + self.dropout(self.attn(q, k, memory, need_weights=False)[0]))


class MRPELayer(nn.Module):
    """One layer: queries <- (self, features, FFN); features <- queries when ``mutual``."""

    def __init__(self, dim: int, nheads: int, dim_feedforward: int, dropout: float,
                 mutual: bool):
        super().__init__()
        self.self_attn = _Attention(dim, nheads, dropout)
        self.query_to_feature = _Attention(dim, nheads, dropout)
        self.ffn = nn.Sequential(nn.Linear(dim, dim_feedforward), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(dim_feedforward, dim))
        self.ffn_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.feature_to_query = _Attention(dim, nheads, dropout) if mutual else None

    def forward(self, queries: torch.Tensor, query_pos: torch.Tensor, features: torch.Tensor,
                feature_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``queries`` B x Q x C, ``features`` B x N x C -> both updated."""
        queries = self.self_attn(queries, query_pos, queries, query_pos)
        queries = self.query_to_feature(queries, query_pos, features, feature_pos)
        queries = self.ffn_norm(queries + self.dropout(self.ffn(queries)))
        if self.feature_to_query is not None:
            features = self.feature_to_query(features, feature_pos, queries, query_pos)
        return queries, features


class MRPEDecoder(nn.Module):
    """Learned mask queries over fused pixel features; masks from every layer.

    Args:
        feature_dim: channels of the pixel features (the pixel decoder's mask_dim).
        num_queries, hidden_dim, nheads, dim_feedforward, num_layers, dropout: decoder sizes.
        mutual: MRPE (features updated by the queries) or fixed features.
    """

    def __init__(self, feature_dim: int, num_queries: int, hidden_dim: int, nheads: int,
                 dim_feedforward: int, num_layers: int, dropout: float, mutual: bool = True):
        super().__init__()
        self.mutual = mutual
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_pos = nn.Embedding(num_queries, hidden_dim)
        self.input_proj = (nn.Conv2d(feature_dim, hidden_dim, 1) if feature_dim != hidden_dim
                           else nn.Identity())
        self.layers = nn.ModuleList(
            MRPELayer(hidden_dim, nheads, dim_feedforward, dropout, mutual)
            for _ in range(num_layers))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.mask_embed = MLP(hidden_dim, hidden_dim, hidden_dim, 3)
        for p in self.layers.parameters():  # DETR / MaskFormer: xavier_uniform on matrices
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, features: torch.Tensor
                ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per layer: (query states B x Q x C after the output norm, mask logits B x Q x h x w,
        the pixel features B x C x h x w the masks were computed from).

        Args:
            features: fused pixel features B x feature_dim x h x w (stride 4).
        """
        b, _, h, w = features.shape
        x = self.input_proj(features)
        pos = sine_position_encoding(x, x.shape[1] // 2).flatten(2).transpose(1, 2)
        mem = x.flatten(2).transpose(1, 2)
        queries = self.query_feat.weight.unsqueeze(0).expand(b, -1, -1)
        query_pos = self.query_pos.weight.unsqueeze(0).expand(b, -1, -1)
        out = []
        for layer in self.layers:
            queries, mem = layer(queries, query_pos, mem, pos)
            states = self.decoder_norm(queries)
            pixel = mem.transpose(1, 2).reshape(b, -1, h, w)
            masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(states), pixel)
            out.append((states, masks, pixel))
        return out
