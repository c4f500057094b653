"""Mask recognition: CLIP's last blocks run on [SOS] query tokens whose attention to the image
patches carries the side network's bias, one query token per mask proposal.

``RecWithAttnbiasHead`` with ``cross_attn=False`` and ``sos_token_format="cls_token"`` (the
released configs) of MendelXu/SAN @ e19262d (``san/model/clip_utils/visual.py:112-247``,
``san/model/attn_helper.py:317-327``):

- the SOS tokens are CLIP's ``[CLS]`` token after the first ``FEATURE_LAST_LAYER_IDX`` blocks,
  repeated once per query; the sequence is ``[SOS x Q, CLS, patches]``;
- every bias ``B x heads x Q x h x w`` (side grid) is brought to CLIP's grid ``h' x w'``
  (adaptive max pooling by default, ``REC_DOWNSAMPLE_METHOD``) and laid out per image and head;
- the additive mask M of the remaining CLIP blocks: every token's logit to an SOS token is
  ``blocked`` (-100) except an SOS token's to itself, an SOS token's to ``[CLS]`` is ``blocked``,
  an SOS token's to patch p is the bias; ``[CLS]`` and patches attend to each other as in plain
  CLIP (so their stream is CLIP's own, up to ``exp(-100)``);
- the SOS tokens' outputs -> ``ln_post`` -> projection -> L2-normalised: one embedding per mask,
  compared with the text embeddings by the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


def downsample_bias(bias: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
    """``B x C x h x w`` -> ``B x C x size`` (SAN ``downsample2d``): adaptive max / average
    pooling (``"max"``, ``"avg"``) or interpolation (``"bilinear"``, ``"bicubic"``,
    ``"nearest"``; ``align_corners=False``)."""
    if method == "max":
        return F.adaptive_max_pool2d(bias, output_size=size)
    if method == "avg":
        return F.adaptive_avg_pool2d(bias, output_size=size)
    if method in ("bilinear", "bicubic"):
        return F.interpolate(bias, size=size, mode=method, align_corners=False)
    if method == "nearest":
        return F.interpolate(bias, size=size, mode="nearest")
    raise ValueError(f"unknown downsample method {method!r}")


def attention_mask(bias: torch.Tensor, clip_grid: tuple[int, int], clip_heads: int,
                   method: str, blocked: float) -> torch.Tensor:
    """The additive mask ``(B * clip_heads) x N x N``, ``N = Q + 1 + h'w'``, of one bias
    ``B x heads x Q x h x w`` (module docstring; ``heads`` is ``clip_heads`` or 1)."""
    bsz, heads, queries, h, w = bias.shape
    if heads not in (1, clip_heads):
        raise ValueError(f"the attention bias has {heads} heads; CLIP has {clip_heads} "
                         "(MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.NUM_HEADS must be 1 or CLIP's)")
    bias = downsample_bias(bias.reshape(bsz, heads * queries, h, w), clip_grid, method)
    bias = bias.reshape(bsz, heads, queries, -1)
    if heads == 1:
        bias = bias.expand(-1, clip_heads, -1, -1)
    bias = bias.reshape(bsz * clip_heads, queries, -1)
    patches = bias.shape[-1]
    n = queries + 1 + patches
    mask = bias.new_zeros(n, n)
    mask[:, :queries] = blocked
    idx = torch.arange(queries, device=bias.device)
    mask[idx, idx] = 0.0
    mask[:queries, queries] = blocked
    mask = mask.expand(bsz * clip_heads, -1, -1).clone()
    mask[:, :queries, queries + 1:] = bias
    return mask


def recognize(clip: Any, tokens: torch.Tensor, clip_grid: tuple[int, int],
              biases: Sequence[torch.Tensor], first_block: int, method: str = "max",
              blocked: float = -100.0) -> torch.Tensor:
    """Embeddings ``B x Q x D`` (L2-normalised) of the mask proposals.

    Args:
        clip: the CLIP layer (:class:`~zsseg_bench.modeling.clip.CLIPModel`).
        tokens: ``B x (1 + h'w') x width``, CLIP's tokens after ``first_block`` blocks.
        clip_grid: (h', w').
        biases: one bias ``B x heads x Q x h x w`` for every remaining block, or one for all.
        first_block: the first block to run (blocks ``first_block ..`` the last).
        method: how a bias goes from the side grid to ``clip_grid`` (:func:`downsample_bias`).
        blocked: the logit of blocked attention (-100 in SAN).
    """
    remaining = clip.num_layers - first_block
    if len(biases) not in (1, remaining):
        raise ValueError(f"{len(biases)} attention biases for {remaining} recognition blocks "
                         "(MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.NUM_LAYERS must be 1 or that many)")
    queries = biases[0].shape[2]
    masks = [attention_mask(b, clip_grid, clip.num_heads, method, blocked) for b in biases]
    x = torch.cat([tokens[:, :1].expand(-1, queries, -1), tokens], dim=1)
    if len(masks) == 1:
        x, _ = clip.run_blocks(x, start=first_block, attn_mask=masks[0])
    else:
        for i, mask in enumerate(masks):
            x, _ = clip.run_blocks(x, start=first_block + i, stop=first_block + i + 1,
                                   attn_mask=mask)
    return F.normalize(clip.project_tokens(x[:, :queries]), dim=-1)
