"""The one table of config keys whose value is one of a fixed set of choices.

The core's keys are listed here; a method adds its own keys' choices from its
``add_<method>_config(cfg)`` with :func:`allow`. :func:`~zsseg_bench.config.validate_cfg`
checks every key of the table that a config has (``setup_cfg`` calls it for every command);
code that takes such a value outside a config (e.g. a dataset mapper's ``setting``) checks it
with :func:`check_value`. Nothing else repeats a list of choices.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zsseg_bench.config.setting import Setting
from zsseg_bench.utils.errors import UserError

_ALLOWED: dict[str, tuple[Any, ...]] = {
    # zsseg_bench/config/setting.py
    "ZERO_SHOT.SETTING": tuple(s.value for s in Setting),
    # optimizer and schedule at the start of self-training (zsseg_bench/config/defaults.py)
    "ZERO_SHOT.SELF_TRAIN_SCHEDULE": ("restart", "continue"),
    # zsseg_bench/modeling/inference_modes.py
    "TEST.MODE": ("whole", "slide"),
    # how CLIP's positional grid is resized (zsseg_bench/modeling/clip/model.py)
    "MODEL.CLIP.POS_EMBED_INTERPOLATION": ("bicubic", "bilinear"),
    # mean IoU over classes with a non-empty union (mmseg, zsseg, ZegCLIP) or present in the
    # ground truth (detectron2's SemSegEvaluator since f3c1bc1): zsseg_bench/evaluation/metrics.py
    "TEST.IOU_RULE": ("union", "gt"),
    # names of torch dtypes (torch.bfloat16, torch.float16)
    "SOLVER.AMP.DTYPE": ("bfloat16", "float16"),
    # zsseg_bench/engine/train_loop.py: one norm over all parameters, per parameter, or values
    "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": ("full_model", "norm", "value"),
}


def allow(key: str, choices: Iterable[Any]) -> None:
    """Declares the choices of ``key`` (a method's ``add_<method>_config`` calls this).

    Declaring the same choices again is a no-op (configs are built many times); other choices
    for a declared key are a programming error.
    """
    choices = tuple(choices)
    if _ALLOWED.setdefault(key, choices) != choices:
        raise ValueError(f"{key}: choices {choices} declared, but {_ALLOWED[key]} already are")


def allowed_values(key: str) -> tuple[Any, ...]:
    """The choices of ``key`` (``KeyError`` if it has none)."""
    return _ALLOWED[key]


def check_value(key: str, value: Any) -> Any:
    """Returns ``value`` if it is one of the choices of ``key``, else raises UserError."""
    choices = _ALLOWED[key]
    if value not in choices:
        raise UserError(f"config key {key} = {value!r} is not one of "
                        f"{', '.join(map(str, choices))}")
    return value


def check_allowed_values(cfg: Any) -> None:
    """Checks every key of the table that ``cfg`` has; raises UserError on the first bad one."""
    for key in _ALLOWED:
        node: Any = cfg
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            check_value(key, node)
