"""Second stage: classify every mask proposal by CLIP on its image crop.

Two steps, kept apart so the speed harness can time them (stages ``crop_preparation`` and
``clip_crops`` of :mod:`zsseg_bench.modeling.stage_timer`):

1. :meth:`CropClassifier.prepare` — proposal masks (logits at mask resolution) are upsampled to
   the image size and thresholded (zsseg: sigmoid > 0.5); a proposal with an empty region is
   invalid (no CLIP score; :func:`~.ensemble.ensemble_probs` then uses the query classifier).
2. :meth:`CropClassifier.classify` — the CLIP layer cuts each region along its bounding box
   (``bbox``), or with the pixels outside the mask set to CLIP's mean (``masked``, zsseg/
   ZegFormer), resizes it to ``size`` (stretching the box, as zsseg and ZegFormer do, or, with
   ``square_box``, growing it to a square first so the region keeps its aspect ratio) and
   encodes it (``batched``: all crops together; ``loop``: one at a time); class probabilities
   are the softmax over the vocabulary of ``cos(crop, text) / temperature``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from zsseg_bench.utils.errors import UserError


@dataclass
class CropBatch:
    """Regions of one batch of images, ready for CLIP.

    Attributes:
        masks: per image, bool Q x H x W regions (every proposal, valid or not).
        valid: B x Q bool, True for non-empty regions (those that go through CLIP).
    """

    masks: list[torch.Tensor]
    valid: torch.Tensor

    @property
    def num_crops(self) -> int:
        return int(self.valid.sum())


class CropClassifier:
    """CLIP classification of proposal crops (no parameters: CLIP is frozen and owned by the
    meta-architecture, passed to every call)."""

    def __init__(self, *, mask_threshold: float, crop: str, mode: str, size: int,
                 temperature: float, square_box: bool = False):
        if crop not in ("bbox", "masked"):
            raise UserError(f"MODEL.TWO_STAGE.CLIP_ENSEMBLE.CROP = {crop!r} is not one of bbox, "
                            "masked")
        if mode not in ("batched", "loop"):
            raise UserError(f"MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE = {mode!r} is not one of "
                            "batched, loop")
        self.mask_threshold = mask_threshold
        self.crop = crop
        self.mode = mode
        self.size = size
        self.temperature = temperature
        self.square_box = square_box

    @classmethod
    def from_config(cls, cfg: Any) -> CropClassifier:
        e = cfg.MODEL.TWO_STAGE.CLIP_ENSEMBLE
        return cls(mask_threshold=e.MASK_THRESHOLD, crop=e.CROP, mode=e.MODE, size=e.SIZE,
                   temperature=e.TEMPERATURE, square_box=e.SQUARE_BOX)

    def crop_size(self, clip: Any) -> int:
        """The crop side: ``size``, or CLIP's own input size when ``size`` is 0."""
        if self.size:
            return self.size
        return int(clip.grid_size[0] * clip.patch_size)

    def logit_scale(self, clip: Any) -> float:
        """1 / temperature, or the CLIP model's learned logit scale when temperature is 0."""
        if self.temperature > 0:
            return 1.0 / self.temperature
        return learned_logit_scale(clip, "MODEL.TWO_STAGE.CLIP_ENSEMBLE.TEMPERATURE")

    def prepare(self, mask_logits: torch.Tensor, image_size: tuple[int, int]) -> CropBatch:
        """Thresholded regions at image size.

        Args:
            mask_logits: B x Q x h x w proposal mask logits.
            image_size: (H, W) of the (padded) images the crops are cut from.
        """
        probs = F.interpolate(mask_logits.float(), size=image_size, mode="bilinear",
                              align_corners=False).sigmoid()
        masks = probs > self.mask_threshold
        valid = masks.flatten(2).any(-1)
        return CropBatch(masks=list(masks), valid=valid)

    def classify(self, clip: Any, images: torch.Tensor, crops: CropBatch,
                 text_embeddings: torch.Tensor) -> torch.Tensor:
        """CLIP class probabilities of every valid crop, scattered back to B x Q x K.

        Invalid proposals get probability 1 for every class (the ensemble's neutral value).

        Args:
            clip: the CLIP layer (``encode_crops``).
            images: B x 3 x H x W CLIP-normalised (the head's input).
            crops: from :meth:`prepare`.
            text_embeddings: K x D normalised class embeddings.
        """
        b, q = crops.valid.shape
        k = text_embeddings.shape[0]
        out = images.new_ones((b, q, k), dtype=torch.float32)
        if crops.num_crops == 0:
            return out
        regions = [m[v] for m, v in zip(crops.masks, crops.valid)]
        emb = clip.encode_crops(images, regions, size=self.crop_size(clip), mode=self.mode,
                                crop=self.crop, square=self.square_box)
        logits = self.logit_scale(clip) * emb.float() @ text_embeddings.float().T
        out[crops.valid] = logits.softmax(-1)
        return out


def learned_logit_scale(clip: Any, key: str) -> float:
    """The CLIP model's learned logit scale (``exp(logit_scale)``: 100 for OpenAI's CLIP, 22.6
    for the toy CLIP), which a temperature of 0 at config ``key`` asks for."""
    scale = getattr(getattr(clip, "model", None), "logit_scale", None)
    if scale is None:
        raise UserError(f"{key} = 0 asks for the CLIP model's logit scale, which this CLIP does "
                        f"not have; set a temperature (OpenAI CLIP: 0.01)")
    return float(scale.exp()) if torch.is_tensor(scale) else float(scale)
