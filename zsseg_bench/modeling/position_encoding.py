"""DETR's sine positional encoding of a feature map (MaskFormer's and Mask2Former's decoders,
AlignZeg's MRPE)."""

from __future__ import annotations

import math

import torch


def sine_position_encoding(x: torch.Tensor, num_feats: int,
                           temperature: float = 10000.0) -> torch.Tensor:
    """DETR's normalised sine positional encoding of a B x C x H x W map -> B x 2F x H x W.

    Constants (temperature 10000, scale 2*pi, normalised coordinates) from DETR's
    ``PositionEmbeddingSine(normalize=True)`` as used by MaskFormer and Mask2Former.
    """
    b, _, h, w = x.shape
    eps, scale = 1e-6, 2 * math.pi
    y_embed = torch.arange(1, h + 1, device=x.device, dtype=torch.float32).view(1, h, 1)
    x_embed = torch.arange(1, w + 1, device=x.device, dtype=torch.float32).view(1, 1, w)
    y_embed = (y_embed / (h + eps) * scale).expand(b, h, w)
    x_embed = (x_embed / (w + eps) * scale).expand(b, h, w)
    dim_t = torch.arange(num_feats, device=x.device, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / num_feats)
    pos_x, pos_y = x_embed[..., None] / dim_t, y_embed[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2).to(x.dtype)
