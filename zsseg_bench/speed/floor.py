"""``CLIPEncoderFloorHead``: the speed floor of one-stage methods, not a method.

Every one-stage method (ZegCLIP, AlignZeg) runs CLIP's image encoder once at full resolution
and adds prompts, a decoder and post-processing on top; the encoder alone is the floor of its
latency. This head runs exactly that -- ``clip.encode_dense`` without prompts -- and scores
patches by cosine with the text embeddings, so the speed harness can time the floor with the
same protocol (``MODEL.HEAD.NAME CLIPEncoderFloorHead`` on any method's config). Importing
:mod:`zsseg_bench.speed` registers it. It has no parameters and cannot be trained.
"""

from __future__ import annotations

from typing import Any

import torch

from zsseg_bench.config import configurable
from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.stage_timer import stage
from zsseg_bench.utils.errors import UserError

FLOOR_HEAD = "CLIPEncoderFloorHead"

if FLOOR_HEAD not in HEAD_REGISTRY:

    @HEAD_REGISTRY.register()
    class CLIPEncoderFloorHead(ZeroShotHead):
        """CLIP's dense encoder alone + cosine with the text embeddings (a speed reference)."""

        @configurable
        def __init__(self) -> None:
            super().__init__()

        @classmethod
        def from_config(cls, cfg: Any, clip: Any) -> dict[str, Any]:
            return {}

        def scores(self, images: torch.Tensor, vocab: Any, clip: Any) -> torch.Tensor:
            """``B x K x h x w`` cosine scores of CLIP's patch embeddings (patch grid)."""
            with stage("clip_encoder"):
                patches = clip.encode_dense(images).patch_embeddings
            with stage("post_process"):
                return torch.einsum("bdhw,kd->bkhw", patches,
                                    vocab.embeddings.to(patches.dtype))

        def losses(self, images: torch.Tensor, targets: Any, clip: Any) -> Any:
            raise UserError(f"{FLOOR_HEAD} is a speed reference (CLIP's encoder alone) and "
                            "cannot be trained; use it with `zsseg-bench speed` only")
