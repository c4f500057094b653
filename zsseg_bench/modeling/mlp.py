"""The multi-layer perceptron of DETR-style heads (DETR's ``MLP``, MaskFormer's, SAN's
``san/model/layers.py``): affine maps with ReLU between them, none after the last."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """``num_layers`` affine maps (``nn.Linear``, or 1x1 ``nn.Conv2d`` with ``dense=True``)
    with ReLU between them.

    Args:
        in_dim, hidden_dim, out_dim: widths (every hidden layer ``hidden_dim`` wide).
        num_layers: number of affine maps (>= 1).
        dense: 1x1 convolutions over ``B x C x H x W`` maps instead of linear layers over
            ``... x C``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, *,
                 dense: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got {num_layers}")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        affine = (lambda i, o: nn.Conv2d(i, o, kernel_size=1)) if dense else nn.Linear
        self.layers = nn.ModuleList(affine(i, o) for i, o in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x
