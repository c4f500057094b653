"""``add_two_stage_config``: the ``MODEL.TWO_STAGE.*`` keys of the two-stage baseline.

Defaults are the reference constants of zsseg (MendelXu/zsseg.baseline, configs/voc-11k-15 and
coco-stuff-164k-156, on top of MaskFormer's configs, facebookresearch/MaskFormer
configs/ade20k-150/maskformer_R50_bs16_160k.yaml and mask_former/config.py), each with its source.
Dataset-specific values (ensemble weight, schedule) live in ``configs/<dataset>/two_stage.yaml``.
"""

from __future__ import annotations

from typing import Any

from zsseg_bench.config.allowed import allow
from zsseg_bench.config.config import CfgNode as CN

#: Fixed choices of the two-stage keys (declared in the table of allowed values).
CHOICES = {
    "MODEL.TWO_STAGE.BACKBONE.NORM": ("BN", "FrozenBN"),
    "MODEL.TWO_STAGE.CLIP_ENSEMBLE.CROP": ("bbox", "masked"),
    "MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE": ("batched", "loop"),
    "MODEL.TWO_STAGE.SELF_TRAINING.RECIPE": ("offline", "online"),
}


def add_two_stage_config(cfg: Any) -> None:
    """Adds the ``MODEL.TWO_STAGE.*`` keys (with their reference defaults) to ``cfg`` in place."""
    for key, choices in CHOICES.items():
        allow(key, choices)
    if "TWO_STAGE" in cfg.MODEL:
        return
    cfg.MODEL.TWO_STAGE = CN()
    ts = cfg.MODEL.TWO_STAGE

    # ------------------------------------------------------------------ proposal backbone
    ts.BACKBONE = CN()
    # torchvision ResNet depth: 18, 34, 50 or 101. zsseg uses R-101c (DeepLab stem, detectron2
    # "build_resnet_deeplab_backbone"); we use torchvision's standard-stem R-101 (README.md).
    ts.BACKBONE.DEPTH = 101
    # Channels of the stem and of the first stage's blocks; 64 = torchvision's ResNet. A smaller
    # value gives a width-reduced ResNet (toy world only; no pretrained weights exist for it).
    ts.BACKBONE.WIDTH = 64
    # Local torchvision state dict (e.g. resnet101 ImageNet weights). Never downloaded.
    ts.BACKBONE.WEIGHTS = ""
    # Random init (speed runs, or the toy world where no ImageNet weights exist). An empty
    # WEIGHTS is an error unless this is True.
    ts.BACKBONE.RANDOM_INIT = False
    # "BN" (trainable BatchNorm) or "FrozenBN" (detectron2's default for pretrained backbones).
    ts.BACKBONE.NORM = "BN"
    # Images reach the head CLIP-normalised (MODEL.PIXEL_MEAN/STD). With RENORMALIZE the backbone
    # re-normalises them with its own mean/std below (ImageNet weights expect torchvision's).
    ts.BACKBONE.RENORMALIZE = False
    # torchvision ImageNet normalisation (torchvision.models ResNet weights transforms), 0-255.
    ts.BACKBONE.PIXEL_MEAN = [123.675, 116.28, 103.53]
    ts.BACKBONE.PIXEL_STD = [58.395, 57.12, 57.375]
    # The backbone's learning-rate multiplier (MaskFormer SOLVER.BACKBONE_MULTIPLIER = 0.1, used
    # by zsseg) is set in the configs with SOLVER.LR_MULTIPLIERS [["head.backbone.", 0.1]].

    # ------------------------------------------------------------------ pixel decoder (FPN)
    ts.PIXEL_DECODER = CN()
    # MaskFormer SEM_SEG_HEAD.CONVS_DIM = 256, MASK_DIM = 256 (BasePixelDecoder).
    ts.PIXEL_DECODER.CONV_DIM = 256
    ts.PIXEL_DECODER.MASK_DIM = 256
    # GroupNorm groups of the FPN convs (MaskFormer SEM_SEG_HEAD.NORM = "GN", detectron2 32 groups).
    ts.PIXEL_DECODER.NORM_GROUPS = 32

    # ------------------------------------------------------------------ transformer decoder
    ts.DECODER = CN()
    # MaskFormer MASK_FORMER.{NUM_OBJECT_QUERIES=100, HIDDEN_DIM=256, NHEADS=8,
    # DIM_FEEDFORWARD=2048, DEC_LAYERS=6, DROPOUT=0.1, PRE_NORM=False, DEEP_SUPERVISION=True}.
    ts.DECODER.NUM_QUERIES = 100
    ts.DECODER.HIDDEN_DIM = 256
    ts.DECODER.NHEADS = 8
    ts.DECODER.DIM_FEEDFORWARD = 2048
    ts.DECODER.LAYERS = 6
    ts.DECODER.DROPOUT = 0.1
    ts.DECODER.PRE_NORM = False
    ts.DECODER.DEEP_SUPERVISION = True
    # A registered query decoder (transformer_decoder.QUERY_DECODER_REGISTRY).
    # "MaskFormerDecoder" (zsseg, ZegFormer): DETR decoder (self -> cross -> FFN) over the
    # backbone's res5. "Mask2FormerDecoder": masked cross-attention (cross -> self -> FFN)
    # round-robin over three pixel-decoder scales, predictions also from the initial queries.
    ts.DECODER.NAME = "MaskFormerDecoder"
    # Query classifier: MLP hidden_dim -> EMBED_HIDDEN_DIM -> CLIP embed_dim (zsseg
    # ZeroShotTransformerPredictor: EMBED_LAYERS = 2, EMBED_HIDDEN_DIM = 1024).
    ts.DECODER.EMBED_LAYERS = 2
    ts.DECODER.EMBED_HIDDEN_DIM = 1024
    # Cosine logits divided by this temperature (zsseg: 100 x cosine, i.e. 0.01, OpenAI CLIP's
    # learned logit scale). 0 = 1 / the CLIP model's own learned logit scale.
    ts.DECODER.TEMPERATURE = 0.01

    # ------------------------------------------------------------------ Hungarian matcher
    ts.MATCHER = CN()
    # MaskFormer HungarianMatcher(cost_class=1, cost_mask=MASK_WEIGHT=20, cost_dice=DICE_WEIGHT=1).
    ts.MATCHER.COST_CLASS = 1.0
    ts.MATCHER.COST_MASK = 20.0
    ts.MATCHER.COST_DICE = 1.0

    # ------------------------------------------------------------------ losses
    ts.LOSS = CN()
    # MaskFormer: CE weight 1 with NO_OBJECT_WEIGHT 0.1, sigmoid focal x20 (alpha 0.25, gamma 2,
    # Detectron2's sigmoid_focal_loss defaults), dice x1.
    ts.LOSS.CLASS_WEIGHT = 1.0
    ts.LOSS.MASK_WEIGHT = 20.0
    ts.LOSS.DICE_WEIGHT = 1.0
    ts.LOSS.NO_OBJECT_WEIGHT = 0.1
    ts.LOSS.FOCAL_ALPHA = 0.25
    ts.LOSS.FOCAL_GAMMA = 2.0
    # Mask losses compare masks at input resolution / TARGET_STRIDE (MaskFormer: 1, predictions
    # upsampled to the target size). A larger stride saves time on CPU.
    ts.LOSS.TARGET_STRIDE = 1
    # MaskFormer counts ignore pixels as negatives of every target mask (False). True leaves
    # them out of the mask losses and the mask costs.
    ts.LOSS.MASK_IGNORE_PIXELS = False

    # ------------------------------------------------------------------ CLIP crop classification
    ts.CLIP_ENSEMBLE = CN()
    # zsseg MODEL.CLIP_ADAPTER.CLIP_ENSEMBLE = True. False: query classifier only.
    ts.CLIP_ENSEMBLE.ENABLED = True
    # zsseg CLIP_ENSEMBLE_WEIGHT w: seen p^w c^(1-w), unseen p^(1-w) c^w (0.7 VOC, 0.8 COCO).
    ts.CLIP_ENSEMBLE.WEIGHT = 0.8
    # zsseg MASK_THR = 0.5: a proposal's region is sigmoid(mask) > threshold.
    ts.CLIP_ENSEMBLE.MASK_THRESHOLD = 0.5
    # "masked": bbox crop, pixels outside the mask filled with CLIP's mean (zsseg MASK_FILL "mean",
    # ZegFormer); "bbox": the plain bounding-box crop.
    ts.CLIP_ENSEMBLE.CROP = "masked"
    # "batched": all crops of a batch through CLIP at once; "loop": one crop at a time.
    ts.CLIP_ENSEMBLE.MODE = "batched"
    # Crop side fed to CLIP (zsseg REGION_RESIZED, ViT-B/16 input 224). 0 = the CLIP model's own
    # input size (the toy CLIP's is 64).
    ts.CLIP_ENSEMBLE.SIZE = 224
    # False: the crop box is stretched to the square CLIP input (zsseg's F.interpolate of the
    # box to 224 x 224, mask_former/modeling/clip_adapter/adapter.py @ d77c3af; ZegFormer's
    # roi_align). True: the box first grows to a square about its centre, keeping the region's
    # aspect ratio (the toy world, whose bars differ from squares by aspect ratio alone).
    ts.CLIP_ENSEMBLE.SQUARE_BOX = False
    # CLIP crop logits = cosine / TEMPERATURE; 0 = the CLIP model's learned logit scale
    # (OpenAI CLIP: 100, what zsseg's normalize=True path uses).
    ts.CLIP_ENSEMBLE.TEMPERATURE = 0.0
    # Subtracted from seen-class probabilities after fusion (ZegFormer calibration 0.1; zsseg 0).
    ts.CLIP_ENSEMBLE.SEEN_CALIBRATION = 0.0

    # ------------------------------------------------------------------ self-training (zsseg+ST)
    ts.SELF_TRAINING = CN()
    # Transductive runs, once the engine starts self-training (ZERO_SHOT.SELF_TRAIN_START):
    # "offline" (zsseg): at the first self-training step the head freezes a copy of itself (the
    # inductive model) that labels every later batch. zsseg labels the training set with its
    # trained inductive model (MendelXu/zsseg.baseline @ d77c3af, train_net.py with PSEUDO True
    # -> mask_former/evaluation/pseudo_sem_seg_evaluation.py) and retrains on those labels.
    # "online" (our earlier recipe): this step's own (detached) prediction labels the batch.
    ts.SELF_TRAINING.RECIPE = "offline"
    # Unlabelled pixels take the arg-max unseen class of the fused scores (query classifier +
    # CLIP crops) normalised over the vocabulary, unless that score is below the threshold
    # (then ignored). zsseg PSEUDO_REJECT_THRESHOLD = 0.0 (mask_former/config.py): every pixel
    # is labelled. The online recipe was run with 0.5 (README.md, "Self-training").
    ts.SELF_TRAINING.SCORE_THRESHOLD = 0.0
    # Use the CLIP crop ensemble for pseudo-labels (zsseg labels with its full inference, the
    # CLIP ensemble included; False: query classifier only, cheaper).
    ts.SELF_TRAINING.USE_CLIP = True


def check_two_stage_cfg(cfg: Any) -> None:
    """Raises :class:`~zsseg_bench.utils.errors.UserError` for a two-stage key outside its choices
    (``CHOICES``, checked by the config validation) or its range.

    ``BACKBONE.DEPTH`` is checked by :class:`~.backbone.ResNetBackbone` itself (the first module
    the head builds after this check, with the same message).
    """
    from zsseg_bench.config import validate_cfg
    from zsseg_bench.utils.errors import UserError

    validate_cfg(cfg)  # the CHOICES, for a head built from a config no command validated
    ts = cfg.MODEL.TWO_STAGE
    w = ts.CLIP_ENSEMBLE.WEIGHT
    if not 0.0 <= w <= 1.0:
        raise UserError(f"MODEL.TWO_STAGE.CLIP_ENSEMBLE.WEIGHT = {w} must lie in [0, 1]")
    for key in ("DECODER.TEMPERATURE", "CLIP_ENSEMBLE.TEMPERATURE"):
        section, name = key.split(".")
        if ts[section][name] < 0:
            raise UserError(f"MODEL.TWO_STAGE.{key} = {ts[section][name]} must be > 0 (or 0: "
                            f"the CLIP model's learned logit scale)")
