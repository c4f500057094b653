"""Defaults every method shares. Keys follow Detectron2's layout; methods add their own
``MODEL.<METHOD>.*`` keys with ``add_<method>_config(cfg)`` in their project package.

Values here are generic; dataset- and method-specific constants (with their sources) live in
``configs/**.yaml``.
"""

from zsseg_bench.config.config import CfgNode as CN

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
# std (0.26862954, 0.26130258, 0.27577711)), times 255 as in ZegCLIP's mmseg configs.
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

# ---------------------------------------------------------------------------------------------
# Zero-shot setting
# ---------------------------------------------------------------------------------------------
_C.ZERO_SHOT = CN()
# inductive: train on seen classes only (unseen pixels ignored, unseen names never seen);
# transductive: unseen pixels are unlabelled and may be pseudo-labelled (self-training).
_C.ZERO_SHOT.SETTING = "inductive"
# When self-training starts (transductive only): a fraction of SOLVER.MAX_ITER if < 1,
# else an iteration. ZegCLIP starts at half the schedule (REFERENCES.md, ZegCLIP recipe).
_C.ZERO_SHOT.SELF_TRAIN_START = 0.5

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
# Training: resize to a random scale of RESIZE.SCALE (long, short) times a ratio in
# RESIZE.RATIO_RANGE (mmseg's Resize(img_scale, ratio_range, keep_ratio=True)).
_C.INPUT.RESIZE = CN()
_C.INPUT.RESIZE.ENABLED = True
_C.INPUT.RESIZE.SCALE = (2048, 512)
_C.INPUT.RESIZE.RATIO_RANGE = (0.5, 2.0)
_C.INPUT.CROP = CN()
_C.INPUT.CROP.ENABLED = True
_C.INPUT.CROP.SIZE = (512, 512)
# Re-draw a crop (up to 10 times) while one class covers more than this fraction of it.
_C.INPUT.CROP.CAT_MAX_RATIO = 0.75
_C.INPUT.FLIP = True
# mmseg's PhotoMetricDistortion (brightness, contrast, saturation, hue).
_C.INPUT.COLOR_AUG = True
# Test: resize so the image fits (long, short) keeping the aspect ratio (mmseg's test Resize).
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
