"""Evaluation of a model on ``DATASETS.TEST`` and the run's ``metrics.json``.

Under DDP every rank runs inference on its shard of each test set and the evaluator sums the
confusion matrices over ranks, so every rank gets the metrics of the whole set.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from zsseg_bench.data.build import build_test_loader
from zsseg_bench.data.transfer import evaluation_split, is_transfer
from zsseg_bench.engine.errors import out_of_memory_error
from zsseg_bench.evaluation import METRIC_KEYS, build_evaluator, inference_on_dataset
from zsseg_bench.evaluation.build import training_dataset
from zsseg_bench.utils import comm
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_json
from zsseg_bench.utils.run_dir import METRICS_FILE

logger = logging.getLogger(__name__)


def unwrap(model: nn.Module) -> nn.Module:
    """The model without a DDP wrapper."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def evaluate_datasets(cfg: Any, model: nn.Module, output_dir: str | Path | None = None,
                      num_vis: int = 0) -> dict[str, dict[str, float]]:
    """Evaluates ``model`` on each dataset of ``cfg.DATASETS.TEST``.

    Args:
        cfg: the config (``DATASETS.TEST``, ``TEST.*``, ``INPUT.TEST_SCALE``).
        model: the model (DDP-wrapped or not); its training mode is restored afterwards.
        output_dir: where evaluators write their files (confusion matrix, pictures).
        num_vis: pictures of the first ``num_vis`` images of each dataset (``eval --vis``).

    Returns:
        ``{dataset name: {metric: value}}``, in ``DATASETS.TEST`` order.
    """
    names = list(cfg.DATASETS.TEST)
    if not names:
        raise UserError("DATASETS.TEST is empty: name at least one registered dataset")
    module = unwrap(model)
    previous = getattr(module, "test_dataset", None)
    results: dict[str, dict[str, float]] = {}
    try:
        for name in names:
            if hasattr(module, "set_test_dataset"):
                module.set_test_dataset(name)
            loader = build_test_loader(cfg, name)
            sub = None
            if output_dir is not None:
                sub = str(Path(output_dir) / name) if len(names) > 1 else str(output_dir)
            evaluator = build_evaluator(cfg, name, output_dir=sub,
                                        num_vis=num_vis if comm.is_main_process() else 0)
            start = time.perf_counter()
            try:
                results[name] = dict(inference_on_dataset(module, loader, evaluator))
            except torch.OutOfMemoryError as e:
                raise out_of_memory_error(None, "evaluation") from e
            logger.info("Evaluation on %s (%.1f s): %s", name, time.perf_counter() - start,
                        format_summary(results[name]))
    finally:
        if previous is not None and hasattr(module, "set_test_dataset"):
            module.set_test_dataset(previous)
    return results


def format_summary(results: dict[str, float]) -> str:
    """``mIoU 12.3, mIoU-seen ...`` of the summary metrics."""
    keys = [k for k in METRIC_KEYS if k in results]
    return ", ".join(f"{k} {results[k]:.2f}" for k in keys)


def format_record(record: dict[str, Any]) -> str:
    """``dataset: mIoU ..., ...`` of every test dataset of a ``metrics.json`` record (the
    first dataset, then ``other_datasets``), ``; ``-separated."""
    results = {record["dataset"]: record["metrics"], **record.get("other_datasets", {})}
    return "; ".join(f"{name}: {format_summary(res)}" for name, res in results.items())


def metrics_record(cfg: Any, results: dict[str, dict[str, float]], *, iteration: int,
                   wall_time_s: float, train_time_s: float,
                   data: dict[str, list[dict]] | None = None) -> dict[str, Any]:
    """The content of ``metrics.json``: the first test dataset's metrics, the seen / unseen
    classes they are grouped by, the mean-IoU rule (``TEST.IOU_RULE``), the iteration and
    times; other test datasets (if any) under ``"other_datasets"`` (their groups under
    ``"other_splits"``). Evaluated on another dataset than the training one,
    ``"cross_dataset"`` names the training dataset and the rule that made a class seen
    (:mod:`zsseg_bench.data.transfer`). ``data``: the datasets used (root, image count,
    fingerprint; :func:`zsseg_bench.data.identity.data_identity`)."""
    dataset = next(iter(results))
    record: dict[str, Any] = {
        "iteration": int(iteration),
        "wall_time_s": float(wall_time_s),
        "train_time_s": float(train_time_s),
        "metrics": results[dataset],
        "dataset": dataset,
        **dataset_split_record(cfg, dataset),
        "iou_rule": cfg.TEST.IOU_RULE,
    }
    if data is not None:
        record["data"] = data
    if len(results) > 1:
        record["other_datasets"] = {k: v for k, v in results.items() if k != dataset}
        record["other_splits"] = {k: dataset_split_record(cfg, k) for k in results
                                  if k != dataset}
    return record


def dataset_split_record(cfg: Any, dataset: str) -> dict[str, Any]:
    """``seen_classes`` / ``unseen_classes`` the metrics of ``dataset`` are grouped by, and
    ``cross_dataset`` when it is another dataset than the training one."""
    train = training_dataset(cfg)
    names, seen, unseen = evaluation_split(dataset, train, cfg.ZERO_SHOT.SETTING)
    out: dict[str, Any] = {"seen_classes": [names[i] for i in seen],
                           "unseen_classes": [names[i] for i in unseen]}
    if is_transfer(dataset, train):
        out["cross_dataset"] = {
            "train_dataset": train, "setting": cfg.ZERO_SHOT.SETTING,
            "seen_rule": f"a class of {dataset} is seen when its name (ignoring case; or one "
                         f"of its comma-separated synonyms) is that of a class with training "
                         f"labels in {train}, unseen otherwise"}
    return out


def write_metrics(output_dir: str | Path, record: dict[str, Any]) -> Path:
    """Writes ``metrics.json`` atomically (main process only); returns its path."""
    path = Path(output_dir) / METRICS_FILE
    if comm.is_main_process():
        atomic_write_json(path, record)
    return path
