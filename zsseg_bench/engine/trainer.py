"""``Trainer``: everything a training run needs, built from a config (Detectron2's
``DefaultTrainer``).

One engine trains every method: model (``build_model``), AdamW with parameter groups
(:mod:`.optimizer`), warm-up + poly schedule (:mod:`.lr_scheduler`), the seeded, resumable
training loader, checkpoints (:mod:`.checkpoint`), periodic and final evaluation, the
transductive self-training switch, the optional weight average (``MODEL_EMA``, :mod:`.ema`),
``log.jsonl`` / TensorBoard / progress bar, and DDP.

Reproducibility: with the same config and seed on CPU, a run resumed from any checkpoint
(``resume=True``) ends with the same weights as an uninterrupted one: the checkpoint holds the
optimizer, schedule, RNG states of every rank and the iteration (which fixes the data stream's
position, see ``build_train_loader(start_iter=...)``), and evaluation never touches the RNGs.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zsseg_bench.data.build import build_train_loader
from zsseg_bench.engine.checkpoint import TrainableCheckpointer, TrainingPeriodicCheckpointer
from zsseg_bench.engine.ema import EMA_KEY, EMAHook, ModelEMA
from zsseg_bench.engine.errors import NonFiniteLossError, TrainingStopped
from zsseg_bench.engine.evaluate import evaluate_datasets, metrics_record, write_metrics
from zsseg_bench.engine.hooks import (
    EvalHook,
    MetricsWriterHook,
    PeriodicCheckpointHook,
    ProgressBarHook,
)
from zsseg_bench.engine.lr_scheduler import build_lr_scheduler
from zsseg_bench.engine.optimizer import build_optimizer
from zsseg_bench.engine.phase_schedule import PhaseSchedule, PhaseScheduleHook
from zsseg_bench.engine.rng import gather_rng_states, preserve_rng_state, seed_all, set_rng_state
from zsseg_bench.engine.signals import EvaluationStopped, interruptible, signal_name
from zsseg_bench.engine.train_loop import SimpleTrainer
from zsseg_bench.engine.writers import JSONLMetricsWriter, MetricsWriter, TensorboardWriter
from zsseg_bench.modeling import build_model
from zsseg_bench.utils import comm
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.run_dir import JSONLWriter

logger = logging.getLogger(__name__)


def _no_buffer_sync() -> dict[str, bool]:
    """DDP keyword that keeps buffers (e.g. BatchNorm statistics) per rank, as Detectron2
    does: ``forward_sync_buffers`` on recent torch, ``broadcast_buffers`` before."""
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    key = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return {key: False}


def amp_dtype(cfg: Any) -> torch.dtype | None:
    """The autocast dtype of ``SOLVER.AMP`` (None: fp32)."""
    return getattr(torch, cfg.SOLVER.AMP.DTYPE) if cfg.SOLVER.AMP.ENABLED else None


def grad_clip(cfg: Any) -> tuple[str, float, float] | None:
    """``(clip_type, value, norm_type)`` of ``SOLVER.CLIP_GRADIENTS`` (None: no clipping)."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    return (clip.CLIP_TYPE, float(clip.CLIP_VALUE), float(clip.NORM_TYPE)) if clip.ENABLED \
        else None


def check_solver(cfg: Any) -> None:
    """Raises UserError on ``SOLVER`` / ``MODEL_EMA`` values no engine can run (both engines
    call it)."""
    s = cfg.SOLVER
    if s.MAX_ITER <= 0:
        raise UserError(f"SOLVER.MAX_ITER = {s.MAX_ITER} must be positive")
    if s.ACCUMULATION_STEPS < 1:
        raise UserError(f"SOLVER.ACCUMULATION_STEPS = {s.ACCUMULATION_STEPS} must be >= 1")
    if s.MAX_TO_KEEP < 1:
        raise UserError(f"SOLVER.MAX_TO_KEEP = {s.MAX_TO_KEEP} must be >= 1")
    if cfg.MODEL_EMA.ENABLED and not 0.0 <= cfg.MODEL_EMA.DECAY < 1.0:
        raise UserError(f"MODEL_EMA.DECAY = {cfg.MODEL_EMA.DECAY} must be in [0, 1) (the weight "
                        "of the old average at each step, e.g. 0.999)")


class Trainer(SimpleTrainer):
    """Builds model, optimizer, schedule, loader, checkpointer and hooks from ``cfg`` and
    trains.

    Usage::

        trainer = Trainer(cfg, log=setup_run_dir(cfg.OUTPUT_DIR, cfg))
        trainer.resume_or_load(resume=args.resume)
        metrics = trainer.train()        # final evaluation + metrics.json included

    Args:
        cfg: a frozen config.
        log: the run's ``log.jsonl`` writer (None: no JSONL records).
        model: a model to train instead of ``build_model(cfg)`` (tests).
        progress_bar: show the tqdm bar (None: only on a terminal).
        tensorboard: write TensorBoard event files when tensorboard is installed.
        data: the datasets the run uses, recorded in ``metrics.json``
            (:func:`zsseg_bench.data.identity.data_identity`).
    """

    def __init__(self, cfg: Any, log: JSONLWriter | None = None, *, model: nn.Module | None = None,
                 progress_bar: bool | None = None, tensorboard: bool = True,
                 data: dict[str, list[dict]] | None = None):
        check_solver(cfg)
        self.cfg = cfg
        self.data = data
        self.output_dir = Path(cfg.OUTPUT_DIR)
        self.rank, self.world_size = comm.get_rank(), comm.get_world_size()
        seed_all(int(cfg.SEED))  # the same initial weights on every rank
        if model is None:
            model = build_model(cfg)
        self._module = model
        optimizer = build_optimizer(cfg, model)
        self.phase_schedule = PhaseSchedule.from_config(cfg)
        scheduler = build_lr_scheduler(cfg, optimizer,
                                       restart_iter=self.phase_schedule.restart_iter)
        if self.world_size > 1:
            device = next(model.parameters()).device
            device_ids = [device.index] if device.type == "cuda" else None
            find_unused = bool(getattr(model, "ddp_find_unused_parameters", False))
            model = DistributedDataParallel(model, device_ids=device_ids,
                                            find_unused_parameters=find_unused,
                                            **_no_buffer_sync())
        super().__init__(model, None, optimizer, scheduler,
                         accumulation_steps=cfg.SOLVER.ACCUMULATION_STEPS,
                         amp_dtype=amp_dtype(cfg), grad_clip=grad_clip(cfg))
        # The fp16 loss scale is saved only when in use (a bf16/fp32 run has none).
        extra = {"grad_scaler": self.grad_scaler} if self.grad_scaler.is_enabled() else {}
        self.ema = ModelEMA(self._module, cfg.MODEL_EMA.DECAY) if cfg.MODEL_EMA.ENABLED \
            else None
        if self.ema is not None:
            extra[EMA_KEY] = self.ema
        self.checkpointer = TrainableCheckpointer(
            self._module, str(self.output_dir), save_to_disk=comm.is_main_process(),
            max_to_keep=cfg.SOLVER.MAX_TO_KEEP, optimizer=optimizer, scheduler=scheduler,
            **extra)
        self.writers: list[MetricsWriter] = []
        if comm.is_main_process():
            if log is not None:
                self.writers.append(JSONLMetricsWriter(log))
            tb = TensorboardWriter.create(self.output_dir) if tensorboard else None
            if tb is not None:
                self.writers.append(tb)
        self._progress_bar = progress_bar
        self.train_time_s = 0.0
        self._wall_before = 0.0
        self._wall_start = time.perf_counter()
        self._rng_to_restore: list[dict[str, Any]] | None = None
        self._resumed_from: str | None = None
        #: The periodic evaluation a signal stopped: run again first on --resume.
        self._pending_eval = False
        self.register_hooks(self.build_hooks())

    # ------------------------------------------------------------------------------- set-up
    def build_hooks(self) -> list:
        """Weight average, phase schedule, checkpoints, evaluation, writers, progress bar
        (in order: checkpoints and evaluations see the average of the step just taken)."""
        cfg = self.cfg
        hooks: list = []
        if self.ema is not None:
            hooks.append(EMAHook(self.ema))
        if self.phase_schedule.self_training_start is not None:
            hooks.append(PhaseScheduleHook(self.phase_schedule, self.ema, self._module))
        periodic = TrainingPeriodicCheckpointer(self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD,
                                                max_iter=cfg.SOLVER.MAX_ITER)
        self.checkpoint_hook = PeriodicCheckpointHook(periodic, self.checkpoint_state)
        hooks.append(self.checkpoint_hook)
        hooks.append(EvalHook(cfg.TEST.EVAL_PERIOD, self._periodic_eval, self._log_eval))
        if comm.is_main_process():
            hooks.append(MetricsWriterHook(self.writers, cfg.SOLVER.LOG_PERIOD))
            hooks.append(ProgressBarHook(disable=None if self._progress_bar is None
                                         else not self._progress_bar))
        return hooks

    def checkpoint_state(self) -> dict[str, Any]:
        """The extra entries of a checkpoint (a collective under DDP: call on every rank)."""
        it = self.iter
        return {
            "rng": gather_rng_states(),
            "sampler": {"consumed_batches": (it + 1) * self.accumulation_steps,
                        "ims_per_batch": int(self.cfg.SOLVER.IMS_PER_BATCH),
                        "seed": int(self.cfg.SEED)},
            "train_time_s": self.train_time_s,
            "wall_time_s": self.wall_time_s(),
            "meta": {"head": self.cfg.MODEL.HEAD.NAME, "world_size": self.world_size},
            "pending_eval": self._pending_eval,
        }

    def resume_or_load(self, resume: bool = True) -> None:
        """With ``resume`` and a ``last_checkpoint`` in ``OUTPUT_DIR``: continue from it
        (weights, optimizer, schedule, RNG, data position). Otherwise start at iteration 0,
        from ``MODEL.WEIGHTS`` if given (trainable weights only)."""
        stale = self.checkpointer.remove_stale_temp_files()
        if stale:
            logger.info("Removed %d temporary file(s) of an interrupted checkpoint write",
                        len(stale))
        if resume and self.checkpointer.has_checkpoint():
            path = self.checkpointer.get_checkpoint_file()
            extra = self.checkpointer.load(path)
            self.start_iter = int(extra.get("iteration", -1)) + 1
            self.train_time_s = float(extra.get("train_time_s", 0.0))
            self._wall_before = float(extra.get("wall_time_s", 0.0))
            rng = extra.get("rng")
            if isinstance(rng, list) and len(rng) == self.world_size:
                self._rng_to_restore = rng
            else:
                logger.warning("The checkpoint was written by %s process(es), this run has %d: "
                               "RNG states are re-seeded, so the run will not repeat exactly",
                               len(rng) if isinstance(rng, list) else "?", self.world_size)
            self._check_sampler(extra.get("sampler") or {})
            self._pending_eval = bool(extra.get("pending_eval", False))
            self._resumed_from = path
            logger.info("Resuming from %s at iteration %d", path, self.start_iter)
        else:
            if resume:
                logger.info("--resume: no checkpoint in %s, starting from scratch",
                            self.output_dir)
            self.checkpointer.load(self.cfg.MODEL.WEIGHTS, checkpointables=[])
            if self.ema is not None:
                self.ema.reset()
            self.start_iter = 0

    def _check_sampler(self, sampler: dict[str, Any]) -> None:
        if sampler.get("ims_per_batch", self.cfg.SOLVER.IMS_PER_BATCH) != \
                self.cfg.SOLVER.IMS_PER_BATCH:
            logger.warning("SOLVER.IMS_PER_BATCH changed since the checkpoint (%s -> %s): the "
                           "data stream will not continue where it stopped",
                           sampler.get("ims_per_batch"), self.cfg.SOLVER.IMS_PER_BATCH)

    # ------------------------------------------------------------------------------- training
    def train(self) -> dict[str, Any]:  # type: ignore[override]
        """Trains to ``SOLVER.MAX_ITER``, evaluates the final model and writes
        ``metrics.json``; returns its content.

        Raises:
            NonFiniteLossError: a loss became NaN/inf (the message names the last checkpoint).
            TrainingStopped: stopped on request (a signal) after saving a checkpoint; during
                an evaluation, at once (the final one: the final checkpoint is kept and
                ``--resume`` evaluates it).
        """
        self._wall_start = time.perf_counter()
        self.data_loader = build_train_loader(
            self.cfg, start_iter=self.start_iter * self.accumulation_steps)
        _ = self.data_iter  # created before the RNG states are restored (it may draw from them)
        if self._rng_to_restore is not None:
            set_rng_state(self._rng_to_restore[self.rank])
        else:  # a fresh start (or a checkpoint of another world size)
            seed_all(int(self.cfg.SEED) + self.rank + self.start_iter * self.world_size)
        self._event("resume" if self._resumed_from else "start", start_iter=self.start_iter,
                    max_iter=self.cfg.SOLVER.MAX_ITER, world_size=self.world_size,
                    checkpoint=self._resumed_from, log_period=self.cfg.SOLVER.LOG_PERIOD)
        try:
            try:
                if self._pending_eval and self.start_iter < self.cfg.SOLVER.MAX_ITER:
                    self._rerun_pending_eval()
                super().train(self.start_iter, self.cfg.SOLVER.MAX_ITER)
                self.close_data()  # frees the loader workers before the final evaluation
            except NonFiniteLossError as e:
                comm.synchronize()
                self._event("diverged", iteration=e.iteration, terms=dict(e.terms))
                raise e.with_checkpoint(self.checkpointer.get_checkpoint_file() or None) \
                    from None
            except TrainingStopped as e:
                self._stopped_event(e)
                raise
            try:
                with interruptible(self), self._eval_weights():
                    results = evaluate_datasets(self.cfg, self.model,
                                                output_dir=self.output_dir)
            except EvaluationStopped as e:
                # The final checkpoint is on disk: --resume loads it and evaluates again.
                stopped = TrainingStopped(self.iter - 1, self.checkpointer.get_checkpoint_file()
                                          or None, signum=e.signum, during="final evaluation")
                self._stopped_event(stopped)
                raise stopped from None
            self._log_eval(self.iter - 1, results)  # self.iter: iterations completed
            record = metrics_record(self.cfg, results, iteration=self.iter,
                                    wall_time_s=self.wall_time_s(),
                                    train_time_s=self.train_time_s, data=self.data)
            write_metrics(self.output_dir, record)
            return record
        finally:
            self.close_data()
            self._close_writers()

    def wall_time_s(self) -> float:
        """Wall-clock seconds of the run so far, over all its sessions (resumed ones too)."""
        return self._wall_before + time.perf_counter() - self._wall_start

    def run_step(self) -> None:
        tic = time.perf_counter()
        super().run_step()
        self.train_time_s += time.perf_counter() - tic

    def on_stop(self) -> None:
        """Saves the last completed iteration and stops (a signal asked to)."""
        path = self.checkpoint_hook.save_now(force=self._pending_eval)
        during = "evaluation" if self._pending_eval else "training"
        logger.warning("Stop requested: stopped after iteration %d%s, checkpoint %s",
                       self.iter + 1, " (its evaluation not done)" if self._pending_eval else "",
                       path)
        raise TrainingStopped(self.iter, path, signum=self.stop_signal, during=during)

    # ------------------------------------------------------------------------------- helpers
    def _periodic_eval(self) -> dict[str, dict[str, float]] | None:
        """The periodic evaluation; None when a signal stopped it (it is then recorded as not
        done in the checkpoint the stop writes, and runs again on ``--resume``)."""
        try:
            with interruptible(self), self._eval_weights():
                results = evaluate_datasets(self.cfg, self.model)
        except EvaluationStopped:
            self._pending_eval = True
            return None
        self._pending_eval = False
        return results

    def _rerun_pending_eval(self) -> None:
        """Runs the periodic evaluation of the checkpoint's iteration, which a signal stopped
        in the interrupted session (the RNG states stay as restored)."""
        logger.info("Running the evaluation of iteration %d, stopped in the last session",
                    self.start_iter)
        self.iter = self.start_iter - 1
        with preserve_rng_state():
            results = self._periodic_eval()
        if results is None:  # stopped again: nothing newer to save
            raise TrainingStopped(self.start_iter - 1, self._resumed_from,
                                  signum=self.stop_signal, during="evaluation")
        self._log_eval(self.start_iter - 1, results)

    def _stopped_event(self, e: TrainingStopped) -> None:
        self._event("stopped", iteration=e.iteration + 1, checkpoint=e.checkpoint,
                    signal=signal_name(e.signum), during=e.during)

    def _eval_weights(self) -> contextlib.AbstractContextManager:
        """The weights evaluations use: the average with ``MODEL_EMA.ENABLED``, else the
        model's own."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    def _log_eval(self, it: int, results: dict[str, dict[str, float]]) -> None:
        """Writes ``results`` of an evaluation after 0-based iteration ``it`` to every writer."""
        for name, res in results.items():
            for w in self.writers:
                w.write_eval(it + 1, name, res)

    def _event(self, event: str, **fields: Any) -> None:
        for w in self.writers:
            w.write_event(event, **fields)

    def _close_writers(self) -> None:
        for w in self.writers:
            w.close()
