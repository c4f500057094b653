"""Deep visual prompts of ZegCLIP (VPT-deep on a frozen CLIP ViT), and the other ways of adapting
the image encoder that the paper's ablation compares them with (``ENCODER_ADAPTATIONS``)."""

from __future__ import annotations

import math

import torch
from torch import nn

#: ``MODEL.ZEGCLIP.ENCODER_ADAPTATION`` choices (see projects/zegclip/config.py): prompts in every
#: layer (ZegCLIP), prompts before the first layer only, no prompts on the frozen encoder, the
#: whole image encoder fine-tuned without prompts.
ENCODER_ADAPTATIONS = ("deep_prompts", "shallow_prompts", "frozen", "finetune")


class DeepPrompts(nn.Module):
    """Learnable tokens for every layer of the CLIP ViT, through a shared projection + dropout.

    The CLIP layer inserts them after ``[CLS]`` and replaces them at every layer
    (``clip.encode_dense(images, deep_prompts=...)``). As in ZegCLIP's
    ``VPTCLIPVisionTransformer`` (``models/backbone/img_encoder.py``): prompts are initialised
    uniformly in ``+-sqrt(6 / (3 * patch_size**2 + width))`` (Xavier-uniform as in VPT), pass a
    Linear shared by all layers (kaiming-normal, fan_out) and a dropout drawn independently for
    every image of the batch. The official backbone also owns a learnable ``prompt_norm``
    (``LayerNorm(width, eps=1e-6)``, trained with the prompts: its name contains the
    ``exclude_key`` "prompt" that keeps a backbone parameter trainable) applied to the last
    layer's tokens before CLIP's ``ln_post``; the head passes it to the CLIP layer
    (``encode_dense(..., final_norm=prompts.norm)``).

    With ``num_layers=1`` the prompts are *shallow* (official ``total_d_layer=0``): inserted
    before the first layer and carried through all the others.

    Args:
        num_layers: layers of the visual transformer that get fresh tokens (one set each).
        num_tokens: tokens per layer.
        width: width of the visual transformer.
        patch_size: patch size of the ViT (enters the initialisation range only).
        projection: apply the shared Linear.
        dropout: dropout probability on the projected prompts.
        norm: own the learnable ``prompt_norm`` (``norm``; ``None`` without).
    """

    def __init__(self, num_layers: int, num_tokens: int, width: int, patch_size: int,
                 projection: bool = True, dropout: float = 0.1, norm: bool = True):
        super().__init__()
        bound = math.sqrt(6.0 / float(3 * patch_size * patch_size + width))
        self.embeddings = nn.Parameter(torch.empty(num_layers, num_tokens, width))
        nn.init.uniform_(self.embeddings, -bound, bound)
        self.proj: nn.Module = nn.Linear(width, width) if projection else nn.Identity()
        if projection:
            nn.init.kaiming_normal_(self.proj.weight, a=0, mode="fan_out")
        self.dropout = nn.Dropout(dropout)
        self.norm: nn.LayerNorm | None = nn.LayerNorm(width, eps=1e-6) if norm else None

    @property
    def num_tokens(self) -> int:
        return self.embeddings.shape[1]

    def forward(self, batch_size: int) -> torch.Tensor:
        """Prompts ``B x num_layers x N x width`` in training (per-image dropout), else
        ``num_layers x N x width``."""
        prompts = self.proj(self.embeddings)
        if self.training and self.dropout.p > 0:
            prompts = self.dropout(prompts.unsqueeze(0).expand(batch_size, -1, -1, -1))
        return prompts
