"""``MODEL.SAN.*``: the config keys of SAN (Side Adapter Network; Xu et al., CVPR 2023).

Defaults are the constants in force for the released ViT-B/16 model of the official code,
MendelXu/SAN @ e19262d1a23992fc2cef934d6756b89ff50fe5c3 ("SAN" below): ``san/config.py``
(``add_san_config``) as overridden by ``configs/san_clip_vit_res4_coco.yaml`` and its
``_BASE_`` ``configs/Base-coco-stuff-164K-171.yaml``; each key names its file and line there.
The ViT-L/14 values (``configs/san_clip_vit_large_res4_coco.yaml``) are set in
``configs/coco_stuff/san_vitl14_640_60k_open_vocabulary.yaml``.

Input keys of the core that SAN sets in its configs (not here): ``MODEL.SIZE_DIVISIBILITY`` 32
(``MODEL.SAN.SIZE_DIVISIBILITY``, san/config.py:51), ``MODEL.PIXEL_MEAN/STD`` = OpenAI CLIP's x
255 (san/model/san.py:123-128: the open_clip preprocess), ``MODEL.CLIP.TEMPLATES`` ``vild_14``
(``MODEL.SAN.CLIP_TEMPLATE_SET`` "vild", san/config.py:44; san/model/clip_utils/utils.py:90-105).
"""

from __future__ import annotations

from typing import Any

from zsseg_bench.config import CfgNode as CN
from zsseg_bench.config.allowed import allow

#: How the attention bias goes from the side grid to CLIP's grid (SAN attn_helper.py:317-327,
#: ``downsample2d``): adaptive max / average pooling or interpolation.
DOWNSAMPLE_METHODS = ("max", "avg", "bilinear", "bicubic", "nearest")


def add_san_config(cfg: Any) -> None:
    """Adds the ``MODEL.SAN.*`` keys to ``cfg`` (in place; a second call is a no-op)."""
    allow("MODEL.SAN.REC_DOWNSAMPLE_METHOD", DOWNSAMPLE_METHODS)
    if "SAN" in cfg.MODEL:
        return
    cfg.MODEL.SAN = CN()
    s = cfg.MODEL.SAN

    # --- CLIP (frozen; one pass split in two) ---------------------------------------------------
    # The CLIP branch sees the padded, normalised input resized by this factor (bilinear,
    # scale_factor semantics): MODEL.SAN.CLIP_RESOLUTION 0.5 (san/config.py:53; ViT-L/14 0.7,
    # san_clip_vit_large_res4_coco.yaml:4), ASYMETRIC_INPUT True (san/config.py:52).
    s.CLIP_RESOLUTION = 0.5
    # CLIP blocks run before the side network reads them; the remaining blocks classify the
    # masks (MODEL.SAN.FEATURE_LAST_LAYER_IDX 9 of 12, san/config.py:45; ViT-L/14 18 of 24).
    s.FEATURE_LAST_LAYER_IDX = 9
    # CLIP's visual positional embedding is trained (MODEL.SAN.CLIP_FROZEN_EXCLUDE
    # ["positional_embedding"], san/config.py:46): the head holds a trainable copy of it.
    s.TRAIN_CLIP_POS_EMBED = True
    # Attention bias from the side grid to the CLIP grid (MODEL.SAN.REC_DOWNSAMPLE_METHOD
    # "max", san/config.py:49): one of DOWNSAMPLE_METHODS.
    s.REC_DOWNSAMPLE_METHOD = "max"
    # Logit of the attention between tokens that must not attend (SOS tokens to each other and
    # to [CLS]; every token to the SOS tokens): -100, not -inf (san/model/clip_utils/visual.py:
    # 236-238).
    s.REC_BLOCKED_LOGIT = -100.0

    # --- Side adapter network (RegionwiseSideAdapterNetwork, side_adapter.py:89-260) -------------
    s.SIDE_ADAPTER = CN()
    a = s.SIDE_ADAPTER
    # The side ViT "vit_w240n6d8_patch16" (san/config.py:59; timm_wrapper.py:67-74): patch 16,
    # width 240, 8 blocks, 6 heads; timm VisionTransformer defaults (mlp_ratio 4, qkv bias,
    # LayerNorm eps 1e-6, exact GELU); no class token, no final norm (side_adapter.py:103-109).
    a.PATCH_SIZE = 16
    a.WIDTH = 240
    a.DEPTH = 8
    a.NUM_HEADS = 6
    a.MLP_RATIO = 4.0
    # Its positional table is for a 640 x 640 input (40 x 40 patches; SIDE_ADAPTER.IMAGE_SIZE
    # 640, san/config.py:61), resized bicubic when the token count differs (side_adapter.py:196).
    a.IMAGE_SIZE = 640
    # Query tokens = mask proposals (SIDE_ADAPTER.NUM_QUERIES 100, san/config.py:63).
    a.NUM_QUERIES = 100
    # "clip_block->side_block": CLIP's output after that many blocks (0 = after ln_pre) is added
    # to the side network's patch tokens after that many side blocks (SIDE_ADAPTER.FUSION_MAP,
    # san/config.py:65; ViT-L/14 ["0->0", "6->1", "12->2", "18->3"]). FUSION_TYPE "add" (the only
    # one): LayerNorm + 1x1 conv at CLIP resolution, bilinear to the side grid (layers.py:50-76).
    a.FUSION_MAP = ["0->0", "3->1", "6->2", "9->3"]
    # Side blocks (1-based) whose outputs are decoded in training (the last one is the final
    # output, the others auxiliary); inference decodes the last (SIDE_ADAPTER.DEEP_SUPERVISION_
    # IDXS [7, 8], san/config.py:66; side_adapter.py:176-187).
    a.DEEP_SUPERVISION_IDXS = [7, 8]

    # --- Mask decoder: mask proposals and attention biases (MLPMaskDecoder, side_adapter.py:29) --
    a.ATTN_BIAS = CN()
    b = a.ATTN_BIAS
    # One bias per CLIP head (12 ViT-B/16, 16 ViT-L/14; san/config.py:69) or 1 (shared), for
    # NUM_LAYERS recognition blocks (1: one bias for all of them; san/config.py:70).
    b.NUM_HEADS = 12
    b.NUM_LAYERS = 1
    # Query / pixel / attention MLPs: 3 layers, 256 wide, 256 out (san/config.py:71-73).
    b.EMBED_CHANNELS = 256
    b.MLP_CHANNELS = 256
    b.MLP_NUM_LAYERS = 3
    # A learnable scalar affine a*x+b on the bias (nn.Linear(1, 1); san/config.py:74).
    b.RESCALE_ATTN_BIAS = True

    # --- Training: Mask2Former's matcher and criterion (modeling/matcher.py, criterion.py) -------
    s.LOSS = CN()
    # Matching costs = loss weights (san/model/san.py:70-85; san/config.py:34-37).
    s.LOSS.CLASS_WEIGHT = 2.0
    s.LOSS.MASK_WEIGHT = 5.0
    s.LOSS.DICE_WEIGHT = 5.0
    # Cross-entropy weight of the no-object class (MODEL.SAN.NO_OBJECT_WEIGHT, san/config.py:34).
    s.LOSS.NO_OBJECT_WEIGHT = 0.1
    # PointRend point sampling of the mask losses: 112 * 112 points, oversampled 3x, 75% of them
    # the most uncertain (san/config.py:38,40,41).
    s.LOSS.NUM_POINTS = 12544
    s.LOSS.OVERSAMPLE_RATIO = 3.0
    s.LOSS.IMPORTANCE_SAMPLE_RATIO = 0.75
