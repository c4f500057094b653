"""``ZegCLIPHead``: deep prompts on the frozen CLIP ViT, relationship descriptor, light decoder.

One forward of the prompted CLIP gives normalised patch embeddings and the ``[CLS]``
embedding; class queries ``Linear([cls ⊙ t_c, t_c])`` cross-attend to the patch embeddings
in a light decoder whose query-key logits (averaged over heads) are the class masks. Training:
sigmoid focal + dice per class (non-mutually-exclusive). Inference: sigmoid scores, with a
constant subtracted from seen classes (calibration).

The paper's three designs are switches (``MODEL.ZEGCLIP.ENCODER_ADAPTATION``, ``LOSS.TYPE``,
``CLASS_QUERY``; ZegCLIP's choices the defaults), so that the one-stage baseline and every step of
the paper's ablation build from the same head: shallow or no prompts, or the whole image encoder
fine-tuned; a softmax cross-entropy over the classes (softmax scores at inference); the text
embedding alone as class query.

Seen and unseen classes are the core's (:class:`~zsseg_bench.modeling.training_targets.
TrainingTargets`): the seen classes only in the inductive setting and before transductive
self-training starts (the official transductive run starts from an inductive model); in
self-training every class, unlabelled pixels pseudo-labelled by the core policy (ZegCLIP's:
argmax over the unseen classes of this step's detached masks,
:class:`~zsseg_bench.modeling.pseudo_label.PseudoLabelPolicy`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zsseg_bench.config import configurable
from zsseg_bench.config.allowed import check_value
from zsseg_bench.config.setting import Setting
from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.inference_modes import resize_scores
from zsseg_bench.modeling.stage_timer import stage
from zsseg_bench.modeling.training_targets import TrainingTargets
from zsseg_bench.modeling.vocabulary import ClassVocabulary

from .decoder import LightDecoder, build_class_query, init_decoder_weights
from .losses import LOSS_TYPES, mask_losses, softmax_ce_loss
from .prompts import ENCODER_ADAPTATIONS, DeepPrompts


@HEAD_REGISTRY.register()
class ZegCLIPHead(ZeroShotHead):
    """ZegCLIP (Zhou et al., CVPR 2023) as a head of ``ZeroShotSegmentor``.

    Learnable: the deep prompts (and their shared projection), the relationship descriptor,
    the decoder (and its optional input projection). CLIP itself stays frozen and is passed in
    by the meta-architecture on every call -- unless ``encoder_adaptation="finetune"``: then the
    head makes ``finetune_encoder`` (CLIP's image encoder, ``clip.visual``) trainable when it is
    built, and the encoder's parameters train (and are checkpointed) under the CLIP layer's
    names (``clip.model.visual.*``), never as the head's own.
    """

    #: The last decoder layer's value path, LayerNorms and FFN get no gradient (only its
    #: query-key logits become the masks, as in the official decoder): DDP must look for them.
    ddp_find_unused_parameters = True

    @configurable
    def __init__(self, *, clip_width: int, clip_layers: int, embed_dim: int, patch_size: int,
                 num_prompt_tokens: int = 10, prompt_projection: bool = True,
                 prompt_dropout: float = 0.1, prompt_norm: bool = True, hidden_dim: int = 0,
                 num_decoder_layers: int = 3, num_heads: int = 8, mlp_ratio: int = 4,
                 dropout: float = 0.1, attn_dropout: float = 0.1, query_self_attn: bool = False,
                 deep_supervision: bool = False, decoder_init: str = "pytorch",
                 focal_weight: float = 100.0,
                 dice_weight: float = 1.0, focal_alpha: float = 0.25, focal_gamma: float = 2.0,
                 self_train_focal_weight: float = -1.0, ignore_as_negative: bool = True,
                 seen_score_calibration: float = 0.1,
                 encoder_adaptation: str = "deep_prompts",
                 finetune_encoder: nn.Module | None = None, loss_type: str = "focal_dice",
                 ce_weight: float = 1.0, class_query: str = "relationship_descriptor"):
        """See ``projects/zegclip/config.py`` for the meaning and source of every argument.

        ``finetune_encoder``: the image encoder that ``encoder_adaptation="finetune"`` makes
        trainable (required then, ignored otherwise); it is not registered in the head.
        """
        super().__init__()
        if encoder_adaptation not in ENCODER_ADAPTATIONS:
            raise ValueError(f"unknown encoder adaptation {encoder_adaptation!r}; choices: "
                             f"{ENCODER_ADAPTATIONS}")
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"unknown loss type {loss_type!r}; choices: {LOSS_TYPES}")
        dim = hidden_dim or embed_dim
        self.encoder_adaptation = encoder_adaptation
        self.prompts = None
        if num_prompt_tokens > 0 and encoder_adaptation.endswith("_prompts"):
            # Shallow: one set of tokens before the first layer, carried through all of them,
            # without prompt_norm (the official total_d_layer=0 path never applies it).
            shallow = encoder_adaptation == "shallow_prompts"
            self.prompts = DeepPrompts(1 if shallow else clip_layers, num_prompt_tokens,
                                       clip_width, patch_size, prompt_projection, prompt_dropout,
                                       prompt_norm and not shallow)
        if encoder_adaptation == "finetune":
            if finetune_encoder is None:
                raise ValueError("encoder_adaptation='finetune' needs the image encoder "
                                 "(finetune_encoder)")
            finetune_encoder.requires_grad_(True)
        # Official use_proj=True path; identity when the decoder works in the CLIP space.
        self.input_proj: nn.Module = nn.Identity()
        if dim != embed_dim:
            self.input_proj = nn.Sequential(nn.Linear(embed_dim, dim), nn.LayerNorm(dim))
            if decoder_init == "pytorch":  # decode_seg.py draws it so in its constructor
                nn.init.trunc_normal_(self.input_proj[0].weight, std=0.02)
        # The class queries: the relationship descriptor, or the text embedding alone.
        self.descriptor = build_class_query(class_query, embed_dim, dim)
        self.decoder = LightDecoder(dim, num_decoder_layers, num_heads, mlp_ratio, dropout,
                                    attn_dropout, query_self_attn)
        for module in (self.input_proj, self.descriptor, self.decoder):
            init_decoder_weights(module, decoder_init)
        self.deep_supervision = deep_supervision
        self.loss_args = {"dice_weight": dice_weight, "alpha": focal_alpha, "gamma": focal_gamma,
                          "ignore_as_negative": ignore_as_negative}
        self.focal_weight = focal_weight
        self.self_train_focal_weight = (focal_weight if self_train_focal_weight < 0
                                        else self_train_focal_weight)
        self.seen_score_calibration = seen_score_calibration
        self.loss_type = loss_type
        self.ce_weight = ce_weight

    @classmethod
    def from_config(cls, cfg: Any, clip: Any) -> dict[str, Any]:
        z = cfg.MODEL.ZEGCLIP
        adaptation = check_value("MODEL.ZEGCLIP.ENCODER_ADAPTATION", z.ENCODER_ADAPTATION)
        return {
            "encoder_adaptation": adaptation,
            "finetune_encoder": clip.visual if adaptation == "finetune" else None,
            "loss_type": check_value("MODEL.ZEGCLIP.LOSS.TYPE", z.LOSS.TYPE),
            "ce_weight": z.LOSS.CE_WEIGHT,
            "class_query": check_value("MODEL.ZEGCLIP.CLASS_QUERY", z.CLASS_QUERY),
            "clip_width": clip.width,
            "clip_layers": clip.num_layers,
            "embed_dim": clip.embed_dim,
            "patch_size": clip.patch_size,
            "num_prompt_tokens": z.PROMPT.NUM_TOKENS,
            "prompt_projection": z.PROMPT.PROJECTION,
            "prompt_dropout": z.PROMPT.DROPOUT,
            "prompt_norm": z.PROMPT.NORM,
            "hidden_dim": z.DECODER.HIDDEN_DIM,
            "num_decoder_layers": z.DECODER.NUM_LAYERS,
            "num_heads": z.DECODER.NUM_HEADS,
            "mlp_ratio": z.DECODER.MLP_RATIO,
            "dropout": z.DECODER.DROPOUT,
            "attn_dropout": z.DECODER.ATTN_DROPOUT,
            "query_self_attn": z.DECODER.QUERY_SELF_ATTN,
            "deep_supervision": z.DECODER.DEEP_SUPERVISION,
            "decoder_init": z.DECODER.INIT,
            "focal_weight": z.LOSS.FOCAL_WEIGHT,
            "dice_weight": z.LOSS.DICE_WEIGHT,
            "focal_alpha": z.LOSS.FOCAL_ALPHA,
            "focal_gamma": z.LOSS.FOCAL_GAMMA,
            "self_train_focal_weight": z.LOSS.SELF_TRAIN_FOCAL_WEIGHT,
            "ignore_as_negative": z.LOSS.IGNORE_AS_NEGATIVE,
            "seen_score_calibration": (z.SELF_TRAIN_SEEN_SCORE_CALIBRATION
                                       if Setting.of(cfg) is Setting.TRANSDUCTIVE
                                       else z.SEEN_SCORE_CALIBRATION),
        }

    # ------------------------------------------------------------------------------- forward
    def mask_logits(self, images: torch.Tensor, text: torch.Tensor,
                    clip: Any) -> list[torch.Tensor]:
        """Class-mask logits ``B x K x h x w`` (patch grid) of every decoder layer.

        Args:
            images: CLIP-normalised ``B x 3 x H x W``.
            text: ``K x D`` L2-normalised text embeddings of the classes to segment.
            clip: the frozen CLIP model (``encode_dense``).
        """
        with stage("clip_encoder"):
            prompts, norm = None, None
            if self.prompts is not None:
                prompts, norm = self.prompts(images.shape[0]), self.prompts.norm
            dense = clip.encode_dense(images, deep_prompts=prompts, final_norm=norm)
        with stage("decoder"):
            patches = dense.patch_embeddings  # B x D x h x w, normalised
            b, _, h, w = patches.shape
            memory = self.input_proj(patches.flatten(2).transpose(1, 2))
            queries = self.descriptor(dense.cls_embedding, text)
            return [m.reshape(b, -1, h, w) for m in self.decoder(queries, memory)]

    def scores(self, images: torch.Tensor, vocab: ClassVocabulary, clip: Any) -> torch.Tensor:
        """``B x K x H x W`` calibrated scores over ``vocab`` (``images``: normalised, padded
        ``B x 3 x H x W``; ``clip``: the shared frozen CLIP model)."""
        return self.calibrated_scores(self.mask_logits(images, vocab.embeddings, clip)[-1],
                                      images.shape[-2:], vocab.is_seen)

    def losses(self, images: torch.Tensor, targets: TrainingTargets,
               clip: Any) -> dict[str, torch.Tensor]:
        """Focal + dice per class of the active vocabulary, or the softmax cross-entropy over it
        (``loss_type``), of the final masks (and of every decoder layer with deep supervision);
        in self-training the unlabelled pixels take the argmax unseen class of this step's own
        detached final masks."""
        masks = self.mask_logits(images, targets.vocab.embeddings, clip)
        # The final masks at the label size, once: for the pseudo-labels and the loss.
        final = resize_scores(masks[-1].float(), targets.size)
        labels = targets.labels(final.detach())
        focal_weight = (self.self_train_focal_weight if targets.self_training
                        else self.focal_weight)

        def layer_losses(logits: torch.Tensor) -> dict[str, torch.Tensor]:
            if self.loss_type == "softmax_ce":
                return softmax_ce_loss(logits, labels, ce_weight=self.ce_weight)
            return mask_losses(logits, labels, focal_weight=focal_weight, **self.loss_args)

        losses = layer_losses(final)
        if self.deep_supervision:
            for i, aux in enumerate(masks[:-1]):
                losses.update({f"{k}_{i}": v for k, v in layer_losses(aux).items()})
        return losses

    def calibrated_scores(self, logits: torch.Tensor, size: tuple[int, int],
                          is_seen: torch.Tensor) -> torch.Tensor:
        """Sigmoid class scores at ``size`` (softmax over the classes with the exclusive loss,
        ``loss_type="softmax_ce"``), ``seen_score_calibration`` subtracted from seen classes
        (the official ``semantic_inference``)."""
        with stage("post_process"):
            scores = resize_scores(logits.float(), size)
            if self.loss_type == "softmax_ce":
                scores = scores.softmax(dim=1)
            else:
                # In place in the upsampled buffer (a new tensor unless no resize was needed).
                scores = scores.sigmoid_() if scores is not logits else scores.sigmoid()
            if self.seen_score_calibration:
                offset = is_seen.to(scores.device, scores.dtype) * self.seen_score_calibration
                scores = scores.sub_(offset.view(1, -1, 1, 1))
            return scores
