"""``SANHead``: Side Adapter Network (Xu et al., CVPR 2023) as a head of ``ZeroShotSegmentor``.

One pass of the frozen CLIP ViT, split in two (MendelXu/SAN @ e19262d, ``san/model/san.py:
146-273``):

1. ``clip_encoder``: the padded, normalised batch resized by ``clip_resolution`` (bilinear,
   ``scale_factor``) through CLIP's first ``first_rec_block`` blocks; the outputs the side
   network fuses are kept;
2. ``side_adapter``: the side ViT on the full-resolution batch, fused with those CLIP features,
   predicts ``Q`` mask proposals (1/16 resolution) and attention biases;
3. ``clip_recognition``: CLIP's remaining blocks classify the proposals through [SOS] tokens
   whose attention to the patches carries the biases (:mod:`.recognition`);
4. ``post_process``: logits = CLIP's logit scale x cosine of the proposal embeddings with the
   class text embeddings and a learnable background embedding (last); scores = the official
   ``semantic_inference``: ``softmax over K+1, background dropped`` x ``sigmoid(mask logits
   bilinearly upsampled to the input)``, summed over proposals.

Training: Mask2Former's matcher and point-sampled criterion (the core's
:class:`~zsseg_bench.modeling.matcher.PointMatcher` and
:class:`~zsseg_bench.modeling.criterion.PointSetCriterion`) on the final and
the auxiliary (earlier side block) outputs. Learnable: the side network, the background
embedding and (``train_clip_pos_embed``) a copy of CLIP's visual positional embedding, which
SAN trains; CLIP itself stays frozen and shared.

Seen and unseen classes: SAN trains on the vocabulary the meta-architecture gives (its own
protocol, open-vocabulary, is the ``fully`` setting on COCO-Stuff: every class labelled). The
suite's zero-shot rules (inductive: seen classes only; transductive self-training: pseudo-labels
for unlabelled pixels = the argmax unseen class of the model's own scores) are the core's
(:class:`~zsseg_bench.modeling.training_targets.TrainingTargets` and its policy), as for every
head.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.config import configurable
from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.criterion import PointSetCriterion, semantic_targets
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.matcher import PointMatcher
from zsseg_bench.modeling.semantic_inference import semantic_inference
from zsseg_bench.modeling.stage_timer import stage
from zsseg_bench.modeling.training_targets import TrainingTargets
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.utils.errors import UserError

from .mask_decoder import MaskDecoder
from .recognition import recognize
from .side_adapter import SideAdapterNetwork, parse_fusion_map
from .side_vit import SideViT

#: Per decoded output: (class logits B x Q x (K+1), mask logits B x Q x h x w).
Outputs = list[tuple[torch.Tensor, torch.Tensor]]


@HEAD_REGISTRY.register()
class SANHead(ZeroShotHead):
    """SAN (see the module docstring)."""

    @configurable
    def __init__(self, *, side_adapter: SideAdapterNetwork, criterion: PointSetCriterion,
                 embed_dim: int, first_rec_block: int, clip_resolution: float = 0.5,
                 clip_pos_embed: torch.Tensor | None = None,
                 rec_downsample_method: str = "max", rec_blocked_logit: float = -100.0):
        """See ``projects/san/config.py`` for the meaning and source of every argument.

        Args:
            clip_pos_embed: the initial value of a trainable copy of CLIP's visual positional
                embedding; None keeps CLIP's own (frozen).
        """
        super().__init__()
        self.side_adapter = side_adapter
        self.criterion = criterion
        self.first_rec_block = first_rec_block
        self.clip_resolution = clip_resolution
        self.rec_downsample_method = rec_downsample_method
        self.rec_blocked_logit = rec_blocked_logit
        self.clip_pos_embed = (nn.Parameter(clip_pos_embed.detach().clone())
                               if clip_pos_embed is not None else None)
        # LearnableBgOvClassifier (san/model/clip_utils/classifier.py:93-104): normal, std E^-0.5
        self.bg_embed = nn.Parameter(torch.randn(1, embed_dim) * embed_dim ** -0.5)
        self._clip_blocks = sorted({k for k in side_adapter.clip_blocks_read if k > 0}
                                   | {first_rec_block})

    @classmethod
    def from_config(cls, cfg: Any, clip: Any) -> dict[str, Any]:
        s, a = cfg.MODEL.SAN, cfg.MODEL.SAN.SIDE_ADAPTER
        b, loss = a.ATTN_BIAS, s.LOSS
        first = int(s.FEATURE_LAST_LAYER_IDX)
        if not 0 < first < clip.num_layers:
            raise UserError(f"MODEL.SAN.FEATURE_LAST_LAYER_IDX = {first}: CLIP ({clip.name}) has "
                            f"{clip.num_layers} blocks; 1..{clip.num_layers - 1} of them run "
                            "before the side network, the rest classify the masks")
        fusion_map = parse_fusion_map(a.FUSION_MAP)
        if max(fusion_map.values(), default=0) > first:
            raise UserError(f"MODEL.SAN.SIDE_ADAPTER.FUSION_MAP reads CLIP block "
                            f"{max(fusion_map.values())}, after MODEL.SAN.FEATURE_LAST_LAYER_IDX "
                            f"= {first} (the blocks CLIP runs before the side network)")
        if b.NUM_HEADS not in (1, clip.num_heads):
            raise UserError(f"MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.NUM_HEADS = {b.NUM_HEADS}: 1 or "
                            f"CLIP's {clip.num_heads} heads")
        if b.NUM_LAYERS not in (1, clip.num_layers - first):
            raise UserError(f"MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.NUM_LAYERS = {b.NUM_LAYERS}: 1 or "
                            f"the {clip.num_layers - first} recognition blocks")
        vit = SideViT(patch_size=a.PATCH_SIZE, width=a.WIDTH, depth=a.DEPTH,
                      num_heads=a.NUM_HEADS, mlp_ratio=a.MLP_RATIO, image_size=a.IMAGE_SIZE)
        decoder = MaskDecoder(in_channels=a.WIDTH, num_heads=b.NUM_HEADS,
                              num_layers=b.NUM_LAYERS, embed_channels=b.EMBED_CHANNELS,
                              mlp_channels=b.MLP_CHANNELS, mlp_num_layers=b.MLP_NUM_LAYERS,
                              rescale_attn_bias=b.RESCALE_ATTN_BIAS)
        side = SideAdapterNetwork(vit=vit, decoder=decoder, clip_channels=clip.width,
                                  num_queries=a.NUM_QUERIES, fusion_map=fusion_map,
                                  deep_supervision_idxs=list(a.DEEP_SUPERVISION_IDXS))
        matcher = PointMatcher(cost_class=loss.CLASS_WEIGHT, cost_mask=loss.MASK_WEIGHT,
                               cost_dice=loss.DICE_WEIGHT, num_points=loss.NUM_POINTS)
        criterion = PointSetCriterion(matcher=matcher, class_weight=loss.CLASS_WEIGHT,
                                      mask_weight=loss.MASK_WEIGHT, dice_weight=loss.DICE_WEIGHT,
                                      no_object_weight=loss.NO_OBJECT_WEIGHT,
                                      num_points=loss.NUM_POINTS,
                                      oversample_ratio=loss.OVERSAMPLE_RATIO,
                                      importance_sample_ratio=loss.IMPORTANCE_SAMPLE_RATIO)
        return {
            "side_adapter": side,
            "criterion": criterion,
            "embed_dim": clip.embed_dim,
            "first_rec_block": first,
            "clip_resolution": float(s.CLIP_RESOLUTION),
            "clip_pos_embed": (clip.visual.positional_embedding if s.TRAIN_CLIP_POS_EMBED
                               else None),
            "rec_downsample_method": s.REC_DOWNSAMPLE_METHOD,
            "rec_blocked_logit": float(s.REC_BLOCKED_LOGIT),
        }

    # ------------------------------------------------------------------------------- forward
    def scores(self, images: torch.Tensor, vocab: ClassVocabulary, clip: Any) -> torch.Tensor:
        """``B x K x H x W`` scores over ``vocab`` (``images``: normalised, padded
        ``B x 3 x H x W``; ``clip``: the shared frozen CLIP model)."""
        return self.semantic_scores(self.outputs(images, vocab.embeddings, clip)[-1],
                                    images.shape[-2:])

    def encode_clip(self, images: torch.Tensor, clip: Any
                    ) -> tuple[dict[int, torch.Tensor], torch.Tensor, tuple[int, int]]:
        """CLIP's first ``first_rec_block`` blocks on the resized batch: (feature maps
        ``B x width x h' x w'`` by block count, 0 = after ``ln_pre``; the tokens after the last
        of them; the grid (h', w'))."""
        x = F.interpolate(images, scale_factor=self.clip_resolution, mode="bilinear",
                          align_corners=False)
        p = clip.patch_size
        x = x[..., : x.shape[-2] // p * p, : x.shape[-1] // p * p]  # CLIP's conv drops the rest
        tokens, grid = clip.embed_tokens(x, positional_embedding=self.clip_pos_embed)
        last, kept = clip.run_blocks(tokens, 0, self.first_rec_block,
                                     keep=[k - 1 for k in self._clip_blocks])
        outputs = {0: tokens, **{k + 1: v for k, v in kept.items()}}
        bsz, width = tokens.shape[0], tokens.shape[-1]
        maps = {k: v[:, 1:].transpose(1, 2).reshape(bsz, width, *grid)
                for k, v in outputs.items()}
        return maps, last, grid

    def outputs(self, images: torch.Tensor, text: torch.Tensor, clip: Any) -> Outputs:
        """(class logits ``B x Q x (K+1)``, mask logits ``B x Q x h x w``) of every decoded
        side output (training: the auxiliary ones first; inference: the final one only).

        Args:
            images: normalised, padded ``B x 3 x H x W``.
            text: ``K x D`` L2-normalised text embeddings of the classes.
            clip: the CLIP layer.
        """
        with stage("clip_encoder"):
            maps, tokens, grid = self.encode_clip(images, clip)
        with stage("side_adapter"):
            masks, biases = self.side_adapter(images, maps)
        with stage("clip_recognition"):
            embeddings = [recognize(clip, tokens, grid, bias, self.first_rec_block,
                                    self.rec_downsample_method, self.rec_blocked_logit)
                          for bias in biases]
        classifier = F.normalize(torch.cat([text.to(self.bg_embed), self.bg_embed]), dim=-1)
        classifier = clip.model.logit_scale.exp() * classifier
        return [(torch.einsum("bqc,nc->bqn", e, classifier.to(e)), m)
                for e, m in zip(embeddings, masks)]

    def semantic_scores(self, output: tuple[torch.Tensor, torch.Tensor],
                        size: tuple[int, int]) -> torch.Tensor:
        """SAN's ``semantic_inference`` at ``size``: mask logits bilinearly upsampled, then
        ``softmax(logits)[..., :K] . sigmoid(masks)`` summed over proposals (B x K x H x W)."""
        with stage("post_process"):
            logits, masks = output
            masks = F.interpolate(masks, size=tuple(size), mode="bilinear", align_corners=False)
            probs = logits.softmax(-1)[..., :-1]
            return semantic_inference(probs.to(masks), masks.sigmoid())

    # ----------------------------------------------------------------------------- training
    def losses(self, images: torch.Tensor, targets: TrainingTargets,
               clip: Any) -> dict[str, torch.Tensor]:
        """The weighted set-criterion losses of the final and the auxiliary outputs, over the
        active vocabulary (self-training: unlabelled pixels pseudo-labelled from the final
        output's scores)."""
        outputs = self.outputs(images, targets.vocab.embeddings, clip)
        labels = targets.labels(lambda: self.semantic_scores(
            tuple(t.detach().float() for t in outputs[-1]), targets.size))
        return self.criterion(outputs, semantic_targets(labels, len(targets.vocab)))
