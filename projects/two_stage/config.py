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
from zsseg_bench.modeling.backbone import add_backbone_config, backbone_choices
from zsseg_bench.modeling.criterion import add_set_criterion_config
from zsseg_bench.modeling.pixel_decoder import add_pixel_decoder_config

#: Where the shared blocks' keys are mounted (``zsseg_bench/modeling/``'s config fragments).
BACKBONE = "MODEL.TWO_STAGE.BACKBONE"
PIXEL_DECODER = "MODEL.TWO_STAGE.PIXEL_DECODER"

#: Fixed choices of the two-stage keys (declared in the table of allowed values).
CHOICES = {
    **backbone_choices(BACKBONE),
    "MODEL.TWO_STAGE.CLIP_ENSEMBLE.CUT": ("zsseg", "grid"),
    "MODEL.TWO_STAGE.MATCHER.RESOLUTION": ("masks", "targets"),
    "MODEL.TWO_STAGE.PROMPT_LEARNER.FOR": ("both", "crops"),
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
    # zsseg's R-101c (MendelXu/zsseg.baseline @ d77c3af, configs/voc-11k-15/zero_shot_maskformer_
    # R101c_bs16_20k.yaml: MODEL.RESNETS.DEPTH 101), detectron2's layout by default; the other
    # keys and their sources: zsseg_bench/modeling/backbone/build.py.
    add_backbone_config(cfg, BACKBONE, depth=101, layouts=("detectron2", "torchvision"))
    # The backbone's learning-rate multiplier (MaskFormer SOLVER.BACKBONE_MULTIPLIER = 0.1, used
    # by zsseg) is set in the configs with SOLVER.LR_MULTIPLIERS [["head.backbone.", 0.1]].

    # ------------------------------------------------------------------ pixel decoder (FPN)
    # MaskFormer's BasePixelDecoder (zsseg_bench/modeling/pixel_decoder.py).
    add_pixel_decoder_config(cfg, PIXEL_DECODER)

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
    # Cosine logits divided by this temperature (zsseg: a fixed 100 x cosine, i.e. 0.01,
    # ClipAdapter.get_sim_logits; equal to OpenAI CLIP's learned logit scale). 0 = 1 / the CLIP
    # model's own learned logit scale.
    ts.DECODER.TEMPERATURE = 0.01

    # ------------------------------------------------------------------ matcher and losses
    # MaskFormer's Hungarian matcher and set criterion: MATCHER.COST_* and LOSS.*
    # (zsseg_bench/modeling/criterion.py, add_set_criterion_config).
    add_set_criterion_config(cfg, "MODEL.TWO_STAGE")
    # Where the matching costs are computed. "masks": at the predicted masks' resolution (1/4 of
    # the padded input), the target masks nearest-downsampled to it (MaskFormer
    # HungarianMatcher.memory_efficient_forward, zsseg mask_former/modeling/matcher.py @ d77c3af).
    # "targets": every predicted mask upsampled to the mask-loss resolution first (the suite's
    # earlier way; the toy config keeps it).
    ts.MATCHER.RESOLUTION = "masks"

    # ------------------------------------------------------------------ CLIP crop classification
    ts.CLIP_ENSEMBLE = CN()
    # zsseg MODEL.CLIP_ADAPTER.CLIP_ENSEMBLE = True. False: query classifier only.
    ts.CLIP_ENSEMBLE.ENABLED = True
    # zsseg CLIP_ENSEMBLE_WEIGHT w: seen p^w c^(1-w), unseen p^(1-w) c^w (0.7 VOC, 0.8 COCO);
    # w = 0: CLIP alone, proposals without a crop left out (zsseg semantic_inference).
    ts.CLIP_ENSEMBLE.WEIGHT = 0.8
    # zsseg MASK_THR = 0.5: a proposal's region is sigmoid(mask) > threshold.
    ts.CLIP_ENSEMBLE.MASK_THRESHOLD = 0.5
    # "masked": bbox crop, pixels outside the mask filled with CLIP's mean (zsseg MASK_FILL "mean",
    # ZegFormer); "bbox": the plain bounding-box crop.
    ts.CLIP_ENSEMBLE.CROP = "masked"
    # How crops are cut. "zsseg": from each image without its batch padding, the mask applied at
    # image resolution, normalised with CLIP's mean/std, each crop resized bicubically
    # (MaskFormerClipAdapter._preprocess_image and crop_with_mask, zsseg mask_former/modeling/
    # clip_adapter/{adapter,utils}.py @ d77c3af). "grid": the suite's earlier crops (the toy
    # config keeps them): cut from the padded batch by bilinear sampling of the image and of the
    # mask, which is re-thresholded (the CLIP layer's encode_crops).
    ts.CLIP_ENSEMBLE.CUT = "zsseg"
    # zsseg MASK_EXPAND_RATIO: the crop box grows by this factor about its centre ("zsseg" cut).
    ts.CLIP_ENSEMBLE.MASK_EXPAND_RATIO = 1.0
    # "batched": all crops of a batch through CLIP at once; "loop": one crop at a time.
    ts.CLIP_ENSEMBLE.MODE = "batched"
    # Crop side fed to CLIP (zsseg REGION_RESIZED, ViT-B/16 input 224). 0 = the CLIP model's own
    # input size (the toy CLIP's is 64).
    ts.CLIP_ENSEMBLE.SIZE = 224
    # False: the crop box is stretched to the square CLIP input (zsseg's F.interpolate of the
    # box to 224 x 224, mask_former/modeling/clip_adapter/adapter.py @ d77c3af; ZegFormer's
    # roi_align). True ("grid" cut only): the box first grows to a square about its centre,
    # keeping the region's aspect ratio (the toy world, whose bars differ from squares by aspect
    # ratio alone).
    ts.CLIP_ENSEMBLE.SQUARE_BOX = False
    # CLIP crop logits = cosine / TEMPERATURE: zsseg multiplies by a fixed 100
    # (ClipAdapter.get_sim_logits, temperature=100, adapter.py @ d77c3af), whatever the CLIP
    # model's learned logit scale (100 for OpenAI's CLIPs). 0 = the CLIP model's learned scale.
    ts.CLIP_ENSEMBLE.TEMPERATURE = 0.01
    # Subtracted from seen-class probabilities after fusion (ZegFormer calibration 0.1; zsseg 0).
    ts.CLIP_ENSEMBLE.SEEN_CALIBRATION = 0.0

    # ------------------------------------------------------------------ learned prompts (zsseg)
    ts.PROMPT_LEARNER = CN()
    # zsseg PROMPT_LEARNER "learnable" (mask_former/modeling/clip_adapter/text_prompt.py,
    # LearnablePromptExtractor; prompt_learner.py): class texts from learned vectors instead of
    # MODEL.CLIP.TEMPLATES. False: the templates (zsseg "predefined" / "vild").
    ts.PROMPT_LEARNER.ENABLED = False
    # zsseg PROMPT_SHAPE (16, 0): learned vectors before / after the class name (their width is
    # CLIP's text width, zsseg PROMPT_DIM 512).
    ts.PROMPT_LEARNER.PREFIX_LENGTH = 16
    ts.PROMPT_LEARNER.SUFFIX_LENGTH = 0
    # zsseg PROMPT_CHECKPOINT: a checkpoint of its prompt-learning stage; its learned prompts are
    # loaded and frozen. Empty: they are trained with the model (zsseg without a checkpoint) or
    # come from MODEL.WEIGHTS (a converted checkpoint).
    ts.PROMPT_LEARNER.WEIGHTS = ""
    # Which texts are learned: "both" (zsseg SEPERATE_ADAPTER False: the query classifier's and
    # the CLIP crops') or "crops" (SEPERATE_ADAPTER True with REGION_CLIP_ADAPTER.PROMPT_LEARNER
    # "learnable": the query classifier keeps MODEL.CLIP.TEMPLATES).
    ts.PROMPT_LEARNER.FOR = "both"

    # ------------------------------------------------------------------ self-training (zsseg+ST)
    ts.SELF_TRAINING = CN()
    # Transductive runs, once the engine starts self-training
    # (ZERO_SHOT.SELF_TRAIN_START_FRACTION): "offline" (zsseg): at the self-training start (the
    # phase schedule tells the head) the head freezes a copy of itself (the inductive model)
    # that labels every later batch. zsseg labels the training set with its
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

    ``BACKBONE.DEPTH`` is checked by the backbone itself (the first module the head builds after
    this check).
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
    e = ts.CLIP_ENSEMBLE
    if e.CUT == "zsseg" and e.SQUARE_BOX:
        raise UserError("MODEL.TWO_STAGE.CLIP_ENSEMBLE.SQUARE_BOX True needs CLIP_ENSEMBLE.CUT "
                        "grid (zsseg's crops stretch the box)")
    if e.MASK_EXPAND_RATIO <= 0 or (e.CUT == "grid" and e.MASK_EXPAND_RATIO != 1.0):
        raise UserError(f"MODEL.TWO_STAGE.CLIP_ENSEMBLE.MASK_EXPAND_RATIO = "
                        f"{e.MASK_EXPAND_RATIO} must be > 0, and 1.0 with CLIP_ENSEMBLE.CUT grid")
