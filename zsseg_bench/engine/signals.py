"""Graceful stop on Ctrl-C (SIGINT), SIGTERM or SIGUSR2: save a checkpoint within seconds,
exit non-zero, continue later with ``--resume``.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group; schedulers (Slurm,
Kubernetes, ``timeout``) send SIGTERM before killing a job; Slurm sends the signal of
``sbatch --signal`` (SIGUSR2 for submitit jobs) before a time limit, to every process of the
job step. The handlers set ``trainer.stop_requested`` (and ``trainer.stop_signal``):

- during a training step, the loop stops after the step (the ranks agree under DDP) and saves
  a checkpoint of it;
- during an evaluation (periodic or final), the handler raises :class:`EvaluationStopped` at
  once, so a long evaluation is not waited for: the trainer saves the last completed
  iteration (the final checkpoint is on disk already) and records the evaluation as not
  done, so ``--resume`` runs it again.

Data-loader workers leave the process group when they start (``data/build.py``), so a signal
sent to the group reaches only the main process, which shuts them down itself.

A second SIGINT or SIGTERM more than :data:`REPEAT_WINDOW_S` after the first stops at once
(KeyboardInterrupt; the default action of SIGTERM); a repeat within that window is the same
request delivered twice (torchrun forwards the terminal's Ctrl-C to its workers, which got it
from the terminal already). SIGUSR2 may come any number of times (a sweep's job forwards it to
its stage, which may also get it from Slurm directly). Checkpoints are written atomically, so
even an immediate termination never truncates one. Under DDP every process must get the signal,
as Ctrl-C, torchrun and Slurm deliver it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

#: Exit code of a run stopped by SIGTERM or SIGUSR2 after saving a checkpoint (128 + SIGTERM,
#: the shell's convention).
EXIT_CODE_SIGTERM = 128 + signal.SIGTERM
#: Exit code of a run stopped by Ctrl-C (SIGINT) after saving a checkpoint (128 + SIGINT).
EXIT_CODE_SIGINT = 128 + signal.SIGINT
#: Seconds within which a repeated signal counts as the same stop request.
REPEAT_WINDOW_S = 1.0

_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)
_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM",
          signal.SIGUSR2: "SIGUSR2 (the scheduler's warning before a time limit or preemption)"}


class EvaluationStopped(Exception):  # noqa: N818  (not an error: a requested stop)
    """A stop signal arrived during an evaluation (raised by the handler, at once)."""

    def __init__(self, signum: int | None = None):
        self.signum = signum
        super().__init__(f"evaluation stopped by {signal_name(signum)}")


def exit_code(signum: int | None) -> int:
    """The exit code of a run stopped by ``signum``: 130 after SIGINT, else 143."""
    return EXIT_CODE_SIGINT if signum == signal.SIGINT else EXIT_CODE_SIGTERM


def signal_name(signum: int | None) -> str:
    """``"Ctrl-C (SIGINT)"``, ``"SIGTERM"``, ... (``"a stop request"`` without a signal)."""
    if signum is None:
        return "a stop request"
    return "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name


@contextlib.contextmanager
def interruptible(trainer: Any) -> Iterator[None]:
    """Within the block (an evaluation), a stop signal raises :class:`EvaluationStopped` at
    once instead of waiting for the end of the block; a stop requested before the block
    raises on entry."""
    if getattr(trainer, "stop_requested", False):
        raise EvaluationStopped(getattr(trainer, "stop_signal", None))
    previous = getattr(trainer, "interruptible", False)
    trainer.interruptible = True
    try:
        yield
    finally:
        trainer.interruptible = previous


@contextlib.contextmanager
def stop_on_signals(trainer: Any) -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM or SIGUSR2 ask ``trainer`` to stop with a checkpoint
    (see the module's docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    first: dict[int, float] = {}

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        now = time.monotonic()
        if signum in first and signum != signal.SIGUSR2:
            if now - first[signum] <= REPEAT_WINDOW_S:
                return  # the same request, delivered twice
            logger.warning("%s received again: stopping at once", signal_name(signum))
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        first[signum] = now
        if not trainer.stop_requested:
            where = ("stopping the evaluation now" if getattr(trainer, "interruptible", False)
                     else "stopping after the current iteration")
            again = "" if signum == signal.SIGUSR2 else \
                f"; {signal_name(signum)} again stops at once"
            logger.warning("%s received: %s with a checkpoint (continue with --resume)%s",
                           _NAMES[signum], where, again)
            trainer.stop_signal = signum
        trainer.stop_requested = True
        if getattr(trainer, "interruptible", False):
            raise EvaluationStopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
