"""Pieces of the suite's training step and schedule inside detectron2's engine.

detectron2's ``SimpleTrainer`` calls ``model(data)``; the suite's meta-architecture takes the
training phase as well (``model(data, phase=...)``, set by the phase schedule hook)
and its recipes use gradient accumulation, bf16/fp16 autocast and full-model gradient clipping
(``SOLVER.*``). :class:`ZeroShotStepTrainer` is detectron2's ``SimpleTrainer`` with that step;
metrics go through detectron2's ``EventStorage`` (``_write_metrics``) as in detectron2.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from detectron2.engine import HookBase, SimpleTrainer
from torch import nn

from zsseg_bench.engine import phase_schedule
from zsseg_bench.engine.train_loop import clip_gradients, forward_backward
from zsseg_bench.engine.trainer import amp_dtype, check_solver, grad_clip
from zsseg_bench.modeling.training_phase import TrainingPhase


class PhaseScheduleHook(phase_schedule.PhaseScheduleHook, HookBase):
    """The suite's phase schedule (phase, optimizer restart, the model told) as a detectron2
    hook."""


class ZeroShotStepTrainer(SimpleTrainer):
    """detectron2's ``SimpleTrainer`` whose step passes ``phase`` to the model and supports
    gradient accumulation, autocast and gradient clipping (the suite's ``SOLVER`` keys).

    Args:
        model, data_loader, optimizer: as detectron2's ``SimpleTrainer``.
        accumulation_steps: batches per optimizer step.
        amp_dtype: ``torch.bfloat16`` / ``torch.float16`` for autocast, None for fp32.
        grad_clip: ``(clip_type, value, norm_type)`` or None.
    """

    def __init__(self, model: nn.Module, data_loader: Any, optimizer: torch.optim.Optimizer, *,
                 accumulation_steps: int = 1, amp_dtype: torch.dtype | None = None,
                 grad_clip: tuple[str, float, float] | None = None):
        super().__init__(model, data_loader, optimizer)
        self.phase = TrainingPhase.SUPERVISED
        self.accumulation_steps = max(int(accumulation_steps), 1)
        self.amp_dtype = amp_dtype
        self.grad_clip = grad_clip
        self.device_type = next(model.parameters()).device.type
        self.grad_scaler = torch.amp.GradScaler(self.device_type,
                                                enabled=amp_dtype == torch.float16)

    def run_step(self) -> None:
        assert self.model.training, "[ZeroShotStepTrainer] model was changed to eval mode!"
        data_time = 0.0
        totals: dict[str, torch.Tensor] = {}
        self.optimizer.zero_grad(set_to_none=True)
        for micro in range(self.accumulation_steps):
            tic = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time += time.perf_counter() - tic
            loss_dict, _ = forward_backward(
                self.model, data, self.phase, divisor=self.accumulation_steps,
                last=micro == self.accumulation_steps - 1, device_type=self.device_type,
                amp_dtype=self.amp_dtype, grad_scaler=self.grad_scaler)
            for k, v in loss_dict.items():
                totals[k] = totals.get(k, 0.0) + v.detach().float() / self.accumulation_steps
        self.after_backward()
        if self.grad_clip is not None:
            self.grad_scaler.unscale_(self.optimizer)
            clip_gradients([p for g in self.optimizer.param_groups for p in g["params"]],
                           *self.grad_clip)
        self._write_metrics(totals, data_time)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def state_dict(self) -> dict[str, Any]:
        ret = super().state_dict()
        if self.grad_scaler.is_enabled():
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if self.grad_scaler.is_enabled() and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])


def build_step_trainer(cfg: Any, model: nn.Module, data_loader: Any,
                       optimizer: torch.optim.Optimizer) -> ZeroShotStepTrainer:
    """:class:`ZeroShotStepTrainer` configured by ``SOLVER.ACCUMULATION_STEPS``,
    ``SOLVER.AMP.*`` and ``SOLVER.CLIP_GRADIENTS.*`` (checked as the suite's engine does)."""
    check_solver(cfg)
    return ZeroShotStepTrainer(
        model, data_loader, optimizer, accumulation_steps=cfg.SOLVER.ACCUMULATION_STEPS,
        amp_dtype=amp_dtype(cfg), grad_clip=grad_clip(cfg))
