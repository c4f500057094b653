"""The demo's tables and picture: what was measured here, apart from what the papers published.

``table.md`` holds two tables:

- **Measured here**: each method's toy accuracy (trained and evaluated on the toy world; mean ±
  std over seeds), how long it trained (a run shorter than its config's ``SOLVER.MAX_ITER`` is
  marked *short*), its speed at paper scale from a paper-scale speed sweep's
  ``comparison.json`` (CLIP ViT-B/16 with random weights, 512x512, batch 1; written by
  ``zsseg-bench speed-preset`` and the demo) with the device named in the header, the
  speed-ups over the two-stage model (crops batched and in a loop), and the toy-scale FPS on
  its device. Without a comparison (``demo --quick``) the paper-scale columns are left out.
- **Published**: the papers' accuracy on the real benchmark and FPS on their GPU, with the
  speed-up the paper itself gives (over ZegFormer); never in a column of ours.

``hiou_vs_fps.png`` has one panel per table: toy hIoU against our FPS (paper scale, else toy
scale) on our device, and the published hIoU against the published FPS on the paper's GPU. The
legend sits below the panels, so it hides no point.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from zsseg_bench.config.setting import Setting
from zsseg_bench.evaluation.published import (
    DATASET_LABELS,
    PUBLISHED_ACCURACY,
    PUBLISHED_BASELINE,
    PUBLISHED_HARDWARE,
    published_efficiency,
    published_speedup,
)
from zsseg_bench.report.plots import MARKERS, _new_figure, _save
from zsseg_bench.report.tables import MISSING, PM, TIMES, Table, format_value, to_markdown
from zsseg_bench.utils.plot_axes import error_below, plain_log_axis

_PARAMS = 1e6


def _speedup(x: float | None) -> str:
    return MISSING if x is None or (isinstance(x, float) and math.isnan(x)) else \
        f"{x:.1f}{TIMES}"


def _toy_by_method(agg: pd.DataFrame) -> dict[str, pd.Series]:
    inductive = agg[agg["setting"] == Setting.INDUCTIVE] if "setting" in agg else agg
    return {r["method"]: r for _, r in inductive.iterrows()}


def _references(comparison: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, label) of the runs the speed-ups are over, in the comparison's order."""
    slow = {r["slow"] for r in comparison["ratios"]}
    return [(row["name"], row["label"]) for row in comparison["rows"] if row["name"] in slow]


def _isnan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def training_cell(row: pd.Series) -> str:
    """``1000 it``, or ``20 of 1000 it (short)`` for a run shorter than its config's."""
    done, planned = row.get("iteration_mean"), row.get("config_max_iter_mean")
    if _isnan(done):
        return MISSING
    if not _isnan(planned) and done < planned:
        return f"{done:.0f} of {planned:.0f} it (short)"
    return f"{done:.0f} it"


def short_runs(agg: pd.DataFrame) -> list[str]:
    """Labels of the methods whose toy runs stopped before their config's ``MAX_ITER``."""
    return [str(r["method_label"]) for r in _toy_by_method(agg).values()
            if training_cell(r).endswith("(short)")]


def toy_device(runs: pd.DataFrame | None) -> str | None:
    """The device the toy-scale speed runs were timed on (``speed.json``)."""
    if runs is None or "protocol.device_name" not in runs:
        return None
    names = sorted({str(v) for v in runs["protocol.device_name"].dropna()})
    return " / ".join(names) or None


def build_measured_table(agg: pd.DataFrame, comparison: dict[str, Any] | None,
                         runs: pd.DataFrame | None = None,
                         title: str = "Measured here") -> Table:
    """Rows: every toy method (toy accuracy and training length; paper-scale speed when
    ``comparison`` is given), then every speed-only run of the comparison (e.g. the two-stage
    crops in a loop; no accuracy).

    Args:
        agg: :func:`~zsseg_bench.report.aggregate.aggregate_seeds` of the toy runs.
        comparison: the paper-scale speed sweep's ``comparison.json``, or None (skipped).
        runs: the toy runs (:func:`~zsseg_bench.report.results.collect_results`), for the
            device of the toy-scale speed.
        title: the table's title.
    """
    refs = _references(comparison) if comparison else []
    speed = {row["name"]: row for row in comparison["rows"]} if comparison else {}
    ratios = {(r["fast"], r["slow"]): r["fps_ratio"] for r in comparison["ratios"]} \
        if comparison else {}
    header = ["Method", "toy mIoU-S", "toy mIoU-U", "toy hIoU", "toy training"]
    if comparison:
        header += [f"FPS at paper scale ({comparison['device_name']})", "Latency ms",
                   "GFLOPs", "Learnable params (M)", "Total params (M)",
                   *[f"Speed-up vs {label}" for _, label in refs]]
    header.append(f"toy FPS ({toy_device(runs) or 'this device'})")
    toy = _toy_by_method(agg)
    rows = []
    for name in list(toy) + [n for n in speed if n not in toy]:
        t, s = toy.get(name), speed.get(name)
        cells = [str(t["method_label"]) if t is not None else s["label"]]
        for col in ("mIoU-S", "mIoU-U", "hIoU"):
            cells.append(format_value(t[f"{col}_mean"], t[f"{col}_std"], decimals=1)
                         if t is not None else MISSING)
        cells.append(training_cell(t) if t is not None else MISSING)
        if comparison:
            if s is not None:
                cells += [format_value(s["fps"]), format_value(s["latency_ms"], decimals=0),
                          format_value(s["gflops"], decimals=1),
                          format_value(s["learnable_params_m"], decimals=1),
                          format_value(s["total_params_m"], decimals=1)]
            else:
                cells += [MISSING] * 5
            for ref, _ in refs:
                cells.append(f"1.0{TIMES}" if ref == name else
                             _speedup(ratios.get((name, ref))))
        cells.append(format_value(t["fps_mean"], t["fps_std"]) if t is not None else MISSING)
        rows.append(cells)
    return Table(header, rows, [False] * len(rows), _measured_notes(agg, comparison, refs),
                 title)


def build_published_table(dataset: str = "voc",
                          title: str = "Published (not measured here)") -> Table:
    """The papers' rows on ``dataset``: accuracy on the real benchmark, FPS on the paper's GPU,
    the speed-up the paper gives (over its two-stage baseline, ZegFormer), sources."""
    name = DATASET_LABELS.get(dataset, dataset)
    header = ["Method", f"{name} mIoU-S", f"{name} mIoU-U", f"{name} hIoU",
              f"FPS ({PUBLISHED_HARDWARE})", "Latency ms", "GFLOPs", "Learnable params (M)",
              f"Speed-up vs {PUBLISHED_BASELINE}"]
    accuracy = {a.method: a for a in PUBLISHED_ACCURACY
                if a.dataset == dataset and a.setting == Setting.INDUCTIVE}
    rows, sources = [], []
    for e in published_efficiency(dataset):
        a = accuracy.get(e.method)
        cells = [e.method]
        cells += [format_value(v, decimals=1) for v in
                  ((a.miou_s, a.miou_u, a.hiou) if a else (None, None, None))]
        cells += [format_value(e.fps, decimals=1), format_value(1000 / e.fps, decimals=0),
                  format_value(e.gflops, decimals=1),
                  format_value(e.learnable_params_m, decimals=1)]
        cells.append("reference" if e.method == PUBLISHED_BASELINE
                     else _speedup(published_speedup(e)))
        rows.append(cells)
        sources.append(f"{e.method}: efficiency {e.source}"
                       + (f"; accuracy {a.source}" if a else ""))
    notes = [f"Numbers from the papers, not measured here: accuracy on {name} (inductive), FPS "
             f"on a {PUBLISHED_HARDWARE} at 512x512. Not comparable with the toy accuracy or "
             "the CPU speed above. Sources: " + "; ".join(sources) + "."]
    return Table(header, rows, [True] * len(rows), notes, title)


def _measured_notes(agg: pd.DataFrame, comparison: dict[str, Any] | None,
                    refs: list[tuple[str, str]]) -> list[str]:
    seeds = sorted(set(agg["n_seeds"])) if "n_seeds" in agg and len(agg) else [1]
    notes = [
        "toy mIoU-S / mIoU-U / hIoU: each method trained and evaluated on the toy world "
        "(inductive), " + ("one seed (no std)" if seeds == [1] else
                           f"mean {PM} sample std over {', '.join(map(str, seeds))} seeds") + ".",
        "toy training: iterations trained; (short): fewer than the method's config "
        "(SOLVER.MAX_ITER) — the accuracy of a short run says nothing about the method.",
    ]
    if comparison:
        it = comparison.get("iterations", {})
        size = "x".join(str(s) for s in comparison["input_size"])
        notes += [
            f"Paper scale: CLIP ViT-B/16 with random weights, {size}, "
            f"{comparison.get('vocabulary_size')} classes, batch 1, each method with its "
            f"reference config and inference mode, on {comparison['device_name']} "
            f"({comparison['precision']}); warm-up {it.get('warmup')}, "
            f"{it.get('repeats')} x {it.get('iters')} timed call(s) per method (a two-stage "
            "call takes minutes on a 2-core CPU). GFLOPs: fvcore, one multiply-add = one flop.",
            "Speed-up: paper-scale FPS over " + " / ".join(label for _, label in refs)
            + ", measured here.",
        ]
    else:
        notes.append("Paper-scale speed: not measured in this run (`zsseg-bench speed-preset "
                     "paper-voc` measures it).")
    notes.append("toy FPS: the toy models (64 px toy CLIP) at 160x160 — not the paper's claim.")
    return notes


def _published_points(dataset: str) -> list[tuple[str, float, float]]:
    accuracy = {a.method: a for a in PUBLISHED_ACCURACY
                if a.dataset == dataset and a.setting == Setting.INDUCTIVE}
    return [(e.method, e.fps, accuracy[e.method].hiou) for e in published_efficiency(dataset)
            if e.method in accuracy]


def plot_hiou_vs_paper_fps(agg: pd.DataFrame, comparison: dict[str, Any] | None,
                           path: str | Path, dataset: str = "voc",
                           runs: pd.DataFrame | None = None, title: str | None = None) -> Path:
    """Left: toy hIoU (error bars over seeds, never below 0) against our FPS on our device
    (paper scale; toy scale without ``comparison``). Right: the published hIoU against the
    published FPS on the paper's GPU. One legend below both panels."""
    fig = _new_figure(11.0, 4.8)
    left, right = fig.subplots(1, 2)
    speed = {row["name"]: row for row in comparison["rows"]} if comparison else {}
    handles = []
    for i, (name, t) in enumerate(_toy_by_method(agg).items()):
        if comparison:
            s = speed.get(name)
            fps = s.get("fps") if s else None
        else:
            fps = t["fps_mean"]
        if _isnan(fps) or not fps:
            continue
        mean, std = t["hIoU_mean"], t["hIoU_std"]
        yerr = error_below(mean, std)
        label = str(t["method_label"]) + (" (short run)" if training_cell(t).endswith(
            "(short)") else "")
        handles.append(left.errorbar(fps, mean, yerr=yerr, fmt=MARKERS[i % len(MARKERS)],
                                     color=f"C{i % 10}", capsize=3, markersize=8,
                                     label=label))
    where = (f"paper scale ({'x'.join(map(str, comparison['input_size']))}, batch 1)"
             if comparison else "toy scale (160x160)")
    device = comparison["device_name"] if comparison else (toy_device(runs) or "this device")
    left.set_xscale("log")
    plain_log_axis(left.xaxis)
    left.set_xlabel(f"FPS at {where}\non {device}")
    left.set_ylabel("toy hIoU (%)")
    left.set_title("Measured here: toy accuracy, our speed")
    left.grid(True, which="both", alpha=0.3)
    left.margins(0.25)
    top = left.get_ylim()[1]
    left.set_ylim(-0.04 * top, top)  # no error bar below 0; a point at 0 stays whole
    name = DATASET_LABELS.get(dataset, dataset)
    for j, (method, fps, hiou) in enumerate(_published_points(dataset)):
        handles.append(right.scatter([fps], [hiou], marker="*", s=160, color=f"C{5 + j}",
                                     edgecolors="black", label=f"{method} (published)"))
        right.annotate(method, (fps, hiou), textcoords="offset points", xytext=(8, -4),
                       fontsize=8)
    right.set_xscale("log")
    plain_log_axis(right.xaxis)
    right.set_xlabel(f"FPS (published, {PUBLISHED_HARDWARE}, 512x512)")
    right.set_ylabel(f"{name} hIoU (%), published")
    right.set_title(f"Published: {name}, the papers' GPU")
    right.grid(True, which="both", alpha=0.3)
    right.margins(0.3)
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8,
                   bbox_to_anchor=(0.5, 0.0), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95 if title else 1))
    return _save(fig, Path(path))


def write_paper_table(agg: pd.DataFrame, comparison: dict[str, Any] | None,
                      output_dir: str | Path, dataset: str = "voc",
                      title: str = "zsseg-bench demo", runs: pd.DataFrame | None = None,
                      banner: str | None = None) -> tuple[str, Path, Path]:
    """Writes ``table.md`` (the measured table, then the published one) and
    ``hiou_vs_fps.png`` into ``output_dir``; returns (Markdown, table path, plot path).

    Args:
        agg, comparison, runs: as :func:`build_measured_table`.
        output_dir: where to write.
        dataset: the published dataset (the vocabulary of the paper-scale runs).
        title: the title of the Markdown file.
        banner: a warning printed above the tables and on the picture (e.g. a quick look).
    """
    from zsseg_bench.utils.file_io import atomic_write_text

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    short = short_runs(agg)
    if short and banner is None:
        banner = (f"Short runs ({', '.join(short)}): fewer iterations than their configs — "
                  "not meaningful accuracy")
    head = f"# {title}\n\n" + (f"**{banner}**\n\n" if banner else "")
    measured = to_markdown(build_measured_table(agg, comparison, runs, "Measured here"))
    published = to_markdown(build_published_table(dataset))
    markdown = head + measured.replace("# ", "## ", 1) + "\n" + published.replace("# ", "## ", 1)
    atomic_write_text(out / "table.md", markdown)
    plot = plot_hiou_vs_paper_fps(agg, comparison, out / "hiou_vs_fps.png", dataset, runs,
                                  title=banner)
    return markdown, out / "table.md", plot
