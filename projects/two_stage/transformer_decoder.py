"""Query decoder of the proposal network: N learned queries -> per-query embeddings and masks.

Two registered decoders (``QUERY_DECODER_REGISTRY``, chosen by ``MODEL.TWO_STAGE.DECODER.NAME``)
sharing their blocks (:class:`_Block`, :class:`MLP`, the prediction heads of
:class:`QueryDecoder`):

- :class:`MaskFormerDecoder` (zsseg, ZegFormer): a DETR decoder (self-attention -> cross-attention
  -> FFN, post-norm by default) whose memory is the backbone's ``res5`` (projected to
  ``hidden_dim``) with sine positional encodings; queries start at zero with learned positional
  embeddings; one prediction per layer.
- :class:`Mask2FormerDecoder`: masked cross-attention -> self-attention -> FFN, round-robin over
  three pixel-decoder scales (strides 32, 16, 8) with level embeddings; learned query features;
  each layer attends only inside the foreground (sigmoid > 0.5) of the previous prediction;
  predictions from the initial queries and after every layer.

Every prediction is (``embeddings`` B x Q x D, L2-normalised in CLIP's joint space by the
query-classifier MLP; ``masks`` B x Q x H/4 x W/4 logits from the dot product of a mask
embedding with the per-pixel mask features).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from fvcore.common.registry import Registry
from torch import nn

from zsseg_bench.modeling.mlp import MLP
from zsseg_bench.modeling.position_encoding import sine_position_encoding
from zsseg_bench.utils.errors import UserError


class _Block(nn.Module):
    """Attention or FFN with residual, dropout and LayerNorm (pre- or post-norm)."""

    def __init__(self, dim: int, nheads: int, dropout: float, pre_norm: bool,
                 ffn_dim: int = 0):
        super().__init__()
        self.ffn = ffn_dim > 0
        if self.ffn:
            self.body = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(inplace=True),
                                      nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        else:
            self.body = nn.MultiheadAttention(dim, nheads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(self, x: torch.Tensor, query_pos: torch.Tensor | None = None,
                memory: torch.Tensor | None = None, memory_pos: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.norm(x) if self.pre_norm else x
        if self.ffn:
            y = self.body(y)
        else:
            q = y if query_pos is None else y + query_pos
            if memory is None:  # self-attention
                k, v = q, y
            else:
                k = memory if memory_pos is None else memory + memory_pos
                v = memory
            y = self.body(q, k, v, attn_mask=attn_mask, need_weights=False)[0]
        x = x + self.dropout(y)
        return x if self.pre_norm else self.norm(x)


#: Query decoders of the proposal network, by name (``MODEL.TWO_STAGE.DECODER.NAME``).
QUERY_DECODER_REGISTRY = Registry("TWO_STAGE_QUERY_DECODER")


class QueryDecoder(nn.Module):
    """What both decoders share: learned query positions, ``num_layers`` layers of
    :class:`_Block` in the subclass's ``ORDER``, the output LayerNorm and the class-embedding and
    mask-embedding MLPs (:meth:`predict`).

    Subclasses set ``ORDER``, add their memory modules in :meth:`_build_memory` and implement
    ``forward(res5, multi_scale, mask_features)`` (predictions of every layer, last = final).
    """

    ORDER: tuple[str, ...] = ()

    def __init__(self, *, res5_channels: int, conv_dim: int, mask_dim: int, embed_dim: int,
                 num_queries: int, hidden_dim: int, nheads: int, dim_feedforward: int,
                 num_layers: int, dropout: float, pre_norm: bool, embed_layers: int,
                 embed_hidden_dim: int, num_levels: int = 3):
        super().__init__()
        self.num_queries = num_queries
        self.num_levels = num_levels
        self.nheads = nheads
        self.hidden_dim = hidden_dim
        self.query_pos = nn.Embedding(num_queries, hidden_dim)
        self._build_memory(res5_channels=res5_channels, conv_dim=conv_dim)
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            self.layers.append(nn.ModuleDict({
                kind: _Block(hidden_dim, nheads, dropout, pre_norm,
                             ffn_dim=dim_feedforward if kind == "ffn" else 0)
                for kind in self.ORDER}))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.class_embed = MLP(hidden_dim, embed_hidden_dim, embed_dim, embed_layers)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        for p in self.layers.parameters():  # DETR / MaskFormer: xavier_uniform on matrices
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _build_memory(self, *, res5_channels: int, conv_dim: int) -> None:
        """Adds the modules that turn backbone / pixel-decoder features into memory."""
        raise NotImplementedError

    def predict(self, queries: torch.Tensor, mask_features: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(L2-normalised class embeddings B x Q x D, mask logits B x Q x h x w)."""
        out = self.decoder_norm(queries)
        embeddings = F.normalize(self.class_embed(out), dim=-1)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(out), mask_features)
        return embeddings, masks

    def _query_pos(self, batch: int) -> torch.Tensor:
        return self.query_pos.weight.unsqueeze(0).expand(batch, -1, -1)


@QUERY_DECODER_REGISTRY.register()
class MaskFormerDecoder(QueryDecoder):
    """MaskFormer / DETR: self -> cross -> FFN over the projected ``res5`` with sine positions;
    queries start at zero; one prediction per layer."""

    ORDER = ("self", "cross", "ffn")

    def _build_memory(self, *, res5_channels: int, conv_dim: int) -> None:
        self.input_proj = nn.ModuleList([nn.Conv2d(res5_channels, self.hidden_dim, 1)])

    def forward(self, res5: torch.Tensor, multi_scale: list[torch.Tensor],
                mask_features: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Predictions of every layer, the last one being the final output.

        Args:
            res5: backbone res5 (the memory).
            multi_scale: unused (the signature both decoders share).
            mask_features: B x mask_dim x H/4 x W/4.
        """
        query_pos = self._query_pos(mask_features.shape[0])
        memory = self.input_proj[0](res5).flatten(2).transpose(1, 2)
        position = sine_position_encoding(res5, self.hidden_dim // 2).flatten(2).transpose(1, 2)
        tgt = torch.zeros_like(query_pos)
        preds = []
        for layer in self.layers:
            tgt = layer["self"](tgt, query_pos)
            tgt = layer["cross"](tgt, query_pos, memory, position)
            tgt = layer["ffn"](tgt)
            preds.append(self.predict(tgt, mask_features))
        return preds


@QUERY_DECODER_REGISTRY.register()
class Mask2FormerDecoder(QueryDecoder):
    """Mask2Former: masked cross -> self -> FFN, round-robin over the pixel decoder's strides
    32, 16, 8 with level embeddings; learned query features; predictions from the initial
    queries and after every layer."""

    ORDER = ("cross", "self", "ffn")

    def _build_memory(self, *, res5_channels: int, conv_dim: int) -> None:
        self.query_feat = nn.Embedding(self.num_queries, self.hidden_dim)
        self.level_embed = nn.Embedding(self.num_levels, self.hidden_dim)
        self.input_proj = nn.ModuleList(
            nn.Conv2d(conv_dim, self.hidden_dim, 1) if conv_dim != self.hidden_dim
            else nn.Identity() for _ in range(self.num_levels))

    def _attention_mask(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """True (blocked) outside sigmoid > 0.5 of the previous prediction; a query whose mask
        is empty attends everywhere."""
        m = F.interpolate(masks.detach(), size=size, mode="bilinear", align_corners=False)
        blocked = (m.sigmoid() < 0.5).flatten(2)  # B x Q x HW
        blocked[blocked.all(-1)] = False
        return blocked.repeat_interleave(self.nheads, dim=0)

    def forward(self, res5: torch.Tensor, multi_scale: list[torch.Tensor],
                mask_features: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Predictions of the initial queries and of every layer, the last one being final.

        Args:
            res5: unused (the signature both decoders share).
            multi_scale: pixel-decoder outputs at strides 32, 16, 8 (the memory).
            mask_features: B x mask_dim x H/4 x W/4.
        """
        b = mask_features.shape[0]
        query_pos = self._query_pos(b)
        memories, positions, sizes = [], [], []
        for i, x in enumerate(multi_scale[: self.num_levels]):
            sizes.append(tuple(x.shape[-2:]))
            positions.append(sine_position_encoding(x, self.hidden_dim // 2)
                             .flatten(2).transpose(1, 2))
            mem = self.input_proj[i](x).flatten(2).transpose(1, 2)
            memories.append(mem + self.level_embed.weight[i][None, None])
        tgt = self.query_feat.weight.unsqueeze(0).expand(b, -1, -1)
        preds = [self.predict(tgt, mask_features)]
        for i, layer in enumerate(self.layers):
            level = i % len(memories)
            attn_mask = self._attention_mask(preds[-1][1], sizes[level])
            tgt = layer["cross"](tgt, query_pos, memories[level], positions[level],
                                 attn_mask=attn_mask)
            tgt = layer["self"](tgt, query_pos)
            tgt = layer["ffn"](tgt)
            preds.append(self.predict(tgt, mask_features))
        return preds


def build_query_decoder(name: str, **kwargs: Any) -> QueryDecoder:
    """The registered decoder ``name`` (``MODEL.TWO_STAGE.DECODER.NAME``) built with the keyword
    arguments of :class:`QueryDecoder`."""
    if name not in QUERY_DECODER_REGISTRY:
        raise UserError(f"MODEL.TWO_STAGE.DECODER.NAME = {name!r} is not a registered query "
                        f"decoder ({', '.join(sorted(n for n, _ in QUERY_DECODER_REGISTRY))})")
    return QUERY_DECODER_REGISTRY.get(name)(**kwargs)
