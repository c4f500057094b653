"""``TwoStageHead``: mask proposals + CLIP crop classification (zsseg / ZegFormer family).

Inference runs four stages, each a method and a named stage of
:mod:`zsseg_bench.modeling.stage_timer` (timed by the speed harness, ``stage/<name>`` ranges in
profiler traces):

=====================  =========================  ============================================
method                 stage                      what
=====================  =========================  ============================================
:meth:`propose`        ``proposal_network``       backbone -> FPN pixel decoder -> transformer
                                                  decoder: Q class embeddings + mask logits
:meth:`prepare_crops`  ``crop_preparation``       masks upsampled to the image, thresholded
:meth:`classify_crops` ``clip_crops``             CLIP on the crops (cut, resize, ViT, cosine)
:meth:`fuse`           ``fusion``                 query classifier x CLIP ensemble, then
                                                  sum over queries of mask x class scores
=====================  =========================  ============================================

Training: Hungarian matching + CE / focal / dice losses (+ deep supervision) over the active
vocabulary of the core's :class:`~zsseg_bench.modeling.training_targets.TrainingTargets`: the
seen classes (inductive, and transductive before self-training: unseen text embeddings are never
negatives of the query classifier, as zsseg trains inductively first); in self-training all
classes, unlabelled pixels pseudo-labelled first by the core policy with zsseg's options
(normalised scores, a threshold) from the scores of the frozen teacher (``offline``, zsseg;
taken at the self-training start, :meth:`TwoStageHead.on_phase_change`) or of the current model
(``online``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.config import configurable
from zsseg_bench.config.allowed import check_value
from zsseg_bench.config.setting import Setting
from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.backbone import build_backbone
from zsseg_bench.modeling.criterion import SetCriterion, build_set_criterion, semantic_targets
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.pixel_decoder import build_pixel_decoder
from zsseg_bench.modeling.pseudo_label import PseudoLabelPolicy
from zsseg_bench.modeling.semantic_inference import semantic_inference
from zsseg_bench.modeling.stage_timer import stage
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.modeling.training_targets import TrainingTargets

from .build import build_crop_classifier, build_decoder
from .clip_classifier import CropBatch, CropClassifier, learned_logit_scale
from .config import BACKBONE, PIXEL_DECODER, check_two_stage_cfg
from .ensemble import ensemble_probs
from .prompt_learner import LearnedPrompts
from .teacher import frozen_copy
from .transformer_decoder import QueryDecoder

Prediction = tuple[torch.Tensor, torch.Tensor]  # (class embeddings B x Q x D, masks B x Q x h x w)
Sizes = Sequence[tuple[int, int]] | None  # each image's (h, w) without the batch padding


@HEAD_REGISTRY.register()
class TwoStageHead(ZeroShotHead):
    """Proposal network with its own backbone + CLIP crop classification (see module doc)."""

    #: The meta-architecture passes each image's unpadded size (``image_sizes``): zsseg cuts the
    #: CLIP crops from the image without its batch padding.
    takes_image_sizes = True

    @configurable
    def __init__(self, *, backbone: nn.Module, pixel_decoder: nn.Module, decoder: QueryDecoder,
                 criterion: SetCriterion, crop_classifier: CropClassifier, embed_dim: int,
                 temperature: float, ensemble: bool, ensemble_weight: float,
                 seen_calibration: float = 0.0, target_stride: int = 1,
                 match_at_mask_resolution: bool = True,
                 pseudo_label_threshold: float = 0.5, pseudo_label_with_clip: bool = True,
                 self_training_recipe: str = "online",
                 prompt_learner: LearnedPrompts | None = None,
                 learned_prompts_for: str = "both"):
        """
        Args:
            backbone: ``images -> {"res2".."res5"}`` with ``out_channels``.
            pixel_decoder: ``features -> (mask_features, multi_scale)``.
            decoder: the query decoder (predictions of every layer).
            criterion: matching + losses (its ``mask_ignore_pixels`` also decides whether the
                targets carry valid-pixel maps).
            crop_classifier: CLIP crop classification.
            embed_dim: CLIP's joint embedding size.
            temperature: query-classifier cosine logits are divided by it.
            ensemble: fuse with CLIP crop classification at inference.
            ensemble_weight: zsseg's w.
            seen_calibration: subtracted from seen-class per-pixel scores at inference.
            target_stride: mask losses at input size / target_stride.
            match_at_mask_resolution: the criterion gets the predicted masks at their own
                resolution (matching there, only matched masks upsampled for the losses:
                MaskFormer); False: every predicted mask is upsampled to the loss resolution
                first.
            pseudo_label_threshold: self-training confidence threshold.
            pseudo_label_with_clip: pseudo-labels from the CLIP ensemble (else queries only).
            self_training_recipe: "online" (the current model labels each batch) or "offline"
                (a frozen copy of the head taken at the first self-training step labels every
                batch: zsseg's recipe inside one run; the copy is kept in ``teacher``).
            prompt_learner: zsseg's learned prompts, replacing the vocabulary's template texts
                for ``learned_prompts_for``: "both" classifiers or the CLIP "crops" only.
        """
        super().__init__()
        self.backbone = backbone
        self.pixel_decoder = pixel_decoder
        self.decoder = decoder
        self.criterion = criterion
        self.crop_classifier = crop_classifier
        # zsseg: a learned "void" (no-object) embedding scored like a class.
        self.void_embedding = nn.Embedding(1, embed_dim)
        self.temperature = temperature
        self.ensemble = ensemble
        self.ensemble_weight = ensemble_weight
        self.seen_calibration = seen_calibration
        self.target_stride = target_stride
        self.match_at_mask_resolution = match_at_mask_resolution
        # zsseg's pseudo-labels: fused scores normalised over the vocabulary, a threshold.
        self.pseudo_label_policy = PseudoLabelPolicy("normalised", pseudo_label_threshold)
        self.pseudo_label_with_clip = pseudo_label_with_clip
        self.self_training_recipe = check_value("MODEL.TWO_STAGE.SELF_TRAINING.RECIPE",
                                                self_training_recipe)
        self.prompt_learner = prompt_learner
        self.learned_prompts_for = check_value("MODEL.TWO_STAGE.PROMPT_LEARNER.FOR",
                                               learned_prompts_for)
        self.teacher: TwoStageHead | None = None
        self._teacher_due = False  # set by on_phase_change at the self-training start
        if self_training_recipe == "offline":
            teacher = frozen_copy(self)
            # True once the teacher holds the weights of the self-training start (saved with
            # the checkpoints, so a resumed run keeps its teacher).
            self.register_buffer("teacher_ready", torch.zeros((), dtype=torch.bool))
            self.teacher = teacher

    def train(self, mode: bool = True) -> TwoStageHead:
        """As ``nn.Module.train``; the teacher always stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    @classmethod
    def from_config(cls, cfg: Any, clip: Any) -> dict[str, Any]:
        check_two_stage_cfg(cfg)
        ts = cfg.MODEL.TWO_STAGE
        backbone = build_backbone(cfg, BACKBONE)
        return {
            "backbone": backbone,
            "pixel_decoder": build_pixel_decoder(cfg, PIXEL_DECODER, backbone.out_channels),
            "decoder": build_decoder(cfg, res5_channels=backbone.out_channels["res5"],
                                     embed_dim=clip.embed_dim),
            "criterion": build_set_criterion(cfg, "MODEL.TWO_STAGE",
                                             deep_supervision=ts.DECODER.DEEP_SUPERVISION),
            "crop_classifier": build_crop_classifier(cfg),
            "embed_dim": clip.embed_dim,
            "temperature": ts.DECODER.TEMPERATURE or 1.0 / learned_logit_scale(
                clip, "MODEL.TWO_STAGE.DECODER.TEMPERATURE"),
            "ensemble": ts.CLIP_ENSEMBLE.ENABLED,
            "ensemble_weight": ts.CLIP_ENSEMBLE.WEIGHT,
            "seen_calibration": ts.CLIP_ENSEMBLE.SEEN_CALIBRATION,
            "target_stride": ts.LOSS.TARGET_STRIDE,
            "match_at_mask_resolution": ts.MATCHER.RESOLUTION == "masks",
            "pseudo_label_threshold": ts.SELF_TRAINING.SCORE_THRESHOLD,
            "pseudo_label_with_clip": ts.SELF_TRAINING.USE_CLIP,
            # The teacher exists in transductive runs only (inductive checkpoints stay as they are).
            "self_training_recipe": (ts.SELF_TRAINING.RECIPE
                                     if Setting.of(cfg) is Setting.TRANSDUCTIVE else "online"),
            "prompt_learner": (LearnedPrompts(
                prefix_length=ts.PROMPT_LEARNER.PREFIX_LENGTH,
                suffix_length=ts.PROMPT_LEARNER.SUFFIX_LENGTH,
                dim=clip.model.token_embedding.embedding_dim, weights=ts.PROMPT_LEARNER.WEIGHTS)
                if ts.PROMPT_LEARNER.ENABLED else None),
            "learned_prompts_for": ts.PROMPT_LEARNER.FOR,
        }

    # --------------------------------------------------------------------------- stages
    def propose(self, images: torch.Tensor) -> list[Prediction]:
        """Stage ``proposal_network``: predictions of every decoder layer (last = final)."""
        with stage("proposal_network"):
            features = self.backbone(images)
            mask_features, multi_scale = self.pixel_decoder(features)
            return self.decoder(features["res5"], multi_scale, mask_features)

    def texts(self, clip: Any, vocab: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(query-classifier texts, CLIP-crop texts), K x D each: the vocabulary's template
        texts, or the learned prompts' for the classifiers ``learned_prompts_for`` names."""
        if self.prompt_learner is None:
            return vocab.embeddings, vocab.embeddings
        learned = self.prompt_learner(clip, vocab.names)
        return (learned if self.learned_prompts_for == "both" else vocab.embeddings), learned

    def classify_queries(self, embeddings: torch.Tensor,
                         text_embeddings: torch.Tensor) -> torch.Tensor:
        """Query-classifier logits B x Q x (K+1): cosine with the K class texts and the learned
        void embedding (last), divided by the temperature."""
        void = F.normalize(self.void_embedding.weight, dim=-1)
        classes = torch.cat([text_embeddings.to(embeddings.dtype), void.to(embeddings.dtype)])
        return embeddings @ classes.T / self.temperature

    def prepare_crops(self, mask_logits: torch.Tensor, image_size: tuple[int, int],
                      image_sizes: Sizes = None) -> CropBatch:
        """Stage ``crop_preparation``: thresholded proposal regions at image size (``image_size``
        the padded batch's, ``image_sizes`` each image's without padding)."""
        with stage("crop_preparation"):
            return self.crop_classifier.prepare(mask_logits, image_size, image_sizes)

    def classify_crops(self, clip: Any, images: torch.Tensor, crops: CropBatch,
                       text_embeddings: torch.Tensor) -> torch.Tensor:
        """Stage ``clip_crops``: CLIP probabilities B x Q x K (1 for empty proposals)."""
        with stage("clip_crops"):
            return self.crop_classifier.classify(clip, images, crops, text_embeddings)

    def fuse(self, query_logits: torch.Tensor, mask_logits: torch.Tensor,
             clip_probs: torch.Tensor | None, valid: torch.Tensor | None,
             is_seen: torch.Tensor, size: tuple[int, int] | None = None,
             mask_probs: torch.Tensor | None = None) -> torch.Tensor:
        """Stage ``fusion``: per-class scores B x K x h x w (``size``, or the masks' size).

        ``p`` = softmax over vocabulary + void with void dropped; fused with ``clip_probs`` by
        :func:`ensemble_probs` (if given); then summed over queries weighted by the sigmoid
        masks, the mask logits upsampled to ``size`` first (zsseg: sigmoid at image
        resolution; ``mask_probs``: those sigmoid masks, if the crops already computed them);
        ``seen_calibration`` subtracted from seen classes.
        """
        with stage("fusion"):
            p = query_logits.float().softmax(-1)[..., :-1]
            scores = ensemble_probs(p, clip_probs, is_seen, self.ensemble_weight, valid)
            if mask_probs is None:
                masks = mask_logits.float()
                if size is not None and tuple(masks.shape[-2:]) != tuple(size):
                    masks = F.interpolate(masks, size=size, mode="bilinear",
                                          align_corners=False)
                mask_probs = masks.sigmoid()
            semseg = semantic_inference(scores, mask_probs)
            if self.seen_calibration:
                seen = is_seen.to(semseg.device).view(1, -1, 1, 1).to(semseg.dtype)
                semseg = semseg - self.seen_calibration * seen
            return semseg

    # --------------------------------------------------------------------------- forward
    def scores(self, images: torch.Tensor, vocab: Any, clip: Any,
               image_sizes: Sizes = None) -> torch.Tensor:
        """B x K x H x W class scores (``image_sizes``: each image's (h, w) without the batch
        padding; None: no padding)."""
        return self.inference(images, vocab, clip, image_sizes=image_sizes)

    def inference(self, images: torch.Tensor, vocab: Any, clip: Any,
                  predictions: list[Prediction] | None = None,
                  ensemble: bool | None = None, image_sizes: Sizes = None) -> torch.Tensor:
        """Per-class scores over ``vocab`` at the (padded) images' size (B x K x H x W).

        Args:
            predictions: the proposal network's outputs, if already computed.
            ensemble: fuse with CLIP crop classification; None = ``self.ensemble``.
            image_sizes: each image's (h, w) without the batch padding (None: no padding).
        """
        embeddings, mask_logits = (predictions or self.propose(images))[-1]
        query_text, crop_text = self.texts(clip, vocab)
        query_logits = self.classify_queries(embeddings, query_text)
        clip_probs = valid = probs = None
        use_clip = self.ensemble if ensemble is None else ensemble
        if use_clip:
            crops = self.prepare_crops(mask_logits, tuple(images.shape[-2:]), image_sizes)
            clip_probs = self.classify_crops(clip, images, crops, crop_text)
            valid, probs = crops.valid, crops.probs
        return self.fuse(query_logits, mask_logits, clip_probs, valid, vocab.is_seen,
                         size=tuple(images.shape[-2:]), mask_probs=probs)

    def losses(self, images: torch.Tensor, targets: TrainingTargets, clip: Any,
               image_sizes: Sizes = None) -> dict[str, torch.Tensor]:
        """Matching losses of every decoder layer against per-class target masks, over the
        active vocabulary (the seen classes before self-training: unseen text embeddings are
        never negatives of the query classifier). In self-training the unlabelled pixels are
        pseudo-labelled first from :meth:`_pseudo_label_scores`. Padding is labelled 255: no class
        (zsseg pads the target masks with zeros).
        """
        predictions = self.propose(images)
        if self._teacher_due:
            self._take_teacher()
        vocab = targets.vocab
        text = self.texts(clip, vocab)[0]
        labels = targets.labels(lambda: F.interpolate(
            self._pseudo_label_scores(images, vocab, clip, predictions, image_sizes),
            size=targets.size, mode="bilinear", align_corners=False))
        h, w = labels.shape[-2:]
        size = (h // self.target_stride, w // self.target_stride)
        gt = semantic_targets(labels, len(vocab), size=size,
                              with_valid=self.criterion.mask_ignore_pixels)
        outputs = []
        for embeddings, masks in predictions:
            if not self.match_at_mask_resolution and tuple(masks.shape[-2:]) != size:
                masks = F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
            outputs.append((self.classify_queries(embeddings, text), masks))
        return self.criterion(outputs, gt)

    def on_phase_change(self, phase: TrainingPhase) -> None:
        """At the self-training start the offline teacher is due: the first self-training step
        copies this head into it, after that step's proposal forward (so the teacher's
        BatchNorm statistics include that batch, as the suite's teacher was taken lazily
        before heads were told of the phase; kept: the toy runs stay bit-identical). One
        difference from that lazy copy: it waited for the first batch with unlabelled pixels
        of unseen classes, this one takes the first self-training batch, whatever it holds. A
        run resumed after the start keeps the teacher of its checkpoint."""
        self._teacher_due = (phase is TrainingPhase.SELF_TRAINING and self.teacher is not None
                             and not bool(self.teacher_ready))

    @torch.no_grad()
    def _take_teacher(self) -> None:
        """Copies this head's weights into the offline teacher (once)."""
        student = {k: v for k, v in self.state_dict().items()
                   if not k.startswith("teacher.") and k != "teacher_ready"}
        self.teacher.load_state_dict(student)
        self.teacher_ready.fill_(True)
        self._teacher_due = False

    @torch.no_grad()
    def _pseudo_label_scores(self, images: torch.Tensor, vocab: Any, clip: Any,
                         predictions: list[Prediction], image_sizes: Sizes = None
                         ) -> torch.Tensor:
        """Fused scores the pseudo-labels come from (with the CLIP crop ensemble unless
        ``pseudo_label_with_clip`` is False): the teacher's (``offline``; frozen at the
        self-training start, :meth:`on_phase_change`) or this step's final prediction
        (``online``)."""
        use_clip = self.ensemble and self.pseudo_label_with_clip
        if self.teacher is None:
            return self.inference(images, vocab, clip, predictions=predictions[-1:],
                                  ensemble=use_clip, image_sizes=image_sizes)
        if not bool(self.teacher_ready):
            raise RuntimeError("the offline teacher is taken at the self-training start: the "
                               "phase schedule calls on_phase_change(SELF_TRAINING) first")
        return self.teacher.inference(images, vocab, clip, ensemble=use_clip,
                                      image_sizes=image_sizes)
