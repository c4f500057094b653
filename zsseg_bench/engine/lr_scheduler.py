"""Per-iteration learning-rate schedules with linear warm-up (mmseg's ``poly`` policy).

For iteration ``t`` of ``T`` (``SOLVER.MAX_ITER``) a group with base rate ``lr0`` gets::

    poly:    (lr0 - min_lr) * (1 - t / T) ** power + min_lr        (mmseg PolyLrUpdaterHook)
    cosine:  min_lr + (lr0 - min_lr) * (1 + cos(pi * t / T)) / 2
    warm-up: times  f + (1 - f) * t / W   while t < W               (f = SOLVER.WARMUP_FACTOR,
                                                                    W = SOLVER.WARMUP_ITERS)

which is mmseg's linear warm-up (``warmup_ratio`` = f) applied to the regular rate.
The scheduler is stepped once per optimizer step, after it.

With ``restart_iter`` = R (transductive self-training restarted, ``ZERO_SHOT.SELF_TRAIN_SCHEDULE
restart``), iterations ``t >= R`` follow a second schedule of the same shape over ``T - R``
iterations, warm-up included, at ``t - R`` (the official two-run recipe in one run).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from zsseg_bench.utils.errors import UserError

SCHEDULES = ("WarmupPolyLR", "WarmupCosineLR", "WarmupConstantLR")


class WarmupLR(LRScheduler):
    """``poly`` / ``cosine`` / ``constant`` decay over ``max_iter`` with linear warm-up."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, max_iter: int,
                 schedule: str = "poly", power: float = 0.9, min_lr: float = 0.0,
                 warmup_iters: int = 0, warmup_factor: float = 1e-6,
                 restart_iter: int | None = None, last_epoch: int = -1):
        if schedule not in ("poly", "cosine", "constant"):
            raise ValueError(f"unknown schedule {schedule}")
        self.max_iter = int(max_iter)
        self.schedule = schedule
        self.power = float(power)
        self.min_lr = float(min_lr)
        self.warmup_iters = int(warmup_iters)
        self.warmup_factor = float(warmup_factor)
        self.restart_iter = None if restart_iter is None else int(restart_iter)
        super().__init__(optimizer, last_epoch)

    def factor_at(self, it: int) -> float:
        """The warm-up factor at iteration ``it`` (1 after warm-up)."""
        if it >= self.warmup_iters:
            return 1.0
        return self.warmup_factor + (1.0 - self.warmup_factor) * it / self.warmup_iters

    def lr_at(self, base_lr: float, it: int) -> float:
        """The learning rate of a group with base rate ``base_lr`` at iteration ``it``."""
        max_iter = self.max_iter
        if self.restart_iter is not None and it >= self.restart_iter:
            it, max_iter = it - self.restart_iter, max_iter - self.restart_iter
        progress = min(max(it, 0), max_iter) / max(max_iter, 1)
        if self.schedule == "poly":
            lr = (base_lr - self.min_lr) * (1.0 - progress) ** self.power + self.min_lr
        elif self.schedule == "cosine":
            lr = self.min_lr + (base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2
        else:
            lr = base_lr
        return lr * self.factor_at(it)

    def state_dict(self) -> dict[str, Any]:
        """The progress only (iteration, base rates): the shape of the schedule comes from the
        config, so a resumed run may change ``SOLVER.MAX_ITER`` (Detectron2's LRMultiplier)."""
        return {"base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch,
                "_step_count": self._step_count, "_last_lr": list(self._last_lr)}

    def get_lr(self) -> list[float]:  # noqa: D102
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()


def build_lr_scheduler(cfg: Any, optimizer: torch.optim.Optimizer,
                       restart_iter: int | None = None) -> WarmupLR:
    """The schedule named by ``SOLVER.LR_SCHEDULER_NAME``, restarted at ``restart_iter`` if
    given."""
    name = cfg.SOLVER.LR_SCHEDULER_NAME
    if name not in SCHEDULES:
        raise UserError(f"SOLVER.LR_SCHEDULER_NAME = {name!r}; choices: {', '.join(SCHEDULES)}")
    schedule = {"WarmupPolyLR": "poly", "WarmupCosineLR": "cosine",
                "WarmupConstantLR": "constant"}[name]
    return WarmupLR(optimizer, max_iter=cfg.SOLVER.MAX_ITER, schedule=schedule,
                    power=cfg.SOLVER.POLY_POWER, min_lr=cfg.SOLVER.MIN_LR,
                    warmup_iters=cfg.SOLVER.WARMUP_ITERS,
                    warmup_factor=cfg.SOLVER.WARMUP_FACTOR, restart_iter=restart_iter)
