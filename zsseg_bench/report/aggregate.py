"""Aggregation over seeds (mean ± sample std) and speed-ups against a baseline method."""

from __future__ import annotations

import math

import pandas as pd

from zsseg_bench.report.results import METRIC_COLUMNS, TARGET_SEP, target_names
from zsseg_bench.utils.errors import UserError

GROUP_COLUMNS = ["method", "method_label", "dataset", "setting", "variant"]
AGG_METRICS = ["mIoU-S", "mIoU-U", "hIoU", "pAcc", "mIoU", "mAcc", "fps", "latency_ms",
               "gflops", "params_learnable", "params_total", "peak_memory_mb", "iteration",
               "config_max_iter"]


def default_baseline(methods: set[str] | dict[str, str]) -> str | None:
    """The method speed-ups are relative to when neither the runs nor the caller name one: the
    installed method marked ``reference`` (:class:`~zsseg_bench.config.projects.Method`) among
    ``methods``, else None."""
    from zsseg_bench.config.projects import list_methods

    return next((m.name for m in list_methods() if m.reference and m.name in methods), None)


def resolve_baseline(runs: pd.DataFrame, baseline: str | None) -> str | None:
    """The baseline method name: ``baseline`` (a method name or label) if given, else the one
    recorded in the runs' ``cell.json`` (the spec's ``baseline``), else the installed
    reference method (:func:`default_baseline`) if present, else None (no speed-up column
    values)."""
    methods = dict(zip(runs["method"], runs["method_label"]))
    if baseline is not None:
        if baseline in methods:
            return baseline
        by_label = {label: m for m, label in methods.items()}
        if baseline in by_label:
            return by_label[baseline]
        raise UserError(f"report: baseline {baseline!r} is not among the methods of the runs "
                        f"({', '.join(sorted(methods))})")
    recorded = runs["baseline"].dropna() if "baseline" in runs else pd.Series(dtype=object)
    recorded = [b for b in recorded if b in methods]
    if recorded:
        return pd.Series(recorded).mode().iloc[0]
    return default_baseline(methods)


def aggregated_metrics(runs: pd.DataFrame) -> list[str]:
    """The columns aggregated over seeds: :data:`AGG_METRICS`, then the metric columns of every
    test dataset block (``<dataset>/mIoU``, ...; cross-dataset runs)."""
    blocks = [f"{t}{TARGET_SEP}{m}" for t in target_names(runs.columns)
              for m in METRIC_COLUMNS.values()]
    return AGG_METRICS + blocks


def aggregate_seeds(runs: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One row per (method, dataset, setting, variant): mean and std over seeds.

    Args:
        runs: the per-run table of :func:`~zsseg_bench.report.results.collect_results`.
        baseline: the method speed-ups are relative to (see :func:`resolve_baseline`).

    Returns:
        Columns: the group labels, ``n_seeds``, ``seeds``, ``<metric>_mean``/``<metric>_std``
        for every metric of :func:`aggregated_metrics` (std is the sample std, ddof=1, NaN
        for one seed), ``cross_dataset`` (a run of the group was first evaluated on another
        dataset than its training one), ``speedup``
        (mean FPS over the baseline's mean FPS on the same dataset, setting and variant;
        NaN where either is missing), ``speedup_std`` (first-order propagation of both
        FPS stds) and ``is_baseline``.
    """
    base = resolve_baseline(runs, baseline)
    groups = runs.groupby(GROUP_COLUMNS, sort=False, dropna=False)
    metrics = aggregated_metrics(runs)
    records = []
    for key, g in groups:
        rec = dict(zip(GROUP_COLUMNS, key))
        rec["n_seeds"] = len(g)
        rec["seeds"] = " ".join(str(s) for s in sorted(g["seed"]))
        rec["cross_dataset"] = bool(g["cross_dataset"].any()) if "cross_dataset" in g else False
        for m in metrics:
            values = pd.to_numeric(g[m], errors="coerce") if m in g else pd.Series(dtype=float)
            values = values.dropna()
            rec[f"{m}_mean"] = float(values.mean()) if len(values) else math.nan
            rec[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        records.append(rec)
    agg = pd.DataFrame(records)
    agg["is_baseline"] = agg["method"] == base
    agg["speedup"] = math.nan
    agg["speedup_std"] = math.nan
    if base is not None:
        for i, row in agg.iterrows():
            ref = agg[(agg["method"] == base) & (agg["dataset"] == row["dataset"])
                      & (agg["setting"] == row["setting"]) & (agg["variant"] == row["variant"])]
            if ref.empty:
                continue
            f, fb = row["fps_mean"], ref["fps_mean"].iloc[0]
            if math.isnan(f) or math.isnan(fb) or fb <= 0:
                continue
            agg.at[i, "speedup"] = f / fb
            sf, sb = row["fps_std"], ref["fps_std"].iloc[0]
            if not (math.isnan(sf) or math.isnan(sb)) and row["method"] != base:
                agg.at[i, "speedup_std"] = (f / fb) * math.hypot(sf / f, sb / fb)
    order = agg.assign(_base=~agg["is_baseline"]).sort_values(
        ["dataset", "setting", "variant", "_base", "method_label"], kind="stable")
    return order.drop(columns="_base").reset_index(drop=True)
