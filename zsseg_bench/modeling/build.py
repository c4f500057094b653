"""Registries of meta-architectures and heads, and the builders that look them up."""

from __future__ import annotations

from typing import Any

from fvcore.common.registry import Registry

from zsseg_bench.config import validate_cfg
from zsseg_bench.utils.errors import UserError

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """Meta-architectures (``cfg.MODEL.META_ARCHITECTURE``).

A registered class is called with ``cfg`` and returns an ``nn.Module`` that takes
``batched_inputs`` (a list of dataset dicts) and returns losses in training, per-image
predictions in inference."""

HEAD_REGISTRY = Registry("HEAD")
HEAD_REGISTRY.__doc__ = """Method heads (``cfg.MODEL.HEAD.NAME``), registered by projects.

A head is a :class:`~zsseg_bench.modeling.head.ZeroShotHead`: ``scores(images, vocab, clip)``
gives ``B x K x h x w`` class scores (inference), ``losses(images, targets, clip)`` a dict of
losses against the core's :class:`~zsseg_bench.modeling.training_targets.TrainingTargets`."""


def lookup(registry: Registry, name: str, key: str) -> Any:
    """``registry.get(name)`` with an error that names the config key and the registered choices."""
    if name not in registry:
        choices = ", ".join(sorted(k for k, _ in registry)) or "(none registered)"
        raise UserError(f"{key} = {name!r} is not registered in {registry._name}; choices: "
                        f"{choices}. A method's head is registered when its project is imported "
                        "(the CLI imports every installed project).")
    return registry.get(name)


def build_head(cfg: Any, clip: Any) -> Any:
    """Builds the head named by ``cfg.MODEL.HEAD.NAME``.

    The head's ``from_config(cfg, clip)`` may read the CLIP layer's dimensions (width, number
    of layers, embedding size); the CLIP model itself stays owned by the meta-architecture.
    """
    return lookup(HEAD_REGISTRY, cfg.MODEL.HEAD.NAME, "MODEL.HEAD.NAME")(cfg, clip)


def build_model(cfg: Any) -> Any:
    """Builds the meta-architecture named by ``cfg.MODEL.META_ARCHITECTURE`` on its device.

    ``cfg`` is validated first (:func:`~zsseg_bench.config.validate_cfg`): a model may be built
    from a config that no command has validated (tests, notebooks).
    """
    import zsseg_bench.modeling.meta_arch  # noqa: F401  (registers ZeroShotSegmentor)

    validate_cfg(cfg)

    arch = lookup(META_ARCH_REGISTRY, cfg.MODEL.META_ARCHITECTURE, "MODEL.META_ARCHITECTURE")
    model = arch(cfg)
    return model.to(resolve_device(cfg.MODEL.DEVICE))


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available else ``"cpu"``; a missing CUDA is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"MODEL.DEVICE = {device} but CUDA is not available; use cpu or auto")
    return device
