"""Transductive self-training labels: unlabelled pixels take the most likely unseen class.

As the official ``ATMSingleHeadSeg.forward_train(self_training=True)``
(``models/decode_heads/decode_seg.py``): the model's own (detached) sigmoid masks of the
current batch, seen classes excluded, argmax over the unseen classes, written only where the
label says "unlabelled"; labelled and ignored pixels keep their labels. No confidence threshold.
"""

from __future__ import annotations

import torch

from zsseg_bench.data.zero_shot import IGNORE_LABEL, UNLABELLED_LABEL


@torch.no_grad()
def pseudo_label(labels: torch.Tensor, logits: torch.Tensor,
                 unseen_indices: torch.Tensor) -> torch.Tensor:
    """Fills unlabelled pixels with the argmax over unseen classes.

    Args:
        labels: ``B x H x W`` class indices, 255 = ignore, 254 = unlabelled.
        logits: ``B x K x H x W`` mask logits over the whole vocabulary (same size as labels).
        unseen_indices: indices (into the K classes) of the unseen classes.

    Returns:
        A new label map: unlabelled pixels hold an unseen class index (or 255 when there is no
        unseen class); every other pixel is unchanged.
    """
    if logits.shape[-2:] != labels.shape[-2:]:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} "
                         "differ in size")
    unlabelled = labels == UNLABELLED_LABEL
    out = labels.clone()
    if len(unseen_indices) == 0:
        out[unlabelled] = IGNORE_LABEL
        return out
    scores = logits.detach().sigmoid()[:, unseen_indices.to(logits.device)]
    best = unseen_indices.to(labels.device)[scores.argmax(dim=1)]
    out[unlabelled] = best[unlabelled].to(out.dtype)
    return out
