"""Parameters and peak memory of a model."""

from __future__ import annotations

import resource
import sys
from typing import Any

import torch
from torch import nn


def count_parameters(model: nn.Module) -> dict[str, Any]:
    """Total and learnable (``requires_grad``) parameters, overall and per child module.

    Shared tensors are counted once. ``by_module`` lists the model's direct children, and the
    children of a child named ``clip`` (e.g. ``clip.visual``, ``clip.transformer``), so the
    image tower, text tower and head can be told apart.

    Returns:
        ``{"total": int, "learnable": int, "by_module": {name: {"total", "learnable"}}}``.
    """
    def count(module: nn.Module) -> dict[str, int]:
        params = {id(p): p for p in module.parameters()}.values()
        return {"total": sum(p.numel() for p in params),
                "learnable": sum(p.numel() for p in params if p.requires_grad)}

    by_module: dict[str, dict[str, int]] = {}
    for name, child in model.named_children():
        by_module[name] = count(child)
        if name == "clip":
            for sub, grandchild in child.named_children():
                by_module[f"clip.{sub}"] = count(grandchild)
    return {**count(model), "by_module": by_module}


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
