"""Meta-architectures (registered in ``META_ARCH_REGISTRY``)."""

from zsseg_bench.modeling.meta_arch.zero_shot_segmentor import ZeroShotSegmentor

__all__ = ["ZeroShotSegmentor"]
