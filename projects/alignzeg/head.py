"""``AlignZegHead``: region-wise zero-shot segmentation with MRPE, GEPC (FES + BDS) and PBC.

Pipeline (a reconstruction from the abstract of Ge et al., ECCV 2024; README.md):

1. ``clip_encoder``: the frozen CLIP ViT runs **once on the whole input** (no crops) and gives
   L2-normalised dense patch embeddings;
2. ``image_encoder``: a learnable ResNet + FPN pixel decoder (the core's shared blocks);
   the CLIP patch embeddings are projected, upsampled to stride 4 and added (fusion);
3. ``decoder``: MRPE -- learned mask queries and the fused pixel features refine each other;
   every layer gives class-agnostic masks and query states;
4. ``post_process``: proposal features (query MLP + mask-pooled CLIP embedding) are classified
   against the CLIP text prototypes and the background prototypes (BDS); PBC scales down the
   seen-class probabilities of proposals its indicator flags; masks x probabilities summed over
   proposals give per-class scores.

Training: Hungarian matching + CE / focal / dice (the core's MaskFormer ``SetCriterion``), plus
FES's ``L_vir`` on virtual (mixed) proposal features, BDS's ``L_reg`` and PBC's ``L_bc``. The
zero-shot rules are the core's (:class:`~zsseg_bench.modeling.training_targets.TrainingTargets`):
the seen classes only (text embeddings and labels) until transductive self-training, which
pseudo-labels unlabelled pixels with the argmax unseen class of the current scores (the core
policy).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.config import configurable
from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.backbone import build_backbone
from zsseg_bench.modeling.criterion import SetCriterion, build_set_criterion, semantic_targets
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.inference_modes import resize_scores
from zsseg_bench.modeling.pixel_decoder import build_pixel_decoder
from zsseg_bench.modeling.semantic_inference import semantic_inference
from zsseg_bench.modeling.stage_timer import stage
from zsseg_bench.modeling.training_targets import TrainingTargets
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.utils.errors import UserError

from .config import BACKBONE, PIXEL_DECODER
from .gepc import ProposalClassifier, manifold_mixup, mask_pool, soft_cross_entropy
from .mrpe import MRPEDecoder
from .pbc import BiasIndicator, correct_seen_scores

#: Proposals of one input: (class probabilities B x Q x K, indicator probabilities B x Q or
#: None, mask logits B x Q x h x w).
Proposals = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]


@HEAD_REGISTRY.register()
class AlignZegHead(ZeroShotHead):
    """AlignZeg (see the module docstring). CLIP stays frozen and is passed in on every call."""

    @configurable
    def __init__(self, *, backbone: nn.Module, pixel_decoder: nn.Module, decoder: MRPEDecoder,
                 classifier: ProposalClassifier, criterion: SetCriterion,
                 indicator: BiasIndicator | None, embed_dim: int, fuse_clip: bool = True,
                 fes: bool = True, fes_alpha: float = 2.0, fes_per_real: int = 1,
                 pbc: bool = True, pbc_threshold: float = 0.5, pbc_factor: float = 0.5,
                 bc_weight: float = 1.0, vir_weight: float = 1.0, reg_weight: float = 0.1,
                 target_stride: int = 1):
        """See ``projects/alignzeg/config.py`` for the meaning of every argument.

        Args:
            indicator: PBC's binary class indicator (None: not trained, no correction).
            pbc: apply the correction at inference (needs ``indicator``).
        """
        super().__init__()
        if pbc and indicator is None:
            raise UserError("MODEL.ALIGNZEG.PBC.ENABLED needs a trained indicator: set "
                            "MODEL.ALIGNZEG.PBC.TRAIN True")
        self.backbone = backbone
        self.pixel_decoder = pixel_decoder
        mask_dim = pixel_decoder.mask_dim
        self.clip_proj = nn.Conv2d(embed_dim, mask_dim, 1) if fuse_clip else None
        self.decoder = decoder
        self.classifier = classifier
        self.criterion = criterion
        self.indicator = indicator
        self.fes, self.fes_alpha, self.fes_per_real = fes, fes_alpha, fes_per_real
        self.pbc, self.pbc_threshold, self.pbc_factor = pbc, pbc_threshold, pbc_factor
        self.bc_weight, self.vir_weight, self.reg_weight = bc_weight, vir_weight, reg_weight
        self.target_stride = target_stride

    @classmethod
    def from_config(cls, cfg: Any, clip: Any) -> dict[str, Any]:
        a = cfg.MODEL.ALIGNZEG
        p, d, c, loss = a.PIXEL_DECODER, a.DECODER, a.CLASSIFIER, a.LOSS
        backbone = build_backbone(cfg, BACKBONE)
        criterion = build_set_criterion(cfg, "MODEL.ALIGNZEG",
                                        deep_supervision=d.DEEP_SUPERVISION)
        return {
            "backbone": backbone,
            "pixel_decoder": build_pixel_decoder(cfg, PIXEL_DECODER, backbone.out_channels),
            "decoder": MRPEDecoder(p.MASK_DIM, d.NUM_QUERIES, d.HIDDEN_DIM, d.NHEADS,
                                   d.DIM_FEEDFORWARD, d.LAYERS, d.DROPOUT, mutual=d.MRPE),
            "classifier": ProposalClassifier(
                d.HIDDEN_DIM, clip.embed_dim, c.EMBED_HIDDEN_DIM, c.EMBED_LAYERS,
                a.BDS.NUM_PROTOTYPES if a.BDS.ENABLED else 1, c.TEMPERATURE, c.CLIP_POOL),
            "criterion": criterion,
            "indicator": BiasIndicator(clip.embed_dim, a.PBC.HIDDEN_DIM) if a.PBC.TRAIN else None,
            "embed_dim": clip.embed_dim,
            "fuse_clip": a.FUSE_CLIP,
            "fes": a.FES.ENABLED,
            "fes_alpha": a.FES.ALPHA,
            "fes_per_real": a.FES.NUM_PER_REAL,
            "pbc": a.PBC.ENABLED,
            "pbc_threshold": a.PBC.THRESHOLD,
            "pbc_factor": a.PBC.FACTOR,
            "bc_weight": loss.BC_WEIGHT,
            "vir_weight": loss.VIR_WEIGHT,
            "reg_weight": loss.REG_WEIGHT if a.BDS.ENABLED else 0.0,
            "target_stride": loss.TARGET_STRIDE,
        }

    # ---------------------------------------------------------------------------- network
    def encode(self, images: torch.Tensor, clip: Any
               ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
        """(CLIP patch embeddings B x D x h x w, the MRPE decoder's per-layer outputs)."""
        with stage("clip_encoder"):
            dense = clip.encode_dense(images).patch_embeddings
        with stage("image_encoder"):
            mask_features, _ = self.pixel_decoder(self.backbone(images))
            if self.clip_proj is not None:
                fused = self.clip_proj(dense.to(mask_features.dtype))
                mask_features = mask_features + F.interpolate(
                    fused, size=mask_features.shape[-2:], mode="bilinear", align_corners=False)
        with stage("decoder"):
            return dense, self.decoder(mask_features)

    def proposal_features(self, dense: torch.Tensor, states: torch.Tensor,
                          masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(unnormalised proposal features B x Q x D, mask-pooled CLIP embeddings B x Q x D)."""
        pooled = mask_pool(dense, masks)
        return self.classifier.features(states, pooled), pooled

    def proposals(self, images: torch.Tensor, vocab: ClassVocabulary, clip: Any) -> Proposals:
        """The final layer's proposals over ``vocab`` (probabilities before PBC)."""
        dense, layers = self.encode(images, clip)
        with stage("post_process"):
            states, masks, _ = layers[-1]
            features, _ = self.proposal_features(dense, states, masks)
            probs = self.classifier.logits(features, vocab.embeddings).float().softmax(-1)
            unseen = (self.indicator(features).float().sigmoid()
                      if self.indicator is not None else None)
            return probs[..., :-1], unseen, masks

    def semantic_scores(self, proposals: Proposals, is_seen: torch.Tensor,
                        pbc: bool | None = None) -> torch.Tensor:
        """B x K x h x w class scores: PBC (if ``pbc``; None = the configured switch), then
        MaskFormer's semantic inference."""
        with stage("post_process"):
            probs, unseen, masks = proposals
            if (self.pbc if pbc is None else pbc) and unseen is not None:
                probs = correct_seen_scores(probs, unseen, is_seen, self.pbc_threshold,
                                            self.pbc_factor)
            return semantic_inference(probs, masks.float().sigmoid())

    def scores(self, images: torch.Tensor, vocab: ClassVocabulary, clip: Any) -> torch.Tensor:
        """B x K x H/4 x W/4 class scores over ``vocab`` (``images``: normalised, padded
        B x 3 x H x W; ``clip``: the shared frozen CLIP model)."""
        return self.semantic_scores(self.proposals(images, vocab, clip), vocab.is_seen)

    # ---------------------------------------------------------------------------- training
    def losses(self, images: torch.Tensor, targets: TrainingTargets,
               clip: Any) -> dict[str, torch.Tensor]:
        """L_ce, L_mask (focal + dice) on every layer, L_vir, L_reg and L_bc (weighted), over
        the active vocabulary; in self-training the unlabelled pixels are pseudo-labelled from
        the final layer's scores (before PBC)."""
        text = targets.vocab.embeddings
        active_seen = targets.vocab.is_seen
        dense, layers = self.encode(images, clip)
        feats = [self.proposal_features(dense, s, m) for s, m, _ in layers]
        logits = [self.classifier.logits(f, text) for f, _ in feats]
        pseudo = None
        if targets.self_training:
            with torch.no_grad():
                probs = logits[-1].float().softmax(-1)[..., :-1]
                pseudo = resize_scores(semantic_inference(probs, layers[-1][1].float().sigmoid()),
                                       targets.size)
        labels = targets.labels(pseudo)
        h, w = labels.shape[-2:]
        size = (h // self.target_stride, w // self.target_stride)
        gt = semantic_targets(labels, len(targets.vocab), size=size,
                              with_valid=self.criterion.mask_ignore_pixels)
        preds = [(lg, m if tuple(m.shape[-2:]) == size else resize_scores(m, size))
                 for lg, (_, m, _) in zip(logits, layers)]
        losses = self.criterion(preds, gt)
        if self.fes or self.indicator is not None or self.reg_weight:
            losses.update(self.alignment_losses(preds[-1], gt, layers[-1][0], feats[-1],
                                                text, active_seen))
        return losses

    def alignment_losses(self, final: tuple[torch.Tensor, torch.Tensor],
                         gt: list[dict[str, torch.Tensor]], states: torch.Tensor,
                         feats: tuple[torch.Tensor, torch.Tensor], text: torch.Tensor,
                         active_seen: torch.Tensor) -> dict[str, torch.Tensor]:
        """FES's L_vir, BDS's L_reg and PBC's L_bc on the final layer's matched proposals."""
        features, pooled = feats
        out: dict[str, torch.Tensor] = {}
        if self.reg_weight:
            out["loss_reg"] = self.reg_weight * self.classifier.background_regularisation()
        if not self.fes and self.indicator is None:
            return out
        targets = gt if self.criterion.mask_ignore_pixels else [
            {k: v for k, v in t.items() if k != "valid"} for t in gt]
        indices = self.criterion.matcher(*final, targets)
        rows = [(torch.full_like(src, i), src, t["labels"][tgt.to(t["labels"].device)])
                for i, ((src, tgt), t) in enumerate(zip(indices, targets))]
        bi, qi, y = (torch.cat(x).to(features.device) for x in zip(*rows))
        seen = active_seen.to(y.device)[y]
        real = (states[bi, qi][seen], pooled[bi, qi][seen])
        (v_states, v_pooled), soft, _, _ = manifold_mixup(
            list(real), y[seen], text.shape[0] + 1, self.fes_alpha, self.fes_per_real)
        virtual = self.classifier.features(v_states, v_pooled)
        if self.fes:
            out["loss_vir"] = self.vir_weight * soft_cross_entropy(
                self.classifier.logits(virtual, text), soft.to(virtual.dtype))
        if self.indicator is not None:
            matched = features[bi, qi]
            positives = torch.cat([virtual, matched[~seen]])  # unseen only in self-training
            out["loss_bc"] = self.bc_weight * self.indicator.loss(matched[seen], positives)
        return out

