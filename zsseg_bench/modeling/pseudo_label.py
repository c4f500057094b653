"""The one pseudo-labelling policy of transductive self-training, used by every head.

In self-training the unlabelled pixels (:data:`~zsseg_bench.data.zero_shot.UNLABELLED_LABEL`,
the unseen classes' pixels) take the most likely *unseen* class of the model's own (detached)
class scores; labelled and ignored pixels keep their labels. Two recipes are expressed by its
options:

- ``scores="sigmoid"``, no threshold (ZegCLIP, ZiqinZhou66/ZegCLIP @ 9ba4bb5
  ``models/decode_heads/decode_seg.py``, ``ATMSingleHeadSeg.forward_train(self_training=True)``:
  the argmax over the unseen classes of the sigmoid masks, every unlabelled pixel labelled);
- ``scores="normalised"`` with a ``threshold`` (zsseg, MendelXu/zsseg.baseline @ d77c3af,
  self-training: the fused per-class scores, clamped at 0 and normalised over the vocabulary per
  pixel; an unlabelled pixel takes its arg-max unseen class if that normalised score reaches the
  threshold, else it is ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from zsseg_bench.data.zero_shot import IGNORE_LABEL, UNLABELLED_LABEL

#: Class scores ``B x K x H x W`` at the labels' size, or a function computing them (called only
#: when some pixel needs a pseudo-label).
Scores = torch.Tensor | Callable[[], torch.Tensor]

SCORE_KINDS = ("sigmoid", "normalised")


@dataclass(frozen=True)
class PseudoLabelPolicy:
    """How unlabelled pixels get labels in self-training.

    Attributes:
        scores: ``"sigmoid"`` (the scores are logits: arg-max of their sigmoid) or
            ``"normalised"`` (the scores are non-negative class scores, clamped at 0 and divided
            by their sum over the vocabulary, the confidence the threshold reads).
        threshold: the least normalised confidence of a pseudo-label (None: every unlabelled
            pixel is labelled). Only with ``scores="normalised"``.
    """

    scores: str = "sigmoid"
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.scores not in SCORE_KINDS:
            raise ValueError(f"pseudo-label scores {self.scores!r}: one of {SCORE_KINDS}")
        if self.threshold is not None and self.scores != "normalised":
            raise ValueError("a pseudo-label threshold reads normalised scores")

    @torch.no_grad()
    def __call__(self, labels: torch.Tensor, scores: Scores,
                 unseen_indices: torch.Tensor) -> torch.Tensor:
        """Labels with every unlabelled pixel pseudo-labelled (or ignored).

        Args:
            labels: ``B x H x W`` class indices, 255 ignore, 254 unlabelled.
            scores: ``B x K x H x W`` scores over the vocabulary (same size as ``labels``), or a
                function returning them; not evaluated when no pixel needs them.
            unseen_indices: indices (into the K classes) of the unseen classes.

        Returns:
            A new label map: unlabelled pixels hold an unseen class index, or 255 (no unseen
            class, or below the threshold); every other pixel is unchanged.
        """
        unlabelled = labels == UNLABELLED_LABEL
        out = labels.clone()
        if len(unseen_indices) == 0 or not bool(unlabelled.any()):
            out[unlabelled] = IGNORE_LABEL
            return out
        values = scores() if callable(scores) else scores
        if values.shape[-2:] != labels.shape[-2:]:
            raise ValueError(f"scores {tuple(values.shape)} and labels {tuple(labels.shape)} "
                             "differ in size")
        unseen = unseen_indices.to(labels.device)
        if self.scores == "sigmoid":
            probs = values.detach().sigmoid()[:, unseen_indices.to(values.device)]
            best = unseen[probs.argmax(dim=1)]
            out[unlabelled] = best[unlabelled].to(out.dtype)
            return out
        values = values.detach().clamp(min=0)
        probs = values / values.sum(1, keepdim=True).clamp(min=1e-6)
        conf, idx = probs[:, unseen].max(1)
        best = unseen[idx]
        out[unlabelled] = IGNORE_LABEL
        keep = unlabelled if self.threshold is None else unlabelled & (conf >= self.threshold)
        out[keep] = best[keep].to(out.dtype)
        return out
