"""Parameters and peak memory of a model."""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def count_parameters(model: nn.Module) -> dict[str, Any]:
    """Total and learnable (``requires_grad``) parameters, overall and per part.

    Shared tensors are counted once. ``by_module`` lists the model's direct children and, for a
    child ``clip`` with a ``visual`` tower, ``clip.visual`` (the image encoder, what inference
    runs) and ``clip.non_visual`` (text tower, token embedding, logit scale: unused at
    inference once text embeddings are cached).

    Returns:
        ``{"total": int, "learnable": int, "by_module": {name: {"total", "learnable"}}}``.
    """
    def count(params: Iterable[nn.Parameter]) -> dict[str, int]:
        unique = {id(p): p for p in params}.values()
        return {"total": sum(p.numel() for p in unique),
                "learnable": sum(p.numel() for p in unique if p.requires_grad)}

    by_module: dict[str, dict[str, int]] = {}
    for name, child in model.named_children():
        by_module[name] = count(child.parameters())
        visual = getattr(child, "visual", None) if name == "clip" else None
        if isinstance(visual, nn.Module):
            visual_ids = {id(p) for p in visual.parameters()}
            by_module["clip.visual"] = count(visual.parameters())
            by_module["clip.non_visual"] = count(
                p for p in child.parameters() if id(p) not in visual_ids)
    return {**count(model.parameters()), "by_module": by_module}


def reset_peak_memory(device: torch.device | str) -> None:
    """Starts a new peak-memory window on CUDA (the CPU peak cannot be reset)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device | str) -> tuple[float, str]:
    """The peak memory and its kind.

    Returns:
        ``(MiB, "cuda_max_allocated")`` on CUDA: the most memory tensors held since the last
        :func:`reset_peak_memory`; ``(MiB, "cpu_rss")`` on CPU: the peak resident set size of
        the process so far (``getrusage``), which includes building the model and every
        earlier allocation of the process.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (2**20 if sys.platform == "darwin" else 2**10), "cpu_rss"
