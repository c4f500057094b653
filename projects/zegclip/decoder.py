"""ZegCLIP's light decoder: class queries cross-attend to patch embeddings; the attention
logits of each layer (query . key, averaged over heads) are that layer's class masks.

Follows the computation of ``TPN_DecoderLayer`` / ``Attention`` in the official
``models/decode_heads/decode_seg.py`` (post-norm layers: cross-attention, then FFN; no
self-attention unless asked for, see ``MODEL.ZEGCLIP.DECODER.QUERY_SELF_ATTN``).
"""

from __future__ import annotations

import torch
from torch import nn


class RelationshipDescriptor(nn.Module):
    """Class queries from text and image: ``Linear(concat[cls ⊙ t_c, t_c])``.

    Args:
        embed_dim: size of the CLIP joint space (text and ``[CLS]`` embeddings).
        out_dim: size of the queries (the decoder width).
    """

    def __init__(self, embed_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(2 * embed_dim, out_dim)

    def forward(self, cls_embedding: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``cls_embedding`` B x D and ``text`` K x D (both L2-normalised) -> queries B x K x C."""
        text = text.to(cls_embedding.dtype).unsqueeze(0).expand(cls_embedding.shape[0], -1, -1)
        joint = cls_embedding.unsqueeze(1) * text
        return self.proj(torch.cat([joint, text], dim=-1))


class TextQuery(nn.Module):
    """The one-stage baseline's class queries: the text embedding alone, ``Linear(t_c)``.

    The paper's baseline (Sec. 3.2) takes the queries ``phi_q(T)`` from the CLIP text embeddings
    only; the relationship descriptor (Sec. 3.5) replaces that. No ``[CLS]`` path: the queries
    are the same for every image.

    Args:
        embed_dim: size of the CLIP joint space (text embeddings).
        out_dim: size of the queries (the decoder width).
    """

    def __init__(self, embed_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(embed_dim, out_dim)

    def forward(self, cls_embedding: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``text`` K x D -> queries B x K x C; ``cls_embedding`` (B x D) gives B and the dtype
        only (the signature of :class:`RelationshipDescriptor`)."""
        queries = self.proj(text.to(cls_embedding.dtype))
        return queries.unsqueeze(0).expand(cls_embedding.shape[0], -1, -1)


#: ``MODEL.ZEGCLIP.CLASS_QUERY`` choices (see projects/zegclip/config.py).
CLASS_QUERIES = ("relationship_descriptor", "text")


def build_class_query(kind: str, embed_dim: int, out_dim: int) -> nn.Module:
    """The module that turns ``(cls_embedding, text)`` into class queries: ``kind`` is
    ``"relationship_descriptor"`` (ZegCLIP) or ``"text"`` (the baseline's text-only query)."""
    if kind == "relationship_descriptor":
        return RelationshipDescriptor(embed_dim, out_dim)
    if kind == "text":
        return TextQuery(embed_dim, out_dim)
    raise ValueError(f"unknown class query {kind!r}; choices: {CLASS_QUERIES}")


class QueryKeyAttention(nn.Module):
    """Multi-head cross-attention that also returns its pre-softmax logits averaged over heads.

    Args:
        dim: width of queries and memory.
        num_heads: attention heads (``dim`` must be divisible by it).
        attn_dropout: dropout on the attention weights.
    """

    def __init__(self, dim: int, num_heads: int, attn_dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"decoder width {dim} is not divisible by {num_heads} heads "
                             "(MODEL.ZEGCLIP.DECODER.HIDDEN_DIM / NUM_HEADS)")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_dropout = nn.Dropout(attn_dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, query: torch.Tensor,
                memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``query`` B x K x C, ``memory`` B x N x C -> (output B x K x C, logits B x K x N)."""
        q = self._heads(self.q(query))
        k, v = self._heads(self.k(memory)), self._heads(self.v(memory))
        logits = (q @ k.transpose(-2, -1)) * self.scale  # B x heads x K x N
        weights = self.attn_dropout(logits.softmax(dim=-1))
        out = (weights @ v).transpose(1, 2).flatten(2)
        return self.proj(out), logits.mean(dim=1)


class DecoderLayer(nn.Module):
    """[optional self-attention] -> cross-attention -> FFN, each ``norm(x + dropout(f(x)))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4, dropout: float = 0.1,
                 attn_dropout: float = 0.1, query_self_attn: bool = False):
        super().__init__()
        self.self_attn = (nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
                          if query_self_attn else None)
        self.norm1 = nn.LayerNorm(dim) if query_self_attn else None
        self.cross_attn = QueryKeyAttention(dim, num_heads, attn_dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(mlp_ratio * dim, dim))
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor,
                memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the updated queries and this layer's mask logits B x K x N."""
        if self.self_attn is not None:
            query = self.norm1(query + self.dropout(self.self_attn(query, query, query,
                                                                   need_weights=False)[0]))
        attended, logits = self.cross_attn(query, memory)
        query = self.norm2(query + self.dropout(attended))
        query = self.norm3(query + self.dropout(self.ffn(query)))
        return query, logits


class LightDecoder(nn.Module):
    """A stack of :class:`DecoderLayer`; the memory (patch embeddings) is the same for all.

    Args:
        dim: decoder width.
        num_layers: layers.
        num_heads: attention heads.
        mlp_ratio: FFN width / ``dim``.
        dropout: residual and FFN dropout.
        attn_dropout: attention-weight dropout.
        query_self_attn: add self-attention among class queries to every layer.
    """

    def __init__(self, dim: int, num_layers: int, num_heads: int, mlp_ratio: int = 4,
                 dropout: float = 0.1, attn_dropout: float = 0.1,
                 query_self_attn: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderLayer(dim, num_heads, mlp_ratio, dropout, attn_dropout, query_self_attn)
            for _ in range(num_layers))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> list[torch.Tensor]:
        """``queries`` B x K x C, ``memory`` B x N x C -> mask logits B x K x N of every layer."""
        masks = []
        for layer in self.layers:
            queries, logits = layer(queries, memory)
            masks.append(logits)
        return masks


#: ``MODEL.ZEGCLIP.DECODER.INIT`` choices (see projects/zegclip/config.py).
DECODER_INITS = ("pytorch", "trunc_normal")


def init_decoder_weights(module: nn.Module, mode: str = "trunc_normal") -> None:
    """Initialises the decoder side of the head (``module``: the input projection, the
    relationship descriptor or the decoder).

    ``"trunc_normal"``: truncated-normal (std 0.02) Linear weights, zero biases, unit
    LayerNorms (decode_seg.py: ``ATMSingleHeadSeg.init_weights``). ``"pytorch"``: every layer
    keeps PyTorch's default initialisation, as in official training (train.py initialises the
    backbone and the text encoder but never calls the decode head's ``init_weights``); only the
    input projection's weight is truncated-normal, as decode_seg.py's constructor draws it.
    """
    if mode not in DECODER_INITS:
        raise ValueError(f"unknown decoder initialisation {mode!r}; choices: {DECODER_INITS}")
    if mode == "pytorch":
        return
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
