"""Exponential moving average of a model's trainable state (d2go's ``ModelEMA``).

With ``MODEL_EMA.ENABLED`` the trainer keeps ``ema = decay * ema + (1 - decay) * current`` of
every floating-point tensor of the trainable state (:func:`~.checkpoint.trainable_state_dict`:
trainable parameters and the buffers of modules that are not entirely frozen, e.g. BatchNorm
statistics) after each optimizer step. Every evaluation of the run (periodic and final) uses
the averaged weights, every checkpoint holds them under ``"ema"`` (so a resumed run continues
the same average), and loading a checkpoint for evaluation
(:func:`~.checkpoint.build_model_with_weights`, ``scripts/train_net.py --eval-only``) takes
them when present, so ``zsseg-bench eval`` scores the weights ``metrics.json`` scored.
Transductive runs start self-training from the averaged weights
(:class:`~zsseg_bench.engine.phase_schedule.PhaseScheduleHook`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from zsseg_bench.engine.train_loop import HookBase

logger = logging.getLogger(__name__)

#: Checkpoint key of the averaged state.
EMA_KEY = "ema"


def _averaged(model: nn.Module) -> dict[str, torch.Tensor]:
    from zsseg_bench.engine.checkpoint import trainable_state_dict

    return {k: v for k, v in trainable_state_dict(model).items() if v.is_floating_point()}


class ModelEMA:
    """The moving average of ``model``'s trainable floating-point state.

    Args:
        model: the model whose state is averaged (its current state is the start).
        decay: weight of the old average at each update, in [0, 1).
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay {decay} must be in [0, 1)")
        self.model = model
        self.decay = float(decay)
        # Which tensors are averaged is fixed here, once (not re-derived at every step).
        self.state = {k: v.detach().clone() for k, v in _averaged(model).items()}

    def _current(self) -> dict[str, torch.Tensor]:
        """The model's own tensors of the averaged names."""
        own = self.model.state_dict()
        return {k: own[k] for k in self.state}

    @torch.no_grad()
    def reset(self) -> None:
        """Restarts the average at the model's current state (e.g. after loading weights)."""
        for k, v in self._current().items():
            self.state[k].copy_(v)

    @torch.no_grad()
    def update(self) -> None:
        """``ema = decay * ema + (1 - decay) * current``, for every averaged tensor."""
        for k, v in self._current().items():
            self.state[k].mul_(self.decay).add_(v.detach(), alpha=1.0 - self.decay)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "state": dict(self.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = set(self.state) - set(state["state"])
        if missing:
            raise KeyError(f"EMA state lacks {len(missing)} tensor(s), e.g. {sorted(missing)[0]}")
        for k in self.state:
            self.state[k].copy_(state["state"][k])

    @contextlib.contextmanager
    def applied(self) -> Iterator[nn.Module]:
        """The model with the averaged state loaded; its own state comes back on exit."""
        saved = {k: v.detach().clone() for k, v in self._current().items()}
        load_averaged(self.model, self.state)
        try:
            yield self.model
        finally:
            load_averaged(self.model, saved)


@torch.no_grad()
def load_averaged(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copies ``state`` (an EMA ``"state"``) into ``model``'s tensors of the same names."""
    own = model.state_dict()
    for k, v in state.items():
        own[k].copy_(v)


def load_checkpoint_average(model: nn.Module, entries: dict[str, Any], source: str) -> bool:
    """Loads the weight average a checkpoint holds (its ``"ema"`` entry, taken out of
    ``entries``, the checkpoint's entries besides the model) into ``model``: a run with
    ``MODEL_EMA`` evaluated the average, so evaluating its checkpoint must too. Returns whether
    there was one; ``source`` names the checkpoint in the log."""
    ema = entries.pop(EMA_KEY, None)
    if ema is None:
        return False
    load_averaged(model, ema["state"])
    logger.info("Loaded the weight average (MODEL_EMA) of %s", source)
    return True


class EMAHook(HookBase):
    """Updates a :class:`ModelEMA` after every optimizer step. (At the self-training start the
    model takes the average: :class:`~zsseg_bench.engine.phase_schedule.PhaseScheduleHook`.)

    Args:
        ema: the average.
    """

    def __init__(self, ema: ModelEMA):
        self.ema = ema

    def after_step(self) -> None:
        self.ema.update()
