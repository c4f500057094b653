"""Modeling: registries, the meta-architecture, the shared CLIP layer and the blocks heads share
(backbone/, pixel_decoder, matcher, criterion, semantic_inference, mlp, ...: projects/README.md)."""

from zsseg_bench.modeling.build import (
    HEAD_REGISTRY,
    META_ARCH_REGISTRY,
    build_head,
    build_model,
)
from zsseg_bench.modeling.vocabulary import ClassVocabulary

__all__ = ["HEAD_REGISTRY", "META_ARCH_REGISTRY", "build_head", "build_model", "ClassVocabulary"]
