"""``DatasetEvaluator`` and ``inference_on_dataset``, as in Detectron2.

An evaluator sees every batch of model inputs and outputs (``process``) and turns them into
metrics at the end (``evaluate``); :func:`inference_on_dataset` runs a model over a loader and
feeds the evaluator.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "inference_on_dataset", "inference_context"]

logger = logging.getLogger(__name__)

#: Seconds between two progress lines of :func:`inference_on_dataset`.
_LOG_PERIOD_S = 10.0


class DatasetEvaluator:
    """Base class: ``reset()``, then ``process(inputs, outputs)`` per batch, then
    ``evaluate() -> dict``."""

    def reset(self) -> None:
        """Prepares for a new round of evaluation."""

    def process(self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> None:
        """Accumulates one batch: the model's inputs and its outputs."""

    def evaluate(self) -> dict[str, Any]:
        """The metrics of everything processed since the last ``reset``."""
        return {}


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators run together; their results are merged (keys must not clash)."""

    def __init__(self, evaluators: Sequence[DatasetEvaluator]):
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def evaluate(self) -> dict[str, Any]:
        results: dict[str, Any] = OrderedDict()
        for evaluator in self._evaluators:
            for key, value in (evaluator.evaluate() or {}).items():
                if key in results:
                    raise KeyError(f"two evaluators report the metric '{key}'")
                results[key] = value
        return results


@contextlib.contextmanager
def inference_context(model: nn.Module) -> Iterator[None]:
    """Puts ``model`` in eval mode for the block and restores its training mode after."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def inference_on_dataset(model: nn.Module, data_loader: Iterable[list[dict[str, Any]]],
                         evaluator: DatasetEvaluator | Sequence[DatasetEvaluator] | None,
                         ) -> dict[str, Any]:
    """Runs ``model`` on every batch of ``data_loader`` (eval mode, no gradients) and returns
    the evaluator's results. Logs progress and the time per image.

    Args:
        model: takes ``batched_inputs``, returns one output dict per input.
        data_loader: yields lists of mapped dicts (e.g. ``build_test_loader``).
        evaluator: one evaluator, a list of them, or None (the model is only run).
    """
    if evaluator is None:
        evaluator = DatasetEvaluators([])
    elif not isinstance(evaluator, DatasetEvaluator):
        evaluator = DatasetEvaluators(list(evaluator))
    evaluator.reset()
    try:
        total = len(data_loader)  # type: ignore[arg-type]
    except TypeError:
        total = None
    num_images, compute_s = 0, 0.0
    start = last_log = time.perf_counter()
    with inference_context(model), torch.no_grad():
        for step, inputs in enumerate(data_loader):
            tic = time.perf_counter()
            outputs = model(inputs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            compute_s += time.perf_counter() - tic
            evaluator.process(inputs, outputs)
            num_images += len(inputs)
            now = time.perf_counter()
            if now - last_log > _LOG_PERIOD_S:
                last_log = now
                logger.info("Inference done %d/%s batches, %.4f s/image (model only)",
                            step + 1, total if total is not None else "?",
                            compute_s / max(num_images, 1))
    elapsed = time.perf_counter() - start
    logger.info("Inference on %d images took %s (%.4f s/image; model only %.4f s/image)",
                num_images, datetime.timedelta(seconds=int(elapsed)),
                elapsed / max(num_images, 1), compute_s / max(num_images, 1))
    results = evaluator.evaluate()
    return results if results is not None else {}
