"""``MODEL.ZEGCLIP.*``: the config keys of ZegCLIP (Zhou et al., CVPR 2023).

Defaults are the constants of the official PASCAL VOC inductive config
(ZiqinZhou66/ZegCLIP ``configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py``, "VOC config"
below) and of the official code it runs (``models/backbone/img_encoder.py``,
``models/decode_heads/decode_seg.py``, ``models/losses/criterion.py``); each key names its source.
Dataset- and setting-specific values (COCO's 100 prompt tokens, the self-training focal weight,
the transductive calibration) are set in ``configs/<dataset>/zegclip_*.yaml``.
"""

from __future__ import annotations

from typing import Any

from zsseg_bench.config import CfgNode as CN
from zsseg_bench.config.allowed import allow

from .decoder import CLASS_QUERIES, DECODER_INITS
from .losses import LOSS_TYPES
from .prompts import ENCODER_ADAPTATIONS


def add_zegclip_config(cfg: Any) -> None:
    """Adds the ``MODEL.ZEGCLIP.*`` keys to ``cfg`` (in place; a second call is a no-op)."""
    allow("MODEL.ZEGCLIP.DECODER.INIT", DECODER_INITS)
    allow("MODEL.ZEGCLIP.ENCODER_ADAPTATION", ENCODER_ADAPTATIONS)
    allow("MODEL.ZEGCLIP.LOSS.TYPE", LOSS_TYPES)
    allow("MODEL.ZEGCLIP.CLASS_QUERY", CLASS_QUERIES)
    if "ZEGCLIP" in cfg.MODEL:
        return
    cfg.MODEL.ZEGCLIP = CN()
    z = cfg.MODEL.ZEGCLIP

    # --- The paper's three designs as switches (ablation; projects/zegclip/README.md) ----------
    # How the CLIP image encoder is adapted (design 1, "deep prompt tuning", paper Sec. 3.3,
    # against the one-stage baseline's frozen or fine-tuned encoder, Sec. 3.2: "Baseline-Fix" /
    # "Baseline-FT"). "deep_prompts": ZegCLIP (official VPTCLIPVisionTransformer,
    # total_d_layer=11: fresh prompts in all 12 layers; frozen encoder). "shallow_prompts": one
    # set of prompts inserted before the first layer and carried through all layers (official
    # total_d_layer=0, img_encoder.py forward_shallow-path; no prompt_norm there). "frozen": the
    # frozen encoder without prompts (official CLIPVisionTransformer, ft_backbone=False).
    # "finetune": every parameter of the image encoder trains, no prompts (official
    # CLIPVisionTransformer with ft_backbone=True, models/segmentor/zegclip.py; the text encoder
    # stays frozen); its learning rate is SOLVER.LR_MULTIPLIERS' CLIP-visual entry (the official
    # 'backbone' lr_mult 10).
    z.ENCODER_ADAPTATION = "deep_prompts"
    # Class queries of the decoder (design 3, "relationship descriptor", paper Sec. 3.5).
    # "relationship_descriptor": Linear([cls * t_c, t_c]) (decode_seg.py:325-332, always on in
    # the official code). "text": the baseline's query, the class text embedding alone through
    # a Linear(D, D) (the paper's phi_q(T), Sec. 3.2; the official code has no such path).
    z.CLASS_QUERY = "relationship_descriptor"

    # --- Deep prompt tuning of the frozen CLIP ViT (VPT-deep) -------------------------------
    z.PROMPT = CN()
    # Learnable tokens per layer, in every layer of the visual transformer. VOC config:
    # num_tokens=10 with total_d_layer=11 (+ the first layer's prompt = all 12 layers); the
    # COCO config uses 100.
    z.PROMPT.NUM_TOKENS = 10
    # Shared Linear(width, width) applied to every layer's prompts before they enter the ViT
    # (img_encoder.py: prompt_proj, kaiming-normal fan_out init).
    z.PROMPT.PROJECTION = True
    # Dropout on the projected prompts (img_encoder.py: prompt_dropout = Dropout(0.1)).
    z.PROMPT.DROPOUT = 0.1
    # Learnable LayerNorm on the last layer's tokens before CLIP's ln_post (img_encoder.py:
    # prompt_norm = LayerNorm(prompt_dim, eps=1e-6), applied to the final hidden states in
    # forward_deep_prompt; trainable, its name holds the exclude_key 'prompt' of the VOC config).
    z.PROMPT.NORM = True

    # --- Light decoder (decode_seg.py: ATMSingleHeadSeg with TPN_Decoder) ---------------------
    z.DECODER = CN()
    # Width of the decoder. 0 = the CLIP joint embedding size, as the VOC config
    # (embed_dims=in_channels=512, use_proj=False: patch embeddings enter the decoder as they
    # are). Another value adds the official use_proj=True input projection (Linear + LayerNorm).
    z.DECODER.HIDDEN_DIM = 0
    # VOC config: num_layers=3, num_heads=8.
    z.DECODER.NUM_LAYERS = 3
    z.DECODER.NUM_HEADS = 8
    # FFN width = MLP_RATIO x HIDDEN_DIM (decode_seg.py: dim_feedforward=dim * 4 -> 2048).
    z.DECODER.MLP_RATIO = 4
    # Dropout of residual branches and FFN (torch.nn.TransformerDecoderLayer default, 0.1) and
    # of the cross-attention weights (decode_seg.py: Attention(attn_drop=0.1)).
    z.DECODER.DROPOUT = 0.1
    z.DECODER.ATTN_DROPOUT = 0.1
    # Self-attention among class queries before the cross-attention. The official
    # TPN_DecoderLayer inherits nn.TransformerDecoderLayer, so a self-attention block (and
    # norm1) is registered -- and counted in the published 13.8M parameters -- but its forward
    # never calls it. False = the official computation; True = a standard decoder layer.
    z.DECODER.QUERY_SELF_ATTN = False
    # Loss on the masks of every decoder layer. The official head computes all layers' masks
    # but supervises only the last one (_set_aux_loss is never called), so False is faithful.
    z.DECODER.DEEP_SUPERVISION = False
    # How the input projection, relationship descriptor and decoder start. "pytorch": PyTorch's
    # default initialisation of every layer (Linear: Kaiming-uniform weights, uniform biases),
    # as official training leaves them -- ZegCLIP's train.py calls backbone.init_weights() and
    # text_encoder.init_weights() but never the decode head's init_weights. "trunc_normal": that
    # never-called ATMSingleHeadSeg.init_weights (decode_seg.py: truncated-normal std 0.02
    # Linear weights, zero biases). Either way the official use_proj input projection's weight
    # is truncated-normal (decode_seg.py draws it in the constructor).
    z.DECODER.INIT = "pytorch"

    # --- Loss (criterion.py: SegPlusCriterion; VOC config: SegLossPlus) ------------------------
    z.LOSS = CN()
    # Design 2 (paper Sec. 3.4, "non-mutually exclusive loss"). "focal_dice": per-class
    # sigmoid focal + dice, the official SegPlusCriterion (atm_loss.py, criterion.py).
    # "softmax_ce": the one-stage baseline's exclusive loss (paper Sec. 3.2: softmax over the
    # classes and cross-entropy; the official code has no such option), ignored pixels left out;
    # inference then scores with a softmax over the vocabulary instead of sigmoids.
    z.LOSS.TYPE = "focal_dice"
    # Weight of the softmax cross-entropy (LOSS.TYPE softmax_ce). The paper gives none
    # (Sec. 3.2 names the loss only); 1.0 = mmseg's CrossEntropyLoss default loss_weight.
    z.LOSS.CE_WEIGHT = 1.0
    # Per-class sigmoid focal loss (RetinaNet) and dice loss; VOC config: mask_weight=100.0,
    # dice_weight=1.0; criterion.py: alpha=0.25, gamma=2.
    z.LOSS.FOCAL_WEIGHT = 100.0
    z.LOSS.DICE_WEIGHT = 1.0
    z.LOSS.FOCAL_ALPHA = 0.25
    z.LOSS.FOCAL_GAMMA = 2.0
    # Focal weight once self-training has started; -1 = keep FOCAL_WEIGHT. The official
    # transductive configs train the self-training stage with mask_weight=100.0, as the
    # inductive ones: configs/voc12/vpt_seg_zero_vit-b_512x512_10k_12_10_st.py (100.0 since
    # commit f527eb9, 2023-03-24; 20.0 before) and configs/coco/vpt_seg_zero_vit-b_512x512_40k_
    # 12_100_multi_st.py. The transductive configs state it.
    z.LOSS.SELF_TRAIN_FOCAL_WEIGHT = -1.0
    # Ignored pixels (255: void, padding, and unseen pixels in the inductive setting) are
    # negatives for every class, as in the official criterion (its binary targets are all zero
    # there). False excludes them from both losses instead.
    z.LOSS.IGNORE_AS_NEGATIVE = True

    # --- Inference -----------------------------------------------------------------------------
    # Subtracted from the sigmoid scores of seen classes at inference, by ZERO_SHOT.SETTING:
    # inductive models 0.1, self-trained (transductive) models 0.0 (decode_seg.py:
    # semantic_inference(pred, seen_idx, 0.1) unless self_training, then weight 0).
    z.SEEN_SCORE_CALIBRATION = 0.1
    z.SELF_TRAIN_SEEN_SCORE_CALIBRATION = 0.0
