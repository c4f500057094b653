"""Defaults every method shares. Keys follow Detectron2's layout; methods add their own
``MODEL.<METHOD>.*`` keys with ``add_<method>_config(cfg)`` in their project package.

Values here are generic; dataset- and method-specific constants (with their sources) live in
``configs/**.yaml``.
"""

from zsseg_bench.config.config import CfgNode as CN
from zsseg_bench.config.setting import Setting

_C = CN()
_C.OUTPUT_DIR = "./output"
# Seed of every RNG (python, numpy, torch, the data sampler). Runs are deterministic on CPU.
_C.SEED = 0
_C.CUDNN_BENCHMARK = False

# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
_C.MODEL = CN()
_C.MODEL.META_ARCHITECTURE = "ZeroShotSegmentor"
# "auto" = cuda when available, else cpu.
_C.MODEL.DEVICE = "auto"
# A checkpoint of a trained model (the trainable parameters the engine saved), for eval/speed.
_C.MODEL.WEIGHTS = ""
# Pixel normalisation in the 0-255 scale. Default: OpenAI CLIP's image mean/std
# (openai/CLIP clip.py `_transform`: mean (0.48145466, 0.4578275, 0.40821073),
# std (0.26862954, 0.26130258, 0.27577711)), times 255. ZegCLIP's mmseg configs use ImageNet's
# mean/std instead; its configs under configs/ set those explicitly.
_C.MODEL.PIXEL_MEAN = [122.7709383, 116.7460125, 104.09373615]
_C.MODEL.PIXEL_STD = [68.5005327, 66.6321579, 70.32316305]
# Images of a batch are padded to a multiple of this (the coarsest stride of the model).
_C.MODEL.SIZE_DIVISIBILITY = 32

_C.MODEL.HEAD = CN()
# A name registered in zsseg_bench.modeling.HEAD_REGISTRY by a project (e.g. "ZegCLIPHead").
_C.MODEL.HEAD.NAME = ""

_C.MODEL.CLIP = CN()
# open_clip model name (e.g. "ViT-B-16"), or the name of a model config shipped with the suite.
_C.MODEL.CLIP.NAME = "ViT-B-16"
# Local weights: an OpenAI .pt (TorchScript or state dict) or an open_clip checkpoint
# (.bin/.pt/.safetensors). Never downloaded. Empty is allowed only with RANDOM_INIT True.
_C.MODEL.CLIP.WEIGHTS = ""
# Random weights, for speed runs only (accuracy is meaningless).
_C.MODEL.CLIP.RANDOM_INIT = False
# Prompt templates for class names: "single", "imagenet_80" or "vild_14".
_C.MODEL.CLIP.TEMPLATES = "single"
# --- CLIP layer keys added by the CLIP worker (zsseg_bench/modeling/clip) ---
# QuickGELU activations, as OpenAI trained its CLIPs (open_clip's "-quickgelu" configs). Set True
# for an OpenAI state dict; forced on automatically for OpenAI TorchScript archives (.pt).
_C.MODEL.CLIP.QUICK_GELU = False
# How the pretrained positional grid is resized to another patch grid: "bicubic" (open_clip's
# resize_pos_embed) or "bilinear" (ZegCLIP, models/backbone/img_encoder.py; set in its configs).
_C.MODEL.CLIP.POS_EMBED_INTERPOLATION = "bicubic"
# Input [CLS] token 2 * class_embedding + pos[0] (ZegCLIP's image encoder, inherited from
# DenseCLIP: models/backbone/img_encoder.py adds class_embedding to the positional term too;
# set in its configs). False = plain CLIP, class_embedding + pos[0].
_C.MODEL.CLIP.DOUBLE_CLS_EMBEDDING = False

# ---------------------------------------------------------------------------------------------
# Zero-shot setting
# ---------------------------------------------------------------------------------------------
_C.ZERO_SHOT = CN()
# inductive: train on seen classes only (unseen pixels ignored, unseen names never seen);
# transductive: unseen pixels are unlabelled and may be pseudo-labelled (self-training);
# fully: every class labelled (the fully supervised upper bound, ZegCLIP's "fully" configs).
_C.ZERO_SHOT.SETTING = Setting.INDUCTIVE.value
# When self-training starts (transductive only), as a fraction of SOLVER.MAX_ITER in [0, 1].
# ZegCLIP starts at half the schedule (ZiqinZhou66/ZegCLIP README.md: ST from the inductive
# run's iter_10000 of 20k).
_C.ZERO_SHOT.SELF_TRAIN_START_FRACTION = 0.5
# ... or as an iteration (>= 0), which then replaces the fraction; -1: use the fraction.
_C.ZERO_SHOT.SELF_TRAIN_START_ITER = -1
# The optimizer and learning-rate schedule at the start of self-training. "restart" (default):
# as the official ZegCLIP recipe, where self-training is a second run loaded from the inductive
# run's checkpoint at the self-training start with a fresh optimizer, warm-up and poly schedule over
# the remaining iterations (ZiqinZhou66/ZegCLIP,
# configs/voc12/vpt_seg_zero_vit-b_512x512_10k_12_10_st.py loads the inductive 20k run's
# iter_10000 checkpoint and trains 10k iterations); here both phases run in one run: the
# optimizer state is cleared and the schedule restarts at the self-training start.
# "continue": one optimizer and one schedule over the whole run.
_C.ZERO_SHOT.SELF_TRAIN_SCHEDULE = "restart"

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
_C.DATASETS = CN()
_C.DATASETS.TRAIN = ("synthetic_train",)
_C.DATASETS.TEST = ("synthetic_val",)

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 2

_C.INPUT = CN()
_C.INPUT.FORMAT = "RGB"
# The augmentation values are mmseg's defaults (mmseg/datasets/pipelines/transforms.py: Resize,
# RandomCrop, RandomFlip, PhotoMetricDistortion), as used by ZegCLIP's configs
# (ZiqinZhou66/ZegCLIP configs/_base_/datasets/voc12_20_512x512.py).
# Training: resize to a random scale of RESIZE.SCALE (long, short) times a ratio in
# RESIZE.RATIO_RANGE (mmseg's Resize(img_scale, ratio_range, keep_ratio=True)).
_C.INPUT.RESIZE = CN()
_C.INPUT.RESIZE.ENABLED = True
_C.INPUT.RESIZE.SCALE = (2048, 512)
_C.INPUT.RESIZE.RATIO_RANGE = (0.5, 2.0)
_C.INPUT.CROP = CN()
_C.INPUT.CROP.ENABLED = True
_C.INPUT.CROP.SIZE = (512, 512)
# Re-draw a crop while one class covers more than this fraction of it, up to MAX_TRIES crops
# (the last draw is kept).
_C.INPUT.CROP.CAT_MAX_RATIO = 0.75
_C.INPUT.CROP.MAX_TRIES = 10
_C.INPUT.FLIP = True
_C.INPUT.FLIP_PROB = 0.5
# mmseg's PhotoMetricDistortion (brightness, contrast, saturation, hue).
_C.INPUT.COLOR_AUG = True
_C.INPUT.PHOTOMETRIC = CN()
_C.INPUT.PHOTOMETRIC.BRIGHTNESS_DELTA = 32  # added to all channels, uniform in [-d, d]
_C.INPUT.PHOTOMETRIC.CONTRAST_RANGE = (0.5, 1.5)  # multiplicative factor
_C.INPUT.PHOTOMETRIC.SATURATION_RANGE = (0.5, 1.5)  # factor on the HSV saturation
_C.INPUT.PHOTOMETRIC.HUE_DELTA = 18  # in OpenCV hue units (0..179), i.e. +-36 degrees
# Test: resize so the image fits (long, short) keeping the aspect ratio (mmseg's test Resize);
# an empty tuple or a zero disables it.
_C.INPUT.TEST_SCALE = (2048, 512)

# ---------------------------------------------------------------------------------------------
# Solver
# ---------------------------------------------------------------------------------------------
_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER = "ADAMW"
_C.SOLVER.IMS_PER_BATCH = 16
_C.SOLVER.BASE_LR = 1e-4
_C.SOLVER.MAX_ITER = 20000
_C.SOLVER.WEIGHT_DECAY = 0.01
_C.SOLVER.BETAS = (0.9, 0.999)
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupPolyLR"
_C.SOLVER.POLY_POWER = 0.9
_C.SOLVER.WARMUP_ITERS = 0
_C.SOLVER.WARMUP_FACTOR = 1e-6
_C.SOLVER.CHECKPOINT_PERIOD = 1000
_C.SOLVER.AMP = CN()
_C.SOLVER.AMP.ENABLED = False
_C.SOLVER.AMP.DTYPE = "bfloat16"

# --- engine (engine worker): optimizer groups, schedule, clipping, accumulation, checkpoints ---
# SGD only (AdamW uses BETAS).
_C.SOLVER.MOMENTUM = 0.9
# Learning-rate multipliers: [[regex, multiplier], ...]; the first regex found (re.search) in a
# trainable parameter's name (e.g. "head.decoder.0.weight") sets its lr to BASE_LR x multiplier.
# ZegCLIP trains prompts and head at 10x the rate (its paramwise lr_mult 10): set in its config.
_C.SOLVER.LR_MULTIPLIERS = []
# Weight decay by kind of parameter (first that applies): normalisation layers, embeddings
# (nn.Embedding and names matching EMBED_PARAM_PATTERNS: prompts, positional embeddings,
# queries), biases; everything else gets SOLVER.WEIGHT_DECAY. Detectron2/Mask2Former and mmseg
# recipes exclude these from decay (0.0).
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
_C.SOLVER.WEIGHT_DECAY_BIAS = 0.0
_C.SOLVER.WEIGHT_DECAY_EMBED = 0.0
_C.SOLVER.EMBED_PARAM_PATTERNS = [
    "prompt", "pos_embed", "positional_embedding", "query_embed", "cls_token", "class_embedding",
]
# End of the poly/cosine decay (mmseg's min_lr); WarmupPolyLR: (lr - MIN_LR)(1 - t/T)^p + MIN_LR.
_C.SOLVER.MIN_LR = 0.0
# Gradient clipping (after unscaling under fp16). CLIP_TYPE: "full_model" = one norm over all
# trainable parameters (mmcv grad_clip, Mask2Former "full_model"); "norm" = per parameter;
# "value" = clamp each gradient element to [-CLIP_VALUE, CLIP_VALUE].
_C.SOLVER.CLIP_GRADIENTS = CN()
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "full_model"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
# Gradient accumulation: one optimizer step per ACCUMULATION_STEPS batches of IMS_PER_BATCH
# images (over all processes), so the effective batch is IMS_PER_BATCH x ACCUMULATION_STEPS.
# MAX_ITER, CHECKPOINT_PERIOD, EVAL_PERIOD and the schedule count optimizer steps.
_C.SOLVER.ACCUMULATION_STEPS = 1
# How many periodic checkpoints (model_XXXXXXX.pth) to keep; model_final.pth is always kept.
_C.SOLVER.MAX_TO_KEEP = 3
# Write training metrics (loss terms, lr, timing) to log.jsonl / TensorBoard every N iterations.
_C.SOLVER.LOG_PERIOD = 20
# Exponential moving average of the trainable weights (d2go's MODEL_EMA; zsseg_bench/engine/ema.py):
# after each optimizer step ema = DECAY * ema + (1 - DECAY) * weights. Every evaluation, the
# checkpoints' "ema" entry and the start of transductive self-training use the average. Off by
# default: no official recipe averages. On in the two-stage toy configs, whose seed spread it
# narrows (projects/two_stage/README.md, "Seed stability").
_C.MODEL_EMA = CN()
_C.MODEL_EMA.ENABLED = False
_C.MODEL_EMA.DECAY = 0.999
# --- end of the engine block -----------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Test
# ---------------------------------------------------------------------------------------------
_C.TEST = CN()
# Evaluate every EVAL_PERIOD iterations (0: only at the end).
_C.TEST.EVAL_PERIOD = 0
# whole: the resized image at once; slide: overlapping CROP windows every STRIDE pixels, averaged.
_C.TEST.MODE = "whole"
_C.TEST.SLIDE = CN()
_C.TEST.SLIDE.CROP = (512, 512)
_C.TEST.SLIDE.STRIDE = (426, 426)
# Which classes a mean IoU runs over: "union" (present in the ground truth or the prediction; a
# class only predicted counts with IoU 0): mmseg's and zsseg's evaluators, which produced the
# published numbers; "gt" (present in the ground truth): detectron2's SemSegEvaluator since
# facebookresearch/detectron2 commit f3c1bc1. See zsseg_bench/evaluation/metrics.py.
_C.TEST.IOU_RULE = "union"
# --- data layer (data worker): images per batch of the test loader (detectron2 uses 1).
_C.TEST.IMS_PER_BATCH = 1
