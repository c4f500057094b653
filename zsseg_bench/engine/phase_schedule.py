"""The training phases of a run and the one hook that switches them.

A transductive run trains supervised (seen classes) until ``ZERO_SHOT.SELF_TRAIN_START_FRACTION``
of ``SOLVER.MAX_ITER`` (or ``ZERO_SHOT.SELF_TRAIN_START_ITER``), then self-trains (unlabelled
pixels pseudo-labelled). Everything that changes at that point is done by
:class:`PhaseScheduleHook`, before the step, in this fixed order:

1. the weight average (``MODEL_EMA``) is loaded into the model, as the official second run
   starts from the weights the inductive run evaluated (at the start iteration only);
2. the optimizer state is cleared (``ZERO_SHOT.SELF_TRAIN_SCHEDULE restart``: a fresh optimizer
   of the official second run; the learning-rate schedule restarts by itself,
   ``WarmupLR(restart_iter=...)``; at the start iteration only);
3. the trainer's ``phase`` (passed to the model with every batch) changes;
4. the model is told, ``model.on_phase_change(phase)``: the meta-architecture tells its head
   (e.g. the two-stage offline teacher takes the weights of 1., the average).

Everything follows the iteration alone, so a resumed run switches at the same point; a run
resumed after the start re-enters the self-training phase (3. and 4.) without 1. and 2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import nn

from zsseg_bench.config.setting import Setting
from zsseg_bench.engine.ema import ModelEMA, load_averaged
from zsseg_bench.engine.train_loop import HookBase
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.utils.errors import UserError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhaseSchedule:
    """When self-training starts (None: never) and whether the optimizer restarts then."""

    self_training_start: int | None = None
    restart: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> PhaseSchedule:
        """The schedule of ``cfg`` (self-training in the transductive setting only)."""
        z = cfg.ZERO_SHOT
        fraction, it = float(z.SELF_TRAIN_START_FRACTION), int(z.SELF_TRAIN_START_ITER)
        if not 0.0 <= fraction <= 1.0:
            raise UserError(f"ZERO_SHOT.SELF_TRAIN_START_FRACTION = {fraction} must be in [0, 1] "
                            "(a fraction of SOLVER.MAX_ITER; an iteration goes to "
                            "ZERO_SHOT.SELF_TRAIN_START_ITER)")
        if it < -1:
            raise UserError(f"ZERO_SHOT.SELF_TRAIN_START_ITER = {it} must be >= 0 (an "
                            "iteration), or -1 to use ZERO_SHOT.SELF_TRAIN_START_FRACTION")
        if Setting.of(cfg) is not Setting.TRANSDUCTIVE:
            return cls()
        start = it if it >= 0 else int(round(fraction * cfg.SOLVER.MAX_ITER))
        return cls(start, restart=z.SELF_TRAIN_SCHEDULE == "restart")

    @property
    def restart_iter(self) -> int | None:
        """The iteration where optimizer and schedule restart, else None."""
        return self.self_training_start if self.restart else None

    def phase_at(self, it: int) -> TrainingPhase:
        """The phase of iteration ``it``."""
        start = self.self_training_start
        return TrainingPhase.SELF_TRAINING if start is not None and it >= start \
            else TrainingPhase.SUPERVISED


def announce_phase(model: nn.Module, phase: TrainingPhase) -> None:
    """Tells ``model`` (unwrapped from DDP) that the training phase is now ``phase``."""
    module = getattr(model, "module", model)
    if hasattr(module, "on_phase_change"):
        module.on_phase_change(phase)


class PhaseScheduleHook(HookBase):
    """Switches the trainer's phase by :class:`PhaseSchedule` (the module docstring gives the
    order of what happens then).

    Args:
        schedule: the phases.
        ema: the weight average the model takes at the self-training start (None: none).
        model: the model told of the change (default: the trainer's).
    """

    def __init__(self, schedule: PhaseSchedule, ema: ModelEMA | None = None,
                 model: nn.Module | None = None):
        self.schedule = schedule
        self.ema = ema
        self.model = model

    def before_step(self) -> None:
        t = self.trainer
        if t.iter == self.schedule.self_training_start:
            if self.ema is not None:
                load_averaged(self.ema.model, self.ema.state)
            if self.schedule.restart:
                t.optimizer.state.clear()
                logger.info("Self-training restarts the optimizer at iteration %d", t.iter)
        phase = self.schedule.phase_at(t.iter)
        if phase is not t.phase:
            t.phase = phase
            announce_phase(self.model if self.model is not None else t.model, phase)
            if phase is TrainingPhase.SELF_TRAINING:
                logger.info("Self-training starts at iteration %d", t.iter)
                t.storage.put_scalars(self_training=1.0)
