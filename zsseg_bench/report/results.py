"""Reading run directories into tables (the results store).

A run directory is any directory holding ``cell.json`` (written by the sweep); its results are
``train/metrics.json`` (accuracy, written by the engine) and ``speed/speed.json`` (written by
the speed harness). A run evaluated on several test datasets, or on another dataset than its
training one (cross-dataset), also gets one block of columns per test dataset,
``<dataset>/<column>`` (e.g. ``voc_zs_val/mIoU``, ``voc_zs_val/n_unseen``), in
``DATASETS.TEST`` order. A run that trains is finished with its ``metrics.json`` (without
``speed.json`` its speed columns are blank); a speed-only run (a speed preset) with its
``speed.json`` (its accuracy columns are blank). Unfinished runs are left out. A file that
exists but is malformed is an error that names the file: a report never silently drops a
result.

Runs record the data they used (``metrics.json`` ``data``: each dataset's fingerprint,
:mod:`zsseg_bench.data.identity`). Runs on different data are never mixed: where runs disagree
on a dataset's fingerprint (a sweep relaunched on another rendering or download of it), the
runs on the newest data (by their ``metrics.json``) are reported and the others left out with
a warning.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.sweep_layout import CELL_FILE, result_file

#: metrics.json key -> results column.
METRIC_COLUMNS = {
    "mIoU-seen": "mIoU-S",
    "mIoU-unseen": "mIoU-U",
    "hIoU": "hIoU",
    "pAcc": "pAcc",
    "mIoU": "mIoU",
    "mAcc": "mAcc",
}
REQUIRED_METRICS = ("mIoU-seen", "mIoU-unseen", "hIoU", "pAcc")
CLASS_IOU_PREFIX = "IoU-"
LABEL_COLUMNS = ["run_id", "method", "method_label", "dataset", "setting", "variant", "seed"]
#: Separator of a test dataset's columns (``<dataset>/<column>``); the per-dataset split sizes.
TARGET_SEP = "/"
SPLIT_COLUMNS = ("n_seen", "n_unseen")
SPEED_COLUMNS = ["fps", "latency_ms", "latency_median_ms", "latency_p90_ms", "latency_std_ms",
                 "gflops", "params_total", "params_learnable", "peak_memory_mb"]


class ResultFileError(UserError):
    """A result file that exists but cannot be used; the message names it."""


@dataclasses.dataclass
class CollectedResults:
    """Everything a report needs, read from the run directories under one root.

    Attributes:
        runs: one row per finished run: labels, metrics, speed, paths.
        per_class: long table (run labels, ``class``, ``iou``, ``unseen``).
        breakdown: long table (run labels, ``stage``, ``ms``).
        unfinished: run directories without their result (``metrics.json``; ``speed.json`` for
            a speed-only run).
        duplicates: run directories left out because a newer run has the same labels.
        other_data: run directories left out because newer runs used other data (another
            fingerprint of one of their datasets).
    """

    runs: pd.DataFrame
    per_class: pd.DataFrame
    breakdown: pd.DataFrame
    unfinished: list[str]
    duplicates: list[str]
    other_data: list[str] = dataclasses.field(default_factory=list)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ResultFileError(f"{path} is not valid JSON ({e}); re-run the run (delete the "
                              "file) or fix it") from e
    if not isinstance(data, dict):
        raise ResultFileError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _number(path: Path, key: str, value: Any, required: bool = True) -> float:
    if value is None and not required:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultFileError(f"{path}: {key} must be a number, got {value!r}")
    return float(value)


def _mapping(path: Path, key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResultFileError(f"{path}: {key} must be an object, got {value!r}")
    return value


def _metric_row(path: Path, key: str, metrics: Any) -> dict[str, float]:
    """The results columns of one dataset's ``metrics`` object (at ``key`` in the file)."""
    if not isinstance(metrics, dict):
        raise ResultFileError(f"{path}: missing {key!r} object (expected the engine's "
                              "metrics.json with mIoU-seen, mIoU-unseen, hIoU, pAcc)")
    row = {}
    for name, col in METRIC_COLUMNS.items():
        if name not in metrics and name in REQUIRED_METRICS:
            raise ResultFileError(f"{path}: {key} has no {name!r} "
                                  f"(keys: {', '.join(sorted(metrics)) or 'none'})")
        row[col] = _number(path, f"{key}.{name}", metrics.get(name), required=False)
    return row


def _class_list(path: Path, key: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ResultFileError(f"{path}: {key} must be a list of class names")
    return [str(v) for v in value]


def target_columns(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The per-test-dataset columns (``<dataset>/<column>``) of a ``metrics.json``: empty for a
    run evaluated on its training benchmark only (the in-domain table's columns suffice)."""
    others = _mapping(path, "other_datasets", data.get("other_datasets"))
    splits = _mapping(path, "other_splits", data.get("other_splits"))
    if not others and "cross_dataset" not in data:
        return {}
    blocks = {str(data.get("dataset")): ("metrics", data["metrics"], data)}
    for name, metrics in others.items():
        split = _mapping(path, f"other_splits.{name}", splits.get(name))
        blocks[str(name)] = (f"other_datasets.{name}", metrics, split)
    row: dict[str, Any] = {}
    for name, (key, metrics, split) in blocks.items():
        cols = _metric_row(path, key, metrics)
        for col, which in zip(SPLIT_COLUMNS, ("seen_classes", "unseen_classes")):
            cols[col] = len(_class_list(path, f"{key} {which}", split.get(which, [])))
        row.update({f"{name}{TARGET_SEP}{col}": v for col, v in cols.items()})
    return row


def target_names(columns: Iterable[str]) -> list[str]:
    """The test datasets with a column block among ``columns``, in their order."""
    suffix = f"{TARGET_SEP}mIoU"
    return [c[:-len(suffix)] for c in columns if c.endswith(suffix)]


def read_metrics(path: Path) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    """Reads a ``metrics.json``.

    Returns:
        (scalar columns, per-class IoU by class name, unseen class names). The scalar columns
        are the first test dataset's metrics, ``cross_dataset`` (whether that dataset is
        another one than the training one) and the per-test-dataset blocks
        (:func:`target_columns`).
    """
    data = _load_json(path)
    metrics = data.get("metrics")
    row: dict[str, Any] = _metric_row(path, "metrics", metrics)
    per_class = {k[len(CLASS_IOU_PREFIX):]: _number(path, f"metrics.{k}", v, required=False)
                 for k, v in metrics.items() if k.startswith(CLASS_IOU_PREFIX)}
    unseen = _class_list(path, "unseen_classes", data.get("unseen_classes", []))
    row["iteration"] = data.get("iteration")
    row["train_time_s"] = _number(path, "wall_time_s", data.get("wall_time_s"), required=False)
    row["eval_dataset"] = data.get("dataset")
    row["cross_dataset"] = "cross_dataset" in data
    row["data"] = data_fingerprints(path, data.get("data"))
    row.update(target_columns(path, data))
    return row, per_class, unseen


def data_fingerprints(path: Path, data: Any) -> str:
    """``name=fingerprint`` of each dataset a ``metrics.json`` records under ``data``,
    space-separated and sorted (empty for a file of an older version, which has none)."""
    if data is None:
        return ""
    found = {}
    for part in ("train", "test"):
        entries = _mapping(path, "data", data).get(part) or []
        if not isinstance(entries, list):
            raise ResultFileError(f"{path}: data.{part} must be a list")
        for entry in entries:
            entry = _mapping(path, f"data.{part}[]", entry)
            found[str(entry.get("name"))] = str(entry.get("fingerprint"))
    return " ".join(f"{k}={v}" for k, v in sorted(found.items()))


def read_speed(path: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """Reads a ``speed.json``. Returns (scalar columns, breakdown ms by stage)."""
    data = _load_json(path)
    if "fps" not in data:
        raise ResultFileError(f"{path}: missing 'fps' (expected the speed harness's speed.json)")
    lat = _mapping(path, "latency_ms", data.get("latency_ms"))
    params = _mapping(path, "params", data.get("params"))
    row = {
        "fps": _number(path, "fps", data["fps"]),
        "latency_ms": _number(path, "latency_ms.mean", lat.get("mean"), required=False),
        "latency_median_ms": _number(path, "latency_ms.median", lat.get("median"),
                                     required=False),
        "latency_p90_ms": _number(path, "latency_ms.p90", lat.get("p90"), required=False),
        "latency_std_ms": _number(path, "latency_ms.std", lat.get("std"), required=False),
        "gflops": _number(path, "gflops", data.get("gflops"), required=False),
        "params_total": _number(path, "params.total", params.get("total"), required=False),
        "params_learnable": _number(path, "params.learnable", params.get("learnable"),
                                    required=False),
        "peak_memory_mb": _number(path, "peak_memory_mb", data.get("peak_memory_mb"),
                                  required=False),
    }
    for key, value in _mapping(path, "protocol", data.get("protocol")).items():
        row[f"protocol.{key}"] = value if isinstance(value, (str, int, float, bool)) or \
            value is None else json.dumps(value)
    breakdown = {str(k): _number(path, f"breakdown_ms.{k}", v)
                 for k, v in _mapping(path, "breakdown_ms", data.get("breakdown_ms")).items()}
    return row, breakdown


def read_cell_labels(run_dir: Path) -> dict[str, Any]:
    """The labels of the run in ``run_dir`` from its ``cell.json``."""
    path = run_dir / CELL_FILE
    data = _load_json(path)
    missing = [k for k in ("method", "dataset", "setting", "seed") if k not in data]
    if missing:
        raise ResultFileError(f"{path}: missing {', '.join(missing)}")
    return {
        "run_id": str(data.get("run_id") or run_dir.name),
        "method": str(data["method"]),
        "method_label": str(data.get("method_label") or data["method"]),
        "dataset": str(data["dataset"]),
        "setting": str(data["setting"]),
        "variant": str(data.get("variant") or "default"),
        "seed": int(data["seed"]),
        "baseline": data.get("baseline"),
        "stages": tuple(data.get("stages") or ("train",)),
        "config_max_iter": config_max_iter(data.get("config_file")),
    }


def config_max_iter(config_file: Any) -> float:
    """``SOLVER.MAX_ITER`` as the config file (with its ``_BASE_`` chain) sets it, before any
    override: a run with fewer iterations is a short run. NaN when the file does not set it or
    cannot be read (a report never fails on it)."""
    if not isinstance(config_file, str) or not Path(config_file).is_file():
        return math.nan
    from zsseg_bench.config import CfgNode

    try:
        value = CfgNode.load_yaml_with_base(config_file, allow_unsafe=True).get(
            "SOLVER", {}).get("MAX_ITER")
    except Exception:  # noqa: BLE001  (a broken config is the sweep's error, not the report's)
        return math.nan
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else math.nan


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every run directory (holding ``cell.json``) at or below ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"report: {root} is not a directory (pass a sweep --output-dir)")
    return sorted(p.parent for p in root.rglob(CELL_FILE))


def collect_results(root: str | Path) -> CollectedResults:
    """Reads every run under ``root`` (see the module docstring).

    Raises:
        UserError: no run directory under ``root``, or a malformed result file.
    """
    run_dirs = find_run_dirs(root)
    if not run_dirs:
        raise UserError(f"report: no runs under {root} (no */{CELL_FILE}); run "
                        "`zsseg-bench sweep SPEC --output-dir` first")
    rows, classes, breakdowns, unfinished = [], [], [], []
    for run_dir in run_dirs:
        labels = read_cell_labels(run_dir)
        stages = labels.pop("stages")
        metrics_path = result_file(run_dir, "train")
        speed_path = result_file(run_dir, "speed")
        trains = "train" in stages
        if not (metrics_path if trains else speed_path).is_file():
            unfinished.append(str(run_dir))
            continue
        if trains:
            metrics, per_class, unseen = read_metrics(metrics_path)
        else:  # a speed-only run (e.g. a speed preset): no accuracy
            metrics = {**{c: math.nan for c in METRIC_COLUMNS.values()}, "cross_dataset": False,
                       "data": ""}
            per_class, unseen = {}, []
        speed, breakdown = read_speed(speed_path) if speed_path.is_file() else ({}, {})
        newest = metrics_path if trains else speed_path
        row = {**labels, **metrics, **{c: math.nan for c in SPEED_COLUMNS}, **speed,
               "run_dir": str(run_dir), "metrics_file": str(metrics_path) if trains else "",
               "speed_file": str(speed_path) if speed_path.is_file() else "",
               "_mtime": newest.stat().st_mtime}
        rows.append(row)
        key = {**{k: labels[k] for k in LABEL_COLUMNS}, "run_dir": str(run_dir)}
        unseen_set = set(unseen)
        for order, (name, iou) in enumerate(per_class.items()):
            classes.append({**key, "class": name, "iou": iou, "unseen": name in unseen_set,
                            "order": order})
        for order, (stage, ms) in enumerate(breakdown.items()):
            breakdowns.append({**key, "stage": stage, "ms": ms, "order": order})

    runs = pd.DataFrame(rows)
    duplicates: list[str] = []
    other_data: list[str] = []
    if not runs.empty:
        runs = runs.sort_values("_mtime")
        stale = _on_older_data(runs)
        other_data = runs.loc[stale, "run_dir"].tolist()
        runs = runs.loc[~stale]
        dup = runs.duplicated(["method", "dataset", "setting", "variant", "seed"], keep="last")
        duplicates = runs.loc[dup, "run_dir"].tolist()
        runs = runs.loc[~dup].drop(columns="_mtime")
        runs = runs.sort_values(["dataset", "setting", "method", "variant", "seed"])
        runs = runs.reset_index(drop=True)
    kept = set(runs["run_dir"]) if not runs.empty else set()
    per_class_df = pd.DataFrame(classes, columns=[*LABEL_COLUMNS, "run_dir", "class", "iou",
                                                  "unseen", "order"])
    per_class_df = per_class_df[per_class_df["run_dir"].isin(kept)].reset_index(drop=True)
    breakdown_df = pd.DataFrame(breakdowns, columns=[*LABEL_COLUMNS, "run_dir", "stage", "ms",
                                                     "order"])
    breakdown_df = breakdown_df[breakdown_df["run_dir"].isin(kept)].reset_index(drop=True)
    return CollectedResults(runs, per_class_df, breakdown_df, unfinished, duplicates,
                            other_data)


def _on_older_data(runs: pd.DataFrame) -> pd.Series:
    """Which runs (sorted oldest first) recorded a fingerprint of a dataset that differs from
    the one the newest run recording that dataset has."""
    current: dict[str, str] = {}
    for data in reversed(runs["data"].tolist()):
        for item in data.split():
            name, fingerprint = item.rsplit("=", 1)
            current.setdefault(name, fingerprint)
    return runs["data"].map(lambda data: any(
        current[name] != fp for name, fp in (i.rsplit("=", 1) for i in data.split())))
