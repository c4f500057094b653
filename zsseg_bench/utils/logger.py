"""Logging set-up: one ``zsseg_bench`` logger, to stderr and optionally to ``<run dir>/log.txt``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "[%(asctime)s %(name)s %(levelname)s] %(message)s"


def setup_logger(output_dir: str | Path | None = None, rank: int = 0,
                 level: int = logging.INFO) -> logging.Logger:
    """Configures the ``zsseg_bench`` logger once; non-main ranks only log warnings."""
    logger = logging.getLogger("zsseg_bench")
    logger.setLevel(level if rank == 0 else logging.WARNING)
    logger.propagate = False
    if not any(getattr(h, "_zsseg", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
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
