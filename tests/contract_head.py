"""A head and a CLIP stand-in used only by tests: they prove the meta-architecture contract
without any method. Importing this module registers ``PixelContractHead`` (not shipped)."""

from __future__ import annotations

import hashlib
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.config import configurable
from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.head import ZeroShotHead

#: Seconds per image the test head sleeps in inference (default 0): a long evaluation.
SLOW_INFERENCE_ENV = "ZSSEG_TEST_INFERENCE_SLEEP_S"


class FakeTextCLIP(nn.Module):
    """Deterministic unit-norm 'text embeddings' from a hash of each class name."""

    def __init__(self, embed_dim: int = 16):
        super().__init__()
        self.embed_dim = embed_dim
        self.calls = 0

    def embed_texts(self, names: list[str], templates: str) -> torch.Tensor:
        self.calls += 1
        rows = []
        for name in names:
            seed = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)
            g = torch.Generator().manual_seed(seed)
            rows.append(torch.randn(self.embed_dim, generator=g))
        return F.normalize(torch.stack(rows), dim=-1)


if "PixelContractHead" not in HEAD_REGISTRY:

    @HEAD_REGISTRY.register()
    class PixelContractHead(ZeroShotHead):
        """Per-pixel features (a 1x1 conv at stride 4) matched to text embeddings by cosine;
        cross-entropy over the active vocabulary in training. It writes no zero-shot rule: its
        labels come from ``targets.labels()`` (self-training: pseudo-labelled from its own
        scores by the base class)."""

        @configurable
        def __init__(self, *, embed_dim: int, stride: int = 4):
            super().__init__()
            self.stride = stride
            self.proj = nn.Conv2d(3, embed_dim, kernel_size=1)
            self.logit_scale = nn.Parameter(torch.tensor(2.0))

        @classmethod
        def from_config(cls, cfg, clip) -> dict:  # noqa: ANN001
            return {"embed_dim": clip.embed_dim}

        def scores(self, images, vocab, clip):  # noqa: ANN001, ANN201
            if not self.training:
                # A stand-in for an expensive model in inference (signal tests).
                time.sleep(float(os.environ.get(SLOW_INFERENCE_ENV, "0")) * images.shape[0])
            feats = F.avg_pool2d(images, self.stride)
            feats = F.normalize(self.proj(feats), dim=1)
            logits = torch.einsum("bdhw,kd->bkhw", feats, vocab.embeddings.to(feats.dtype))
            return logits * self.logit_scale.exp()

        def losses(self, images, targets, clip):  # noqa: ANN001, ANN201
            logits = F.interpolate(self.scores(images, targets.vocab, clip), size=targets.size,
                                   mode="bilinear", align_corners=False)
            return {"loss_ce": F.cross_entropy(logits, targets.labels(), ignore_index=255)}
