"""SAN's side adapter network: a light ViT beside CLIP that reads CLIP's features and predicts
mask proposals and attention biases.

``RegionwiseSideAdapterNetwork`` of MendelXu/SAN @ e19262d
(``san/model/side_adapter/side_adapter.py:89-260``, ``san/model/layers.py:8-83``):

1. The full-resolution (padded, normalised) image is cut into patches; ``num_queries`` learnable
   query tokens come first: tokens ``[queries, patches]``; ``pos = [query_pos, patch_pos]``.
2. ``x = tokens + pos``; CLIP fused (``FUSION_MAP`` entry ``k->0``); then for each block i
   (1-based): ``x = block(x)``; CLIP fused (``k->i``); the outputs of the deep-supervision blocks
   are kept (queries, and patches as a ``B x C x h x w`` map); before every further block the
   positional embedding is added **again** (side_adapter.py:231-232).
3. Fusion (``AddFusion``): CLIP's feature map after k blocks (k = 0: after ``ln_pre``), a
   channels-first LayerNorm (eps 1e-6) and a 1x1 conv to the side width at CLIP's resolution,
   bilinear (``align_corners=False``) to the side grid, *added to the patch tokens only*.
4. The kept outputs are decoded by one shared :class:`~.mask_decoder.MaskDecoder`: in training
   every kept output (auxiliary outputs first, the last block's last), in inference only the last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.utils.errors import UserError

from .mask_decoder import MaskDecoder
from .side_vit import SideViT


def parse_fusion_map(entries: Sequence[str], key: str = "MODEL.SAN.SIDE_ADAPTER.FUSION_MAP"
                     ) -> dict[int, int]:
    """``["clip->side", ...]`` -> ``{side block: clip block}`` (SAN's ``x2side_map``)."""
    out: dict[int, int] = {}
    for entry in entries:
        parts = str(entry).split("->")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise UserError(f"{key}: entry {entry!r} is not 'CLIP_BLOCKS->SIDE_BLOCKS' "
                            "(e.g. '3->1': CLIP after 3 blocks into the side network after 1)")
        clip_idx, side_idx = (int(p) for p in parts)
        if side_idx in out:
            raise UserError(f"{key}: side block {side_idx} is fused twice")
        out[side_idx] = clip_idx
    return out


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a ``B x C x H x W`` map, written out as SAN's
    (``san/model/layers.py:8-28``: biased variance, eps inside the square root). Not an
    ``nn.LayerNorm``, so optimizers decay its weights as SAN's does."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class AddFusion(nn.Module):
    """CLIP features -> LayerNorm -> 1x1 conv -> bilinear to the side grid -> added to the
    side network's patch tokens (SAN ``AddFusion``, layers.py:50-76)."""

    def __init__(self, *, clip_channels: int, side_channels: int):
        super().__init__()
        self.norm = ChannelLayerNorm(clip_channels)
        self.proj = nn.Conv2d(clip_channels, side_channels, kernel_size=1)
        # detectron2's c2_xavier_fill (layers.py:61)
        nn.init.kaiming_uniform_(self.proj.weight, a=1)
        nn.init.zeros_(self.proj.bias)

    def forward(self, patches: torch.Tensor, clip_features: torch.Tensor,
                grid: tuple[int, int]) -> torch.Tensor:
        """``patches``: B x h*w x C_side; ``clip_features``: B x C_clip x h' x w'."""
        y = self.proj(self.norm(clip_features))
        y = F.interpolate(y, size=grid, mode="bilinear", align_corners=False)
        return patches + y.permute(0, 2, 3, 1).reshape(patches.shape)


class SideAdapterNetwork(nn.Module):
    """The side ViT with query tokens, CLIP fusion and the mask decoder (module docstring).

    Args:
        vit: the side ViT.
        decoder: the mask-proposal / attention-bias decoder.
        clip_channels: CLIP's width (the fused features').
        num_queries: query tokens (mask proposals).
        fusion_map: ``{side block: CLIP block}`` (:func:`parse_fusion_map`).
        deep_supervision_idxs: 1-based side blocks whose outputs are decoded in training (the
            last one also in inference).
    """

    def __init__(self, *, vit: SideViT, decoder: MaskDecoder, clip_channels: int,
                 num_queries: int, fusion_map: Mapping[int, int],
                 deep_supervision_idxs: Sequence[int]):
        super().__init__()
        depth = len(vit.blocks)
        if not deep_supervision_idxs or not all(1 <= i <= depth for i in deep_supervision_idxs):
            raise UserError(f"MODEL.SAN.SIDE_ADAPTER.DEEP_SUPERVISION_IDXS "
                            f"{list(deep_supervision_idxs)}: 1-based side blocks in 1..{depth}")
        if not all(0 <= i <= depth for i in fusion_map):
            raise UserError(f"MODEL.SAN.SIDE_ADAPTER.FUSION_MAP fuses into side block(s) "
                            f"{sorted(fusion_map)}; the side network has 0..{depth}")
        self.vit = vit
        self.decoder = decoder
        self.fusion_map = dict(fusion_map)
        self.deep_supervision_idxs = sorted(int(i) for i in deep_supervision_idxs)
        self.query_embed = nn.Parameter(torch.zeros(1, num_queries, vit.width))
        self.query_pos_embed = nn.Parameter(torch.zeros(1, num_queries, vit.width))
        nn.init.normal_(self.query_embed, std=0.02)
        nn.init.normal_(self.query_pos_embed, std=0.02)
        self.fusion = nn.ModuleDict({
            f"layer_{side}": AddFusion(clip_channels=clip_channels, side_channels=vit.width)
            for side in sorted(self.fusion_map)})

    @property
    def clip_blocks_read(self) -> list[int]:
        """CLIP blocks (0 = after ``ln_pre``) whose outputs the fusion reads."""
        return sorted(set(self.fusion_map.values()))

    def _fuse(self, side_idx: int, x: torch.Tensor, clip_features: Mapping[int, torch.Tensor],
              grid: tuple[int, int]) -> torch.Tensor:
        if side_idx not in self.fusion_map:
            return x
        n = grid[0] * grid[1]
        fused = self.fusion[f"layer_{side_idx}"](x[:, -n:], clip_features[self.fusion_map[
            side_idx]], grid)
        return torch.cat([x[:, :-n], fused], dim=1)

    def forward_features(self, images: torch.Tensor, clip_features: Mapping[int, torch.Tensor]
                         ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(queries B x Q x C, patches B x C x h x w) after each deep-supervision block."""
        x, grid = self.vit.patch_embed(images)
        n = x.shape[1]
        bsz = x.shape[0]
        pos = torch.cat([self.query_pos_embed.expand(bsz, -1, -1),
                         self.vit.positional_embedding(*grid).expand(bsz, -1, -1)], dim=1)
        x = torch.cat([self.query_embed.expand(bsz, -1, -1), x], dim=1) + pos
        x = self._fuse(0, x, clip_features, grid)
        outs = []
        depth = len(self.vit.blocks)
        for i, block in enumerate(self.vit.blocks, start=1):
            x = self._fuse(i, block(x), clip_features, grid)
            if i in self.deep_supervision_idxs:
                patches = x[:, -n:].transpose(1, 2).reshape(bsz, -1, *grid)
                outs.append((x[:, :-n], patches))
            if i == self.deep_supervision_idxs[-1]:
                break
            if i < depth:
                x = x + pos
        return outs

    def forward(self, images: torch.Tensor, clip_features: Mapping[int, torch.Tensor]
                ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """Mask logits (B x Q x h x w) and attention biases of every decoded output (training:
        every deep-supervision block, the last one last; inference: the last one only)."""
        features = self.forward_features(images, clip_features)
        if not self.training:
            features = features[-1:]
        decoded = [self.decoder(query, patches) for query, patches in features]
        return [m for m, _ in decoded], [b for _, b in decoded]
