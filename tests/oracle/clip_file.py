"""A randomly initialised CLIP saved the way OpenAI distributes its weights (a TorchScript
archive), so that the official code (``torch.jit.load(path).state_dict()``) and the suite
(``MODEL.CLIP.WEIGHTS``) read the very same weights."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


def _module_tree(state: dict[str, torch.Tensor]) -> nn.Module:
    """A tree of plain modules whose ``state_dict()`` is ``state`` (names split at dots)."""
    root = nn.Module()
    for key, value in state.items():
        *path, leaf = key.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_parameter(leaf, nn.Parameter(value.detach().clone(), requires_grad=False))
    return root


def write_torchscript_state_dict(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Saves ``state`` as a TorchScript archive (the container of OpenAI's ``ViT-B-16.pt``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still OpenAI's
        torch.jit.script(_module_tree(state)).save(str(path))
    return path


def write_random_openai_clip(path: Path, name: str = "ViT-B-16", seed: int = 0) -> Path:
    """Writes a randomly initialised open_clip ``name`` (QuickGELU, OpenAI's key names) to
    ``path`` as a TorchScript archive; same ``seed``, same weights."""
    from zsseg_bench.modeling.clip.loading import create_open_clip_model

    torch.manual_seed(seed)
    model = create_open_clip_model(name, quick_gelu=True)
    return write_torchscript_state_dict(model.state_dict(), path)
