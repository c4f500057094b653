"""Describe why a state dict read from a file does not fit a model (for one clear error)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

__all__ = ["state_dict_mismatch"]


def state_dict_mismatch(loaded: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                        required: Iterable[str] | None = None, n: int = 5) -> str:
    """Return what keeps ``loaded`` (from a file) from loading into ``target`` (a model's
    ``state_dict()``), or ``""`` when it fits.

    Args:
        loaded: the state dict read from the file.
        target: the model's state dict.
        required: the keys the file must provide (default: every key of ``target``; a
            checkpoint of trainable weights only requires those).
        n: how many keys of each kind to name.

    Returns:
        e.g. ``"missing keys 2 (a.weight, a.bias); shape mismatch (file vs model) 1 (b.weight
        (4, 2) vs (8, 2))"``.
    """
    required = target.keys() if required is None else required
    missing = sorted(k for k in required if k not in loaded)
    unexpected = sorted(k for k in loaded if k not in target)
    wrong = sorted(f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in loaded.items()
                   if k in target and v.shape != target[k].shape)
    parts = [f"{what} {len(keys)} ({', '.join(keys[:n])}{', ...' if len(keys) > n else ''})"
             for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                ("shape mismatch (file vs model)", wrong)) if keys]
    return "; ".join(parts)
