"""The side network's plain ViT (no class token, no final norm), written with torch.

What SAN builds with timm (``timm.create_model("vit_w240n6d8_patch16", img_size=640,
fc_norm=False, num_classes=0, embed_layer=PatchEmbed)``, MendelXu/SAN @ e19262d
``san/model/side_adapter/side_adapter.py:129-137`` and ``timm_wrapper.py:8-74``; timm 0.6.13
``VisionTransformer``) after SAN's surgery (side_adapter.py:101-109: class token and its
positional slot removed, final norm replaced by identity). Modules and parameters keep timm's
names (``patch_embed.proj``, ``pos_embed``, ``blocks.i.{norm1, attn.qkv, attn.proj, norm2,
mlp.fc1, mlp.fc2}``) so that official weights map one to one.

Pre-norm blocks ``x + attn(norm1(x))``, ``x + mlp(norm2(x))``; LayerNorm eps 1e-6, qkv with bias,
attention scale ``head_dim ** -0.5``, exact GELU, no dropout or drop-path (their rates are 0 in
SAN's configs). Attention runs as ``F.scaled_dot_product_attention`` (timm 0.6.13 writes the
softmax out; equal up to float rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Non-overlapping patches: ``Conv2d(3, width, patch, stride=patch)``, flattened row-major.

    Returns ``(B x h*w x width, (h, w))`` (SAN's own PatchEmbed returns the grid too).
    """

    def __init__(self, *, patch_size: int, width: int, in_chans: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(images)
        h, w = x.shape[-2:]
        return x.flatten(2).transpose(1, 2), (int(h), int(w))


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection (timm's layout)."""

    def __init__(self, *, width: int, num_heads: int):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(width, width * 3)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` (exact, erf GELU)."""

    def __init__(self, *, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """A pre-norm transformer block."""

    def __init__(self, *, width: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = Attention(width=width, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = Mlp(width=width, hidden=int(width * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SideViT(nn.Module):
    """Patch embedding, a positional table for ``image_size`` inputs, ``depth`` blocks.

    The blocks are run by the caller (:class:`~.side_adapter.SideAdapterNetwork` fuses CLIP
    features between them); :meth:`positional_embedding` gives the table for any patch grid.

    Args:
        patch_size, width, depth, num_heads, mlp_ratio: the ViT's shape.
        image_size: the input side the positional table is made for (grid image_size / patch).
    """

    def __init__(self, *, patch_size: int, width: int, depth: int, num_heads: int,
                 mlp_ratio: float, image_size: int):
        super().__init__()
        self.width = width
        self.grid = (image_size // patch_size, image_size // patch_size)
        self.patch_embed = PatchEmbed(patch_size=patch_size, width=width)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], width))
        self.blocks = nn.ModuleList(Block(width=width, num_heads=num_heads, mlp_ratio=mlp_ratio)
                                    for _ in range(depth))
        self._init_weights()

    def _init_weights(self) -> None:
        # timm 0.6.13 VisionTransformer.init_weights (mode ""): pos_embed and every Linear
        # truncated normal std 0.02, biases 0; the patch conv and LayerNorms keep PyTorch's init.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def positional_embedding(self, h: int, w: int) -> torch.Tensor:
        """``1 x h*w x width``: the table as it is when it has ``h * w`` entries, else resized
        bicubic (``align_corners=False``) from its own grid.

        As SAN (side_adapter.py:196): the test is on the *number* of tokens, so a grid of as many
        cells in another shape (32 x 50 for a 40 x 40 table) takes the table flattened as it is.
        """
        if self.pos_embed.shape[1] == h * w:
            return self.pos_embed
        grid = self.pos_embed.reshape(1, *self.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        return grid.flatten(2).transpose(1, 2)
