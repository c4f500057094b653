"""Graceful stop on SIGTERM: finish the current iteration, save a checkpoint, exit non-zero.

Schedulers (SLURM, Kubernetes, ``timeout``) send SIGTERM before killing a job. The handler only
sets ``trainer.stop_requested``; the training loop checks it (agreeing across DDP ranks) after
each iteration. A second SIGTERM gets the default action (immediate termination); checkpoints
are written atomically, so even then none is truncated.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

#: Exit code of a run stopped by SIGTERM (128 + signal number, the shell's convention).
EXIT_CODE_SIGTERM = 128 + signal.SIGTERM


@contextmanager
def stop_on_sigterm(trainer: Any) -> Iterator[None]:
    """Within the block, SIGTERM asks ``trainer`` to stop after the current iteration."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        logger.warning("SIGTERM received: stopping after the current iteration (a second "
                       "SIGTERM terminates at once)")
        trainer.stop_requested = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
