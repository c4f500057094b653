"""Logging set-up: one ``zsseg_bench`` logger, to stderr and optionally to ``<run dir>/log.txt``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "[%(asctime)s %(name)s %(levelname)s] %(message)s"


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to ``sys.stderr`` as it is when a record is emitted, not as
    it was when the logger was set up (a caller, a notebook or a test may replace it later, and
    a closed replacement would turn every record into a logging error)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def setup_logger(output_dir: str | Path | None = None, rank: int = 0,
                 level: int = logging.INFO) -> logging.Logger:
    """Configures the ``zsseg_bench`` logger once; non-main ranks only log warnings."""
    logger = logging.getLogger("zsseg_bench")
    logger.setLevel(level if rank == 0 else logging.WARNING)
    logger.propagate = False
    if not any(getattr(h, "_zsseg", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        handler._zsseg = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    if output_dir is not None and rank == 0:
        path = Path(output_dir) / "log.txt"
        if not any(getattr(h, "baseFilename", None) == str(path.resolve())
                   for h in logger.handlers):
            path.parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(path)
            file_handler.setFormatter(logging.Formatter(_FORMAT))
            logger.addHandler(file_handler)
    return logger
