"""Shared set-up of the engine tests: a tiny toy world, a config with the test-only head and a
CLIP that needs no download (the toy CLIP architecture, randomly initialised)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

import tests.contract_head  # noqa: F401  (registers PixelContractHead)
from zsseg_bench.config import get_cfg

#: Dataset-name prefix of the in-process registration of the tiny toy world.
PREFIX = "engine_test"
NUM_TRAIN, NUM_VAL = 8, 4

#: Everything small: 64 px crops, images resized to at most 128 x 64, 2 images per step.
BASE_OPTS = {
    "MODEL.HEAD.NAME": "PixelContractHead",
    "MODEL.CLIP.NAME": "ToyCLIP-ViT-P8",
    "MODEL.CLIP.RANDOM_INIT": True,
    "MODEL.DEVICE": "cpu",
    "SOLVER.IMS_PER_BATCH": 2,
    "SOLVER.BASE_LR": 0.01,
    "SOLVER.MAX_ITER": 8,
    "SOLVER.CHECKPOINT_PERIOD": 4,
    "SOLVER.LOG_PERIOD": 1,
    "INPUT.RESIZE.SCALE": [128, 64],
    "INPUT.CROP.SIZE": [64, 64],
    "INPUT.TEST_SCALE": [128, 64],
    "DATALOADER.NUM_WORKERS": 0,
}


def make_cfg(output_dir: str | Path, datasets_prefix: str = PREFIX, **overrides):
    """A frozen config of the tiny run (``overrides``: KEY with dots replaced by ``__``)."""
    cfg = get_cfg()
    opts = {**BASE_OPTS, "OUTPUT_DIR": str(output_dir),
            "DATASETS.TRAIN": [f"{datasets_prefix}_train"],
            "DATASETS.TEST": [f"{datasets_prefix}_val"],
            **{k.replace("__", "."): v for k, v in overrides.items()}}
    for key, value in opts.items():
        cfg.merge_from_list([key, tuple(value) if isinstance(value, list) else value])
    cfg.freeze()
    return cfg


def write_config(path: Path, **overrides) -> Path:
    """A YAML config of the tiny run on the built-in ``synthetic_*`` names (for the CLI)."""
    tree: dict = {}
    opts = {**BASE_OPTS, **{k.replace("__", "."): v for k, v in overrides.items()}}
    for key, value in opts.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(tree))
    return path


def trainable_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``model`` entry of a checkpoint (loaded the safe way)."""
    return torch.load(path, map_location="cpu", weights_only=True)["model"]
