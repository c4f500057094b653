"""Where training metrics go: ``log.jsonl`` (always) and TensorBoard (when installed).

Records of ``log.jsonl`` (one JSON object per line, with a ``time`` stamp):

- ``{"type": "train", "iteration": n, "lr", "total_loss", "loss_*", "iter_time", "data_time",
  "eta_s", ...}`` every ``SOLVER.LOG_PERIOD`` iterations;
- ``{"type": "eval", "iteration": n, "dataset": name, "metrics": {...}}`` after each evaluation;
- ``{"type": "event", "event": name, ...}`` (start, resume, self-training, stop, divergence).

``iteration`` counts completed optimizer steps (1 after the first), as in ``metrics.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from zsseg_bench.utils.run_dir import JSONLWriter

logger = logging.getLogger(__name__)


class MetricsWriter:
    """Interface of a metrics sink."""

    def write_train(self, iteration: int, scalars: dict[str, float]) -> None:
        """Training scalars after 0-based ``iteration``."""

    def write_eval(self, iteration: int, dataset: str, results: dict[str, float]) -> None:
        """Evaluation results after ``iteration`` completed steps."""

    def write_event(self, event: str, **fields: Any) -> None:
        """A one-off event."""

    def close(self) -> None:
        """Flushes and closes."""


class JSONLMetricsWriter(MetricsWriter):
    """Appends records to the run's ``log.jsonl``."""

    def __init__(self, writer: JSONLWriter):
        self.writer = writer

    def write_train(self, iteration: int, scalars: dict[str, float]) -> None:
        self.writer.write({"type": "train", "iteration": iteration + 1, **scalars})

    def write_eval(self, iteration: int, dataset: str, results: dict[str, float]) -> None:
        self.writer.write({"type": "eval", "iteration": iteration, "dataset": dataset,
                           "metrics": results})

    def write_event(self, event: str, **fields: Any) -> None:
        self.writer.write({"type": "event", "event": event, **fields})


class TensorboardWriter(MetricsWriter):
    """TensorBoard event files in the run directory (``train/*``, ``eval/<dataset>/*``)."""

    def __init__(self, log_dir: str | Path, summary_writer_cls: Any = None):
        if summary_writer_cls is None:
            from torch.utils.tensorboard import SummaryWriter

            summary_writer_cls = SummaryWriter
        self._writer = summary_writer_cls(log_dir=str(log_dir))

    @classmethod
    def create(cls, log_dir: str | Path) -> TensorboardWriter | None:
        """A writer, or None (one info line) when tensorboard is not installed."""
        try:
            return cls(log_dir)
        except ImportError:
            logger.info("tensorboard is not installed: no TensorBoard event files "
                        "(pip install tensorboard)")
            return None

    def write_train(self, iteration: int, scalars: dict[str, float]) -> None:
        for k, v in scalars.items():
            self._writer.add_scalar(f"train/{k}", v, iteration + 1)

    def write_eval(self, iteration: int, dataset: str, results: dict[str, float]) -> None:
        for k, v in results.items():
            if isinstance(v, (int, float)):
                self._writer.add_scalar(f"eval/{dataset}/{k}", v, iteration)
        self._writer.flush()

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()
