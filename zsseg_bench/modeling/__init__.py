"""Modeling: registries, the meta-architecture and the shared CLIP layer."""

from zsseg_bench.modeling.build import (
    HEAD_REGISTRY,
    META_ARCH_REGISTRY,
    build_head,
    build_model,
)
from zsseg_bench.modeling.vocabulary import ClassVocabulary

__all__ = ["HEAD_REGISTRY", "META_ARCH_REGISTRY", "build_head", "build_model", "ClassVocabulary"]
