"""Hooks of the training loop: checkpoints, periodic evaluation, metric writers and the
progress bar (Detectron2's ``engine/hooks.py``; the phase schedule:
:mod:`zsseg_bench.engine.phase_schedule`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from zsseg_bench.engine.checkpoint import TrainingPeriodicCheckpointer
from zsseg_bench.engine.rng import preserve_rng_state
from zsseg_bench.engine.train_loop import HookBase
from zsseg_bench.engine.writers import MetricsWriter
from zsseg_bench.utils import comm

logger = logging.getLogger(__name__)


class PeriodicCheckpointHook(HookBase):
    """Saves ``model_{iter:07d}.pth`` every ``period`` iterations, ``model_final.pth`` at the
    end, and a checkpoint of the last completed iteration when the run is stopped (a signal).

    Args:
        periodic: the periodic checkpointer.
        extra_state: returns the extra entries of a checkpoint (RNG states, sampler position,
            ...). It is called on every rank (it may be a collective); only rank 0 writes.
    """

    def __init__(self, periodic: TrainingPeriodicCheckpointer,
                 extra_state: Callable[[], dict[str, Any]]):
        self.periodic = periodic
        self.extra_state = extra_state
        self._saved_iter: int | None = None

    def after_step(self) -> None:
        it = self.trainer.iter
        if self.periodic.is_due(it):
            self.periodic.step(it, **self.extra_state())
            self._saved_iter = it

    def save_now(self, force: bool = False) -> str | None:
        """Saves the last completed iteration unless it was just saved (``force``: even then,
        e.g. with new extra state); returns the file."""
        it = self.trainer.iter
        if force or self._saved_iter != it:
            self.periodic.save_iteration(it, **self.extra_state())
            self._saved_iter = it
        comm.synchronize()  # rank 0 has written it
        return self.periodic.checkpointer.get_checkpoint_file() or None


class EvalHook(HookBase):
    """Runs ``eval_function()`` every ``period`` iterations (not at the last one: the trainer
    evaluates the final model itself). The RNG states are restored afterwards, so evaluating
    never changes the training that follows.

    Args:
        period: iterations between evaluations (0: never).
        eval_function: returns ``{dataset: {metric: value}}``, or None when the evaluation was
            stopped (by a signal; the trainer then stops).
        on_results: called with ``(iteration, results)`` on every rank.
    """

    def __init__(self, period: int, eval_function: Callable[[], dict[str, Any]],
                 on_results: Callable[[int, dict[str, Any]], None] | None = None):
        self.period = int(period)
        self.eval_function = eval_function
        self.on_results = on_results

    def after_step(self) -> None:
        it = self.trainer.iter
        if self.period <= 0 or (it + 1) % self.period or it + 1 >= self.trainer.max_iter:
            return
        with preserve_rng_state():
            results = self.eval_function()
        if results is None:
            return
        comm.synchronize()
        if self.on_results is not None:
            self.on_results(it, results)


class MetricsWriterHook(HookBase):
    """Writes the training scalars to every writer each ``period`` iterations (and at the last
    one), smoothed by the median over the last iterations for the loss terms."""

    def __init__(self, writers: Sequence[MetricsWriter], period: int):
        self.writers = list(writers)
        self.period = max(int(period), 1)

    def _record(self) -> dict[str, float]:
        t = self.trainer
        latest = t.storage.latest()
        record = dict(latest)
        for k in latest:
            if k.startswith("loss") or k == "total_loss":
                record[k] = t.storage.median(k)
        per_iter = t.storage.median("iter_time")
        if math.isfinite(per_iter):
            record["eta_s"] = per_iter * max(t.max_iter - t.iter - 1, 0)
        return record

    def after_step(self) -> None:
        it = self.trainer.iter
        if (it + 1) % self.period == 0 or it == self.trainer.max_iter - 1:
            record = self._record()
            for w in self.writers:
                w.write_train(it, record)


class ProgressBarHook(HookBase):
    """A tqdm progress bar (rank 0): iterations, ETA, smoothed loss and lr."""

    def __init__(self, disable: bool | None = None):
        self.disable = disable
        self._bar: Any = None

    def before_train(self) -> None:
        from tqdm.auto import tqdm

        t = self.trainer
        self._bar = tqdm(total=t.max_iter, initial=t.start_iter, desc="train", unit="it",
                         dynamic_ncols=True, disable=self.disable, leave=True)

    def after_step(self) -> None:
        if self._bar is None:
            return
        s = self.trainer.storage
        self._bar.set_postfix(loss=f"{s.median('total_loss'):.4g}",
                              lr=f"{s.latest().get('lr', math.nan):.3g}", refresh=False)
        self._bar.update(1)

    def after_train(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
