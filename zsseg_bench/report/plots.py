"""The report's plots (matplotlib, no display needed: figures render with the Agg canvas).

- ``hiou_vs_fps.png``: accuracy-speed scatter, one marker per method, error bars over seeds.
- ``per_class_iou.png``: IoU of every class per method, unseen classes highlighted.
- ``speed_breakdown.png``: per-stage latency (stacked bars), end-to-end latency marked.
- ``seen_vs_unseen.png``: mIoU of seen and of unseen classes side by side per row of the table
  (method, setting, variant), error bars over seeds: whether a model overfits the seen classes
  shows at a glance (an ablation's rows, e.g. configs/sweeps/zegclip_ablation.yaml).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from zsseg_bench.config.setting import Setting
from zsseg_bench.utils.plot_axes import error_below

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
DPI = 120
UNSEEN_COLOUR = "#fde0c5"
UNSEEN_TEXT = "#c0392b"
_INCH_PER_CLASS = 0.35
_MAX_WIDTH_IN = 60.0


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    """Saves atomically (temp file + rename) so a partial PNG never stays behind."""
    import io

    from zsseg_bench.utils.file_io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _method_styles(labels: list[str]) -> dict[str, tuple[str, str]]:
    colours = [f"C{i}" for i in range(10)]
    return {m: (MARKERS[i % len(MARKERS)], colours[i % len(colours)])
            for i, m in enumerate(labels)}


def _no_data(path: Path, title: str, message: str) -> Path:
    fig = _new_figure(6, 2.5)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return _save(fig, path)


def plot_hiou_vs_fps(agg: pd.DataFrame, path: str | Path) -> Path:
    """Scatter of hIoU against FPS, one subplot per dataset, one marker per method.

    Error bars are the std over seeds of both quantities (stopping at 0); filled markers are
    inductive, hollow markers transductive. Rows without FPS are left out.
    """
    path = Path(path)
    title = "Accuracy vs speed"
    data = agg.dropna(subset=["fps_mean", "hIoU_mean"])
    if data.empty:
        return _no_data(path, title, "no run has both metrics.json and speed.json")
    datasets = list(dict.fromkeys(data["dataset"]))
    styles = _method_styles(list(dict.fromkeys(agg["method_label"])))
    fig = _new_figure(5.5 * len(datasets), 4.5)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets):
        for _, r in data[data["dataset"] == dataset].iterrows():
            marker, colour = styles[r["method_label"]]
            hollow = r["setting"] == Setting.TRANSDUCTIVE
            label = _group_label(r["method_label"], r["setting"], r["variant"])
            ax.errorbar(r["fps_mean"], r["hIoU_mean"],
                        xerr=error_below(r["fps_mean"], r["fps_std"]),
                        yerr=error_below(r["hIoU_mean"], r["hIoU_std"]),
                        fmt=marker, color=colour, markersize=9, capsize=4,
                        markerfacecolor="none" if hollow else colour, label=label)
        ax.set_xlabel("FPS (images / s)")
        ax.set_ylabel("hIoU (%)")
        ax.set_title(f"{title}: {dataset}")
        ax.grid(True, alpha=0.3)
        ax.margins(0.2)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def plot_per_class_iou(per_class: pd.DataFrame, path: str | Path) -> Path:
    """Grouped bars of per-class IoU (mean over seeds) per method, one row per dataset;
    unseen classes get a shaded background and red labels."""
    path = Path(path)
    title = "Per-class IoU"
    if per_class.empty:
        return _no_data(path, title, "no per-class IoU (IoU-<class>) in any metrics.json")
    per_class = per_class.copy()
    per_class["group"] = [_group_label(*t) for t in zip(
        per_class["method_label"], per_class["setting"], per_class["variant"])]
    datasets = list(dict.fromkeys(per_class["dataset"]))
    max_classes = max(per_class[per_class["dataset"] == d]["class"].nunique() for d in datasets)
    width = min(_MAX_WIDTH_IN, max(8.0, _INCH_PER_CLASS * max_classes + 2))
    fig = _new_figure(width, 3.8 * len(datasets))
    axes = fig.subplots(len(datasets), 1, squeeze=False)[:, 0]
    for ax, dataset in zip(axes, datasets):
        d = per_class[per_class["dataset"] == dataset]
        classes = list(d.sort_values("order", kind="stable")["class"].drop_duplicates())
        unseen = set(d.loc[d["unseen"], "class"])
        groups = list(dict.fromkeys(d["group"]))
        mean = d.groupby(["group", "class"])["iou"].mean()
        std = d.groupby(["group", "class"])["iou"].std(ddof=1)
        bar_w = 0.8 / len(groups)
        for i, c in enumerate(classes):
            if c in unseen:
                ax.axvspan(i - 0.5, i + 0.5, color=UNSEEN_COLOUR, zorder=0)
        for j, g in enumerate(groups):
            xs = [i - 0.4 + bar_w * (j + 0.5) for i in range(len(classes))]
            ys = [mean.get((g, c), math.nan) for c in classes]
            es = [std.get((g, c), math.nan) for c in classes]
            es = None if all(math.isnan(e) for e in es) else [0 if math.isnan(e) else e
                                                              for e in es]
            ax.bar(xs, ys, width=bar_w, yerr=es, capsize=2, label=g, color=f"C{j % 10}",
                   zorder=2)
        ax.set_xticks(range(len(classes)))
        ax.set_xticklabels(classes, rotation=60, ha="right", fontsize=8)
        for tick, c in zip(ax.get_xticklabels(), classes):
            if c in unseen:
                tick.set_color(UNSEEN_TEXT)
                tick.set_fontweight("bold")
        ax.set_xlim(-0.5, len(classes) - 0.5)
        ax.set_ylim(0, 100)
        ax.set_ylabel("IoU (%)")
        ax.set_title(f"{title}: {dataset} (unseen classes shaded, red labels)")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Patch(facecolor=UNSEEN_COLOUR, label="unseen class"))
        ax.legend(handles=handles, fontsize=8, loc="upper right")
        ax.grid(True, axis="y", alpha=0.3, zorder=1)
    fig.tight_layout()
    return _save(fig, path)


def plot_seen_unseen(agg: pd.DataFrame, path: str | Path) -> Path:
    """Horizontal bars of mIoU-S and mIoU-U (mean ± std over seeds) for every row of ``agg``
    (one subplot per dataset, rows in the table's order, top to bottom), hIoU written beside
    them. Rows without both metrics are left out."""
    path = Path(path)
    title = "Seen vs unseen mIoU"
    data = agg.dropna(subset=["mIoU-S_mean", "mIoU-U_mean"])
    if data.empty:
        return _no_data(path, title, "no run with both seen and unseen classes")
    datasets = list(dict.fromkeys(data["dataset"]))
    n_rows = max(int((data["dataset"] == d).sum()) for d in datasets)
    fig = _new_figure(8.0 * len(datasets), 1.0 + 0.55 * n_rows)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    bars = (("mIoU-S", "seen classes", "C0", 0.2), ("mIoU-U", "unseen classes", "C3", -0.2))
    for ax, dataset in zip(axes, datasets):
        d = data[data["dataset"] == dataset]
        labels = [_group_label(*t) for t in zip(d["method_label"], d["setting"], d["variant"])]
        ys = list(range(len(d)))[::-1]  # the first row on top
        for col, name, colour, shift in bars:
            means = d[f"{col}_mean"].tolist()
            stds = [0.0 if math.isnan(s) else s for s in d[f"{col}_std"].fillna(math.nan)]
            ax.barh([y + shift for y in ys], means, height=0.4, xerr=stds, capsize=2,
                    color=colour, label=f"mIoU, {name}", zorder=2)
        for y, (_, r) in zip(ys, d.iterrows()):
            h = r.get("hIoU_mean", math.nan)
            if not math.isnan(h):
                ax.text(101, y, f"hIoU {h:.1f}", va="center", fontsize=8)
        ax.set_yticks(ys)
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_xlabel("mIoU (%), mean ± std over seeds")
        ax.set_title(f"{title}: {dataset}")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
        ax.grid(True, axis="x", alpha=0.3, zorder=1)
    fig.tight_layout()
    return _save(fig, path)


def _group_label(method_label: str, setting: str, variant: str, dataset: str | None = None
                 ) -> str:
    """A method's display label in plots: ``label[ · dataset][ (setting)][ [variant]]``, the
    inductive setting and the default variant left out."""
    return (method_label + ("" if dataset is None else f" · {dataset}")
            + ("" if setting == Setting.INDUCTIVE else f" ({setting})")
            + ("" if variant == "default" else f" [{variant}]"))


def plot_speed_breakdown(breakdown: pd.DataFrame, agg: pd.DataFrame, path: str | Path) -> Path:
    """Horizontal stacked bars of the per-stage latency (ms, mean over seeds) per method.

    Only top-level stages are stacked (a nested ``outer/inner`` stage is part of ``outer``).
    A black tick marks the end-to-end mean latency; a method whose speed.json has no stage
    times gets one grey bar of its latency.
    """
    path = Path(path)
    title = "Latency breakdown (ms / image)"
    rows = agg.dropna(subset=["latency_ms_mean"])
    b = breakdown[~breakdown["stage"].str.contains("/", regex=False)].copy()
    if rows.empty and b.empty:
        return _no_data(path, title, "no speed.json with latency or breakdown_ms")
    b["group"] = [_group_label(m, s, v, d) for m, d, s, v in
                  zip(b["method_label"], b["dataset"], b["setting"], b["variant"])]
    latency = {_group_label(r["method_label"], r["setting"], r["variant"], r["dataset"]):
               r["latency_ms_mean"] for _, r in rows.iterrows()}
    groups = list(dict.fromkeys([*latency, *b["group"]]))
    stages = list(b.sort_values("order", kind="stable")["stage"].drop_duplicates())
    mean = b.groupby(["group", "stage"])["ms"].mean()
    has_stages = set(b["group"])
    fig = _new_figure(10, max(2.5, 1.2 + 0.6 * len(groups)))
    ax = fig.add_subplot()
    left = [0.0] * len(groups)
    for k, stage in enumerate(stages):
        widths = [float(mean.get((g, stage), 0.0)) for g in groups]
        ax.barh(range(len(groups)), widths, left=left, label=stage, color=f"C{k % 10}")
        left = [a + w for a, w in zip(left, widths)]
    unmarked = [i for i, g in enumerate(groups) if g not in has_stages]
    if unmarked:
        ax.barh(unmarked, [latency[groups[i]] for i in unmarked], color="0.8", hatch="//",
                label="no stages marked")
        for i in unmarked:
            left[i] = latency[groups[i]]
    ends = []
    for i, g in enumerate(groups):
        lat = latency.get(g, math.nan)
        end = left[i]
        if not math.isnan(lat):
            ax.plot([lat, lat], [i - 0.4, i + 0.4], color="black", linewidth=2)
            end = max(end, lat)
        ends.append(end)
        ax.text(end, i, f"  {lat if not math.isnan(lat) else left[i]:.1f} ms", va="center",
                fontsize=8)
    ax.plot([], [], color="black", linewidth=2, label="end-to-end latency")
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels(groups)
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.set_xlabel("ms per image")
    ax.set_title(title)
    # Room for the latency labels (zero-width stacked bars pin autoscaling to the data).
    ax.set_xlim(0, max(ends, default=1.0) * 1.2 or 1.0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
