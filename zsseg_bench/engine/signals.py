"""Graceful stop on SIGTERM or SIGUSR2: finish the current iteration, save a checkpoint, exit
non-zero.

Schedulers (SLURM, Kubernetes, ``timeout``) send SIGTERM before killing a job; Slurm sends the
signal of ``sbatch --signal`` (SIGUSR2 for submitit jobs) before a time limit, to every process
of the job step. The handlers only set ``trainer.stop_requested``; the training loop checks it
(agreeing across DDP ranks) after each iteration. A second SIGTERM gets the default action
(immediate termination); SIGUSR2 may come any number of times (a sweep's job forwards it to its
stage, which may also get it from Slurm directly). Checkpoints are written atomically, so even
an immediate termination never truncates one.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

#: Exit code of a run stopped by a signal after saving a checkpoint (128 + SIGTERM, the shell's
#: convention; also after SIGUSR2).
EXIT_CODE_SIGTERM = 128 + signal.SIGTERM


@contextmanager
def stop_on_sigterm(trainer: Any) -> Iterator[None]:
    """Within the block, SIGTERM or SIGUSR2 asks ``trainer`` to stop after the current
    iteration."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        logger.warning("SIGTERM received: stopping after the current iteration (a second "
                       "SIGTERM terminates at once)")
        trainer.stop_requested = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def handler_usr2(signum: int, frame: Any) -> None:  # noqa: ARG001
        if not trainer.stop_requested:
            logger.warning("SIGUSR2 received (the scheduler's warning before a time limit or "
                           "preemption): stopping after the current iteration")
        trainer.stop_requested = True

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, handler),
                signal.SIGUSR2: signal.signal(signal.SIGUSR2, handler_usr2)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
