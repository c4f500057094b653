"""Second stage: classify every mask proposal by CLIP on its image crop.

Two steps, kept apart so the speed harness can time them (stages ``crop_preparation`` and
``clip_crops`` of :mod:`zsseg_bench.modeling.stage_timer`):

1. :meth:`CropClassifier.prepare` — proposal masks (logits at mask resolution) are upsampled to
   the (padded) batch size and thresholded (zsseg: sigmoid > 0.5); a proposal with an empty
   region is invalid (no CLIP score; :func:`~.ensemble.ensemble_probs` then uses the query
   classifier).
2. :meth:`CropClassifier.classify` — each valid region is cut out along its bounding box, the
   pixels outside its mask set to CLIP's mean (``masked``, zsseg/ZegFormer) or kept (``bbox``),
   resized to ``size`` and encoded by CLIP (``batched``: all crops together; ``loop``: one at a
   time); class probabilities are the softmax over the vocabulary of
   ``cos(crop, text) / temperature``.

How the crops are cut (``cut``):

- ``zsseg`` (MendelXu/zsseg.baseline @ d77c3af, ``MaskFormerClipAdapter._preprocess_image`` and
  ``crop_with_mask``, ``mask_former/modeling/clip_adapter/{adapter,utils}.py``): each image
  without its batch padding (its masks cropped to ``image_sizes``, as
  ``ZeroShotMaskFormer.forward`` does with ``sem_seg_postprocess``); the box (detectron2
  ``BitMasks.get_bounding_boxes``), grown by ``expand_ratio`` about its centre and truncated to
  integers (``expand_box``), is cut from the image in pixel values (0-255), the pixels outside the
  mask replaced by ``255 x`` CLIP's mean, normalised with CLIP's mean / std, then resized
  bicubically to ``size`` x ``size``, one crop at a time (the box stretched).
- ``grid`` (the suite's earlier crops): the CLIP layer's ``encode_crops`` samples image and mask
  of the padded batch bilinearly onto the crop grid and re-thresholds the mask; with
  ``square_box`` the box first grows to a square.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from zsseg_bench.modeling.stage_timer import stage
from zsseg_bench.utils.errors import UserError


@dataclass
class CropBatch:
    """Regions of one batch of images, ready for CLIP.

    Attributes:
        masks: per image, bool Q x H x W regions (every proposal, valid or not): at the padded
            batch size (``grid``) or at the image's own size (``zsseg``).
        valid: B x Q bool, True for non-empty regions (those that go through CLIP).
        probs: B x Q x H x W, the sigmoid of the mask logits upsampled to the padded batch size
            (the regions' source; the fusion uses them too).
    """

    masks: list[torch.Tensor]
    valid: torch.Tensor
    probs: torch.Tensor | None = None

    @property
    def num_crops(self) -> int:
        return int(self.valid.sum())


class CropClassifier:
    """CLIP classification of proposal crops (no parameters: CLIP is frozen and owned by the
    meta-architecture, passed to every call)."""

    def __init__(self, *, mask_threshold: float, crop: str, mode: str, size: int,
                 temperature: float, square_box: bool = False, cut: str = "zsseg",
                 expand_ratio: float = 1.0, input_mean: Sequence[float] | None = None,
                 input_std: Sequence[float] | None = None):
        """
        Args:
            mask_threshold: a region is sigmoid(mask) > threshold.
            crop: ``masked`` or ``bbox``.
            mode: ``batched`` or ``loop``.
            size: crop side (0: CLIP's input size).
            temperature: logits = cosine / temperature (0: CLIP's learned logit scale).
            square_box: grow boxes to squares (``grid`` cut only).
            cut: ``zsseg`` or ``grid`` (module docstring).
            expand_ratio: zsseg's ``MASK_EXPAND_RATIO`` (``zsseg`` cut).
            input_mean, input_std: the normalisation of the images the head gets (0-255 scale,
                ``MODEL.PIXEL_MEAN/STD``); None: CLIP's own.
        """
        if crop not in ("bbox", "masked"):
            raise UserError(f"MODEL.TWO_STAGE.CLIP_ENSEMBLE.CROP = {crop!r} is not one of bbox, "
                            "masked")
        if mode not in ("batched", "loop"):
            raise UserError(f"MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE = {mode!r} is not one of "
                            "batched, loop")
        if cut not in ("zsseg", "grid"):
            raise UserError(f"MODEL.TWO_STAGE.CLIP_ENSEMBLE.CUT = {cut!r} is not one of zsseg, "
                            "grid")
        self.mask_threshold = mask_threshold
        self.crop = crop
        self.mode = mode
        self.size = size
        self.temperature = temperature
        self.square_box = square_box
        self.cut = cut
        self.expand_ratio = expand_ratio
        self.input_mean = None if input_mean is None else torch.tensor(input_mean).view(3, 1, 1)
        self.input_std = None if input_std is None else torch.tensor(input_std).view(3, 1, 1)

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

    def prepare(self, mask_logits: torch.Tensor, image_size: tuple[int, int],
                image_sizes: Sequence[tuple[int, int]] | None = None) -> CropBatch:
        """Thresholded regions.

        Args:
            mask_logits: B x Q x h x w proposal mask logits.
            image_size: (H, W) of the padded batch the crops are cut from.
            image_sizes: each image's (h, w) without padding (``zsseg`` cut; None: the whole
                batch size).
        """
        probs = F.interpolate(mask_logits.float(), size=image_size, mode="bilinear",
                              align_corners=False).sigmoid()
        if self.cut == "grid":
            masks = probs > self.mask_threshold
            return CropBatch(masks=list(masks), valid=masks.flatten(2).any(-1), probs=probs)
        sizes = image_sizes or [tuple(image_size)] * probs.shape[0]
        masks = [m[:, :h, :w] > self.mask_threshold for m, (h, w) in zip(probs, sizes)]
        valid = torch.stack([m.flatten(1).any(-1) for m in masks])
        return CropBatch(masks=masks, valid=valid, probs=probs)

    def classify(self, clip: Any, images: torch.Tensor, crops: CropBatch,
                 text_embeddings: torch.Tensor) -> torch.Tensor:
        """CLIP class probabilities of every valid crop, scattered back to B x Q x K.

        Invalid proposals get probability 1 for every class (the ensemble's neutral value).

        Args:
            clip: the CLIP layer (``encode_image``, ``encode_crops``).
            images: B x 3 x H x W, normalised with ``input_mean/std`` (the head's input).
            crops: from :meth:`prepare`.
            text_embeddings: K x D normalised class embeddings.
        """
        b, q = crops.valid.shape
        k = text_embeddings.shape[0]
        out = images.new_ones((b, q, k), dtype=torch.float32)
        if crops.num_crops == 0:
            return out
        regions = [m[v] for m, v in zip(crops.masks, crops.valid)]
        if self.cut == "zsseg":
            emb = self._encode_zsseg(clip, images, regions)
        else:
            emb = clip.encode_crops(self._clip_normalised(clip, images), regions,
                                    size=self.crop_size(clip), mode=self.mode, crop=self.crop,
                                    square=self.square_box)
        logits = self.logit_scale(clip) * emb.float() @ text_embeddings.float().T
        out[crops.valid] = logits.softmax(-1)
        return out

    # ------------------------------------------------------------------------------ cutting
    def _input_normalisation(self, clip: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std), 3 x 1 x 1, 0-255 scale, of the images the head gets."""
        if self.input_mean is not None:
            return self.input_mean, self.input_std
        return (torch.tensor(clip.image_mean).view(3, 1, 1) * 255.0,
                torch.tensor(clip.image_std).view(3, 1, 1) * 255.0)

    def _pixels(self, clip: Any, images: torch.Tensor) -> torch.Tensor:
        """The images in pixel values (0-255), undoing the input normalisation."""
        mean, std = (t.to(images.device) for t in self._input_normalisation(clip))
        return images.float() * std + mean

    def _clip_normalised(self, clip: Any, images: torch.Tensor) -> torch.Tensor:
        """The images normalised as CLIP expects (as they are when the input normalisation is
        CLIP's own, e.g. the toy config)."""
        mean = torch.tensor(clip.image_mean).view(3, 1, 1) * 255.0
        std = torch.tensor(clip.image_std).view(3, 1, 1) * 255.0
        in_mean, in_std = self._input_normalisation(clip)
        if torch.allclose(mean, in_mean) and torch.allclose(std, in_std):
            return images
        return ((self._pixels(clip, images) - mean.to(images.device)) / std.to(images.device)
                ).to(images.dtype)

    def _encode_zsseg(self, clip: Any, images: torch.Tensor,
                      regions: list[torch.Tensor]) -> torch.Tensor:
        """Embeddings of zsseg's crops (module docstring), in region order."""
        size = self.crop_size(clip)
        with stage("crop_preparation"):
            pixels = self._pixels(clip, images)
            # zsseg: fill = [255.0 * c for c in CLIP.PIXEL_MEAN], mean / std = tensor(c) * 255.0
            fill = torch.tensor([255.0 * c for c in clip.image_mean], dtype=torch.float32)
            mean = torch.tensor(clip.image_mean, dtype=torch.float32) * 255.0
            std = torch.tensor(clip.image_std, dtype=torch.float32) * 255.0
            dev = images.device
            fill, mean, std = (t.view(3, 1, 1).to(dev) for t in (fill, mean, std))
            cut = []
            for img, masks in zip(pixels, regions):
                h, w = masks.shape[-2:]
                for box, m in zip(mask_boxes(masks), masks):
                    left, top, right, bottom = expand_box(box, self.expand_ratio, h, w)
                    r = img[:, top:bottom, left:right]
                    if self.crop == "masked":
                        mm = m[None, top:bottom, left:right].float()
                        r = r * mm + (1 - mm) * fill
                    r = (r - mean) / std
                    cut.append(F.interpolate(r[None], size=(size, size), mode="bicubic",
                                             align_corners=False))
            crops = torch.cat(cut).to(clip.dtype)
        if self.mode == "loop":
            return torch.cat([clip.encode_image(c[None]) for c in crops])
        return torch.cat([clip.encode_image(crops[s:s + 64]) for s in range(0, len(crops), 64)])


def mask_boxes(masks: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of each non-empty M x H x W mask: first / last row and column with a
    pixel, the ends exclusive (detectron2 ``BitMasks.get_bounding_boxes``)."""
    cols, rows = masks.any(1), masks.any(2)  # M x W, M x H
    out = []
    for c, r in zip(cols, rows):
        xs, ys = c.nonzero().flatten(), r.nonzero().flatten()
        out.append((int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1))
    return out


def expand_box(box: tuple[int, int, int, int], ratio: float, height: int,
               width: int) -> tuple[int, int, int, int]:
    """zsseg's ``expand_box`` + clamping of ``crop_with_mask``: the box grown by ``ratio`` about
    its centre, each side truncated to an integer (float32 arithmetic, as zsseg computes it on
    the float box), then clipped to the image."""
    x1, y1, x2, y2 = (torch.tensor(float(v)) for v in box)
    cx, cy = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
    w, h = (x2 - x1) * ratio, (y2 - y1) * ratio
    left, top = int(cx - 0.5 * w), int(cy - 0.5 * h)
    right, bottom = int(cx + 0.5 * w), int(cy + 0.5 * h)
    return max(left, 0), max(top, 0), min(right, width), min(bottom, height)


def learned_logit_scale(clip: Any, key: str) -> float:
    """The CLIP model's learned logit scale (``exp(logit_scale)``: 100 for OpenAI's CLIP, 22.6
    for the toy CLIP), which a temperature of 0 at config ``key`` asks for."""
    scale = getattr(getattr(clip, "model", None), "logit_scale", None)
    if scale is None:
        raise UserError(f"{key} = 0 asks for the CLIP model's logit scale, which this CLIP does "
                        f"not have; set a temperature (OpenAI CLIP: 0.01)")
    return float(scale.exp()) if torch.is_tensor(scale) else float(scale)
