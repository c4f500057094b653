"""The iteration loop (Detectron2's ``TrainerBase``/``SimpleTrainer``/``AMPTrainer``) and hooks.

:class:`TrainerBase` runs ``before_train``, then ``before_step / run_step / after_step`` per
iteration, then ``after_train`` on every registered :class:`HookBase`. :class:`SimpleTrainer`'s
``run_step`` is one optimizer step: ``accumulation_steps`` forward/backward passes (mixed
precision optional, DDP gradient sync only on the last), a check that every loss term is
finite, gradient clipping, the optimizer step and the learning-rate schedule.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zsseg_bench.engine.errors import NonFiniteLossError, TrainingStopped, out_of_memory_error
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.utils import comm

logger = logging.getLogger(__name__)


class HookBase:
    """A hook of the training loop. ``self.trainer`` is set (weakly) when registered."""

    trainer: TrainerBase

    def before_train(self) -> None:
        """Called once before the first iteration."""

    def after_train(self) -> None:
        """Called once after the loop, also when it stopped on an error."""

    def before_step(self) -> None:
        """Called before each iteration."""

    def after_step(self) -> None:
        """Called after each iteration."""


class MetricsStorage:
    """Scalars of the current iteration plus a short history per name (for smoothing)."""

    def __init__(self, window: int = 20):
        self._latest: dict[str, float] = {}
        self._history: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))

    def put_scalars(self, **scalars: float) -> None:
        """Records scalars of the current iteration."""
        for k, v in scalars.items():
            v = float(v)
            self._latest[k] = v
            self._history[k].append(v)

    def latest(self) -> dict[str, float]:
        """The scalars recorded for the current iteration."""
        return dict(self._latest)

    def median(self, name: str) -> float:
        """Median of ``name`` over the window (NaN if never recorded)."""
        values = sorted(self._history.get(name, ()))
        return values[len(values) // 2] if values else math.nan

    def new_iteration(self) -> None:
        """Starts an iteration (clears the latest values)."""
        self._latest = {}


class TrainerBase:
    """A loop over iterations ``[start_iter, max_iter)`` calling hooks.

    Attributes:
        iter: the current iteration (0-based); after the loop, the number completed.
        phase: the training phase passed to the model with every batch (hooks change it).
        start_iter, max_iter: the range of this session.
        stop_requested: set (e.g. by a signal handler) to stop after the current iteration.
        stop_signal: the signal that asked to stop (None: no signal).
        interruptible: whether a stop signal may interrupt what runs now (an evaluation;
            :func:`zsseg_bench.engine.signals.interruptible`).
    """

    def __init__(self) -> None:
        self._hooks: list[HookBase] = []
        self.iter = 0
        self.start_iter = 0
        self.max_iter = 0
        self.stop_requested = False
        self.stop_signal: int | None = None
        self.interruptible = False
        self.phase = TrainingPhase.SUPERVISED
        self.storage = MetricsStorage()

    def register_hooks(self, hooks: Sequence[HookBase | None]) -> None:
        """Adds hooks, in calling order (None entries are skipped)."""
        for h in hooks:
            if h is None:
                continue
            h.trainer = weakref.proxy(self)
            self._hooks.append(h)

    def train(self, start_iter: int, max_iter: int) -> None:
        """Runs iterations ``start_iter .. max_iter - 1``.

        Raises:
            TrainingStopped: a stop was requested (a signal); the hooks saved what they could.
            NonFiniteLossError: a loss term became NaN/inf (nothing is saved).
        """
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        logger.info("Starting training from iteration %d to %d", start_iter, max_iter)
        try:
            self.before_train()
            for self.iter in range(start_iter, max_iter):
                self.storage.new_iteration()
                self.before_step()
                self.run_step()
                self.after_step()
                if self._should_stop():
                    self.on_stop()
                    raise TrainingStopped(self.iter, signum=self.stop_signal)
            self.iter = max_iter
        finally:
            self.after_train()

    def _should_stop(self) -> bool:
        flag = torch.tensor([1.0 if self.stop_requested else 0.0])
        return bool(comm.all_reduce_max(flag).item() > 0)

    def on_stop(self) -> None:
        """Called when a stop was requested, after the iteration completed (save state here)."""

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        for h in self._hooks:
            h.before_step()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError


def _infinite(loader: Iterable) -> Iterator:
    while True:
        yield from loader


def clip_gradients(params: Sequence[torch.Tensor], clip_type: str, value: float,
                   norm_type: float = 2.0) -> torch.Tensor | None:
    """Clips gradients in place: ``"full_model"`` (one norm over all), ``"norm"`` (per
    parameter) or ``"value"``. Returns the total gradient norm for ``"full_model"``."""
    params = [p for p in params if p.grad is not None]
    if clip_type == "full_model":
        return torch.nn.utils.clip_grad_norm_(params, value, norm_type=norm_type)
    if clip_type == "norm":
        for p in params:
            torch.nn.utils.clip_grad_norm_([p], value, norm_type=norm_type)
        return None
    if clip_type == "value":
        torch.nn.utils.clip_grad_value_(params, value)
        return None
    raise ValueError(f"unknown gradient clipping type {clip_type}")


def forward_backward(model: nn.Module, data: Any, phase: TrainingPhase, *, divisor: int,
                     last: bool, device_type: str, amp_dtype: torch.dtype | None,
                     grad_scaler: torch.amp.GradScaler,
                     check: Callable[[dict[str, torch.Tensor]], Any] | None = None,
                     ) -> tuple[dict[str, torch.Tensor], Any]:
    """One batch of an optimizer step over ``divisor`` batches: the forward pass under autocast
    (``amp_dtype``; None = fp32), ``check(loss_dict)`` if given, then the backward pass of the
    loss terms' sum / ``divisor`` through ``grad_scaler``. A DDP model synchronises gradients
    only on the ``last`` batch. Returns the loss dict and what ``check`` returned."""
    sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
    with sync:
        with torch.autocast(device_type, dtype=amp_dtype or torch.float32,
                            enabled=amp_dtype is not None):
            loss_dict = model(data, phase=phase)
        checked = check(loss_dict) if check is not None else None
        loss = sum(v.float() for v in loss_dict.values()) / divisor
        grad_scaler.scale(loss).backward()
    return loss_dict, checked


class SimpleTrainer(TrainerBase):
    """One optimizer step per iteration, with accumulation, mixed precision and clipping.

    Args:
        model: returns a dict of scalar losses in training mode (possibly DDP-wrapped).
        data_loader: yields ``batched_inputs`` (lists of dicts), forever.
        optimizer: the optimizer.
        scheduler: stepped after every optimizer step (None: constant lr).
        accumulation_steps: batches per optimizer step.
        amp_dtype: ``torch.bfloat16`` / ``torch.float16`` for autocast, None for fp32.
        grad_clip: ``(clip_type, value, norm_type)`` or None.
    """

    def __init__(self, model: nn.Module, data_loader: Iterable, optimizer: torch.optim.Optimizer,
                 scheduler: Any = None, *, accumulation_steps: int = 1,
                 amp_dtype: torch.dtype | None = None,
                 grad_clip: tuple[str, float, float] | None = None):
        super().__init__()
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_iter: Iterator | None = None
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.accumulation_steps = max(int(accumulation_steps), 1)
        self.amp_dtype = amp_dtype
        self.grad_clip = grad_clip
        self.device_type = _device_type(model)
        use_scaler = amp_dtype == torch.float16
        # The lr logged is that of the group with most parameters (Detectron2's choice).
        self._main_group = max(range(len(optimizer.param_groups)),
                               key=lambda i: len(optimizer.param_groups[i]["params"]))
        self.grad_scaler = torch.amp.GradScaler(self.device_type, enabled=use_scaler)

    @property
    def unwrapped_model(self) -> nn.Module:
        """The model without its DDP wrapper."""
        m = self.model
        return m.module if isinstance(m, DistributedDataParallel) else m

    @property
    def data_iter(self) -> Iterator:
        """The iterator over the training loader (created on first use)."""
        if self._data_iter is None:
            self._data_iter = _infinite(self.data_loader)
        return self._data_iter

    def close_data(self) -> None:
        """Ends the training data stream (shuts its loader workers down)."""
        if self._data_iter is not None:
            self._data_iter.close()
            self._data_iter = None

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def run_step(self) -> None:
        """One optimizer step over ``accumulation_steps`` batches."""
        assert self.model.training, "SimpleTrainer: the model was switched to eval mode"
        start = time.perf_counter()
        data_time = 0.0
        totals: dict[str, float] = defaultdict(float)
        self.optimizer.zero_grad(set_to_none=True)
        try:
            for micro in range(self.accumulation_steps):
                tic = time.perf_counter()
                data = next(self.data_iter)
                data_time += time.perf_counter() - tic
                _, losses = forward_backward(
                    self.model, data, self.phase, divisor=self.accumulation_steps,
                    last=micro == self.accumulation_steps - 1, device_type=self.device_type,
                    amp_dtype=self.amp_dtype, grad_scaler=self.grad_scaler,
                    check=self._check_losses)
                for k, v in losses.items():
                    totals[k] += v / self.accumulation_steps
            grad_norm = self._clip()
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        except torch.OutOfMemoryError as e:
            raise out_of_memory_error(self.iter, "training") from e
        lr = self.optimizer.param_groups[self._main_group]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        scalars = {**totals, "total_loss": sum(totals.values()), "lr": lr,
                   "data_time": data_time, "iter_time": time.perf_counter() - start}
        if grad_norm is not None:
            scalars["grad_norm"] = float(grad_norm)
        self.storage.put_scalars(**scalars)

    def _check_losses(self, loss_dict: dict[str, torch.Tensor]) -> dict[str, float]:
        """The loss terms averaged over ranks, as floats; raises if any is not finite (all
        ranks raise together, so none waits in a collective)."""
        if not isinstance(loss_dict, dict) or not loss_dict:
            raise TypeError("in training, the model must return a non-empty dict of losses")
        names = sorted(loss_dict)
        values = torch.stack([loss_dict[k].detach().float().reshape(()) for k in names])
        values = comm.all_reduce_mean(values).cpu()
        bad = [(k, float(v)) for k, v in zip(names, values.tolist()) if not math.isfinite(v)]
        if bad:
            raise NonFiniteLossError(self.iter, bad)
        return dict(zip(names, values.tolist()))

    def _clip(self) -> torch.Tensor | None:
        if self.grad_clip is None:
            return None
        clip_type, value, norm_type = self.grad_clip
        self.grad_scaler.unscale_(self.optimizer)
        norm = clip_gradients(self._params(), clip_type, value, norm_type)
        if (norm is not None and not torch.isfinite(norm)
                and not self.grad_scaler.is_enabled()):
            raise NonFiniteLossError(self.iter, [("gradient norm", float(norm))])
        return norm


def _device_type(model: nn.Module) -> str:
    for p in model.parameters():
        return p.device.type
    return "cpu"
