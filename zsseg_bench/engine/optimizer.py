"""The optimizer: AdamW over the trainable parameters, in groups of (lr, weight decay).

Each trainable parameter gets
- a learning rate ``SOLVER.BASE_LR x m``, where ``m`` is the multiplier of the first pattern of
  ``SOLVER.LR_MULTIPLIERS`` (a list of ``[regex, multiplier]``, searched in the parameter's
  name, e.g. ``head.decoder.0.weight``) that matches, else 1;
- a weight decay by kind, the first that applies: normalisation layers
  (``SOLVER.WEIGHT_DECAY_NORM``), embeddings (``nn.Embedding`` weights and names matching
  ``SOLVER.EMBED_PARAM_PATTERNS``: prompts, positional embeddings, queries;
  ``SOLVER.WEIGHT_DECAY_EMBED``), biases (``SOLVER.WEIGHT_DECAY_BIAS``), else
  ``SOLVER.WEIGHT_DECAY``.
Parameters with the same (lr, weight decay) share one group, as in Detectron2's
``reduce_param_groups``; a group keeps the names of its parameters under ``"param_names"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zsseg_bench.utils.errors import UserError

#: Module types whose parameters are normalisation parameters (Detectron2's NORM_MODULE_TYPES).
NORM_MODULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.LocalResponseNorm,
)
_RMS_NORM = getattr(nn, "RMSNorm", None)
if _RMS_NORM is not None:
    NORM_MODULE_TYPES = (*NORM_MODULE_TYPES, _RMS_NORM)


@dataclass(frozen=True)
class ParamSetting:
    """Where one parameter ends up: its name, kind, learning rate and weight decay."""

    name: str
    kind: str  # "norm" | "embed" | "bias" | "default"
    lr: float
    weight_decay: float


def _compile(patterns: Sequence[str], key: str) -> list[re.Pattern]:
    try:
        return [re.compile(p) for p in patterns]
    except re.error as e:
        raise UserError(f"{key}: invalid regular expression ({e})") from e


def _lr_multipliers(cfg: Any) -> list[tuple[re.Pattern, float]]:
    out = []
    for entry in cfg.SOLVER.LR_MULTIPLIERS:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
            raise UserError(f"SOLVER.LR_MULTIPLIERS entries must be [regex, multiplier] pairs, "
                            f"got {entry!r}")
        pattern, mult = entry
        (compiled,) = _compile([str(pattern)], "SOLVER.LR_MULTIPLIERS")
        out.append((compiled, float(mult)))
    return out


def param_settings(cfg: Any, model: nn.Module) -> list[ParamSetting]:
    """The (lr, weight decay) of every trainable parameter of ``model``, in ``named_parameters``
    order. Frozen parameters (``requires_grad=False``) are left out; a parameter shared by two
    modules appears once."""
    multipliers = _lr_multipliers(cfg)
    embed_patterns = _compile(cfg.SOLVER.EMBED_PARAM_PATTERNS, "SOLVER.EMBED_PARAM_PATTERNS")
    base_lr = float(cfg.SOLVER.BASE_LR)
    decay = {
        "norm": float(cfg.SOLVER.WEIGHT_DECAY_NORM),
        "embed": float(cfg.SOLVER.WEIGHT_DECAY_EMBED),
        "bias": float(cfg.SOLVER.WEIGHT_DECAY_BIAS),
        "default": float(cfg.SOLVER.WEIGHT_DECAY),
    }
    seen: set[int] = set()
    settings = []
    for module_name, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            name = f"{module_name}.{pname}" if module_name else pname
            if isinstance(module, NORM_MODULE_TYPES):
                kind = "norm"
            elif isinstance(module, nn.Embedding) or any(p.search(name) for p in embed_patterns):
                kind = "embed"
            elif pname == "bias":
                kind = "bias"
            else:
                kind = "default"
            mult = next((m for p, m in multipliers if p.search(name)), 1.0)
            settings.append(ParamSetting(name, kind, base_lr * mult, decay[kind]))
    return settings


def get_param_groups(cfg: Any, model: nn.Module) -> list[dict[str, Any]]:
    """Optimizer parameter groups, one per distinct (lr, weight decay), in first-seen order."""
    params = dict(model.named_parameters(remove_duplicate=False))
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    for s in param_settings(cfg, model):
        group = groups.setdefault((s.lr, s.weight_decay), {
            "params": [], "param_names": [], "lr": s.lr, "weight_decay": s.weight_decay})
        group["params"].append(params[s.name])
        group["param_names"].append(s.name)
    if not groups:
        raise UserError("the model has no trainable parameters: check that the head "
                        f"({cfg.MODEL.HEAD.NAME}) is built with requires_grad=True parameters")
    return list(groups.values())


def build_optimizer(cfg: Any, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW (``SOLVER.OPTIMIZER``) over :func:`get_param_groups` of ``model``."""
    name = str(cfg.SOLVER.OPTIMIZER).upper()
    groups = get_param_groups(cfg, model)
    if name == "ADAMW":
        return torch.optim.AdamW(groups, lr=float(cfg.SOLVER.BASE_LR),
                                 betas=tuple(cfg.SOLVER.BETAS),
                                 weight_decay=float(cfg.SOLVER.WEIGHT_DECAY))
    if name == "SGD":
        return torch.optim.SGD(groups, lr=float(cfg.SOLVER.BASE_LR),
                               momentum=float(cfg.SOLVER.MOMENTUM),
                               weight_decay=float(cfg.SOLVER.WEIGHT_DECAY))
    raise UserError(f"SOLVER.OPTIMIZER = {cfg.SOLVER.OPTIMIZER!r} is not supported; "
                    "choices: ADAMW, SGD")
