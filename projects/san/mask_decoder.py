"""SAN's two heads on the side network's output: mask proposals and attention biases.

``MLPMaskDecoder`` of MendelXu/SAN @ e19262d (``san/model/side_adapter/side_adapter.py:29-86``,
``san/model/layers.py:31-47``): the query tokens and the patch tokens each go through a 3-layer
MLP (ReLU between layers, none after the last; 1x1 convolutions on the patch grid);

- mask proposal q = ``query_mlp(query) . pix_mlp(x)`` per patch -> ``B x Q x h x w`` logits;
- attention bias of query q for CLIP head n and layer l = ``query_mlp(query)_q .
  attn_mlp(x)_{l,n}`` per patch, then a learnable scalar affine (``nn.Linear(1, 1)``) ->
  ``NUM_LAYERS`` tensors ``B x heads x Q x h x w``.
"""

from __future__ import annotations

import torch
from torch import nn

from zsseg_bench.modeling.mlp import MLP


class MaskDecoder(nn.Module):
    """Mask proposals and attention biases from query and patch tokens (module docstring).

    Args:
        in_channels: the side network's width.
        num_heads: attention-bias heads (CLIP's heads, or 1 for one bias shared by all heads).
        num_layers: attention biases (1: one for every recognition block).
        embed_channels, mlp_channels, mlp_num_layers: the MLPs' output width, hidden width and
            depth.
        rescale_attn_bias: the learnable scalar affine on the bias (else identity).
    """

    def __init__(self, *, in_channels: int, num_heads: int = 1, num_layers: int = 1,
                 embed_channels: int = 256, mlp_channels: int = 256, mlp_num_layers: int = 3,
                 rescale_attn_bias: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.query_mlp = MLP(in_dim=in_channels, hidden_dim=mlp_channels,
                             out_dim=embed_channels, num_layers=mlp_num_layers)
        self.pix_mlp = MLP(in_dim=in_channels, hidden_dim=mlp_channels, out_dim=embed_channels,
                           num_layers=mlp_num_layers, dense=True)
        self.attn_mlp = MLP(in_dim=in_channels, hidden_dim=mlp_channels,
                            out_dim=embed_channels * num_heads * num_layers,
                            num_layers=mlp_num_layers, dense=True)
        self.bias_scaling: nn.Module = nn.Linear(1, 1) if rescale_attn_bias else nn.Identity()

    def forward(self, query: torch.Tensor, x: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``query``: B x Q x C; ``x``: B x C x h x w. Returns (B x Q x h x w mask logits,
        ``num_layers`` x [B x heads x Q x h x w] attention biases)."""
        query = self.query_mlp(query)
        pix = self.pix_mlp(x)
        b, c, h, w = pix.shape
        masks = torch.einsum("bqc,bchw->bqhw", query, pix)
        attn = self.attn_mlp(x).reshape(b, self.num_layers, self.num_heads, c, h, w)
        bias = torch.einsum("bqc,blnchw->blnqhw", query, attn)
        bias = self.bias_scaling(bias[..., None]).squeeze(-1)
        return masks, list(bias.unbind(1))
