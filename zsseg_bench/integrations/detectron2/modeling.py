"""The suite's meta-architecture in detectron2's ``META_ARCH_REGISTRY``."""

from __future__ import annotations

from typing import Any

from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling import build_model as d2_build_model
from torch import nn

from zsseg_bench.engine.rng import seed_all
from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor


def register_meta_arch() -> None:
    """Registers ``ZeroShotSegmentor`` in detectron2's registry (once per process)."""
    if ZeroShotSegmentor.__name__ not in META_ARCH_REGISTRY:
        META_ARCH_REGISTRY.register(ZeroShotSegmentor)


def build_model(cfg: Any) -> nn.Module:
    """detectron2's ``build_model`` after seeding every RNG with ``cfg.SEED``, as the suite's
    engine does: the parts a checkpoint of trainable weights does not hold are then initialised
    identically in both engines."""
    seed_all(int(cfg.SEED))
    return d2_build_model(cfg)
