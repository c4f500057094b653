"""The demo's table, as the papers print it: toy accuracy beside paper-scale speed.

Accuracy comes from the toy sweep's runs (mean ± std over seeds); speed from a paper-scale
speed sweep's ``comparison.json`` (each method at 512x512 with CLIP ViT-B/16, random weights,
batch 1; written by ``zsseg-bench speed --preset`` and the demo), with the speed-ups over the
two-stage model (crops batched and in a loop); toy-scale FPS stays as a secondary, labelled
column. Published rows (:mod:`zsseg_bench.evaluation.published`) follow, with their sources.
``hiou_vs_fps.png`` plots toy hIoU against paper-scale FPS, published points marked.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from zsseg_bench.evaluation.published import (
    PUBLISHED_ACCURACY,
    PUBLISHED_HARDWARE,
    published_efficiency,
    published_speedup,
)
from zsseg_bench.report.plots import MARKERS, _new_figure, _save
from zsseg_bench.report.tables import MISSING, PM, TIMES, Table, format_value, to_markdown

_PARAMS = 1e6


def _speedup(x: float | None) -> str:
    return MISSING if x is None or (isinstance(x, float) and math.isnan(x)) else \
        f"{x:.1f}{TIMES}"


def _toy_by_method(agg: pd.DataFrame) -> dict[str, pd.Series]:
    inductive = agg[agg["setting"] == "inductive"] if "setting" in agg else agg
    return {r["method"]: r for _, r in inductive.iterrows()}


def _references(comparison: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, label) of the runs the speed-ups are over, in the comparison's order."""
    slow = {r["slow"] for r in comparison["ratios"]}
    return [(row["name"], row["label"]) for row in comparison["rows"] if row["name"] in slow]


def build_paper_table(agg: pd.DataFrame, comparison: dict[str, Any], dataset: str = "voc",
                      title: str = "zsseg-bench demo") -> Table:
    """Rows: every toy method (toy accuracy, paper-scale speed), every speed-only run (e.g. the
    two-stage crops in a loop; no accuracy), then the published rows of ``dataset``.

    Args:
        agg: :func:`~zsseg_bench.report.aggregate.aggregate_seeds` of the toy runs.
        comparison: the paper-scale speed sweep's ``comparison.json``.
        dataset: the published dataset whose rows are shown (the vocabulary of the speed runs).
        title: the table's title.
    """
    refs = _references(comparison)
    header = ["Method", "toy mIoU-S", "toy mIoU-U", "toy hIoU", "FPS (paper scale)",
              "Latency ms", "GFLOPs", "Learnable params (M)", "Total params (M)",
              *[f"Speed-up vs {label}" for _, label in refs], "toy FPS"]
    toy = _toy_by_method(agg)
    speed = {row["name"]: row for row in comparison["rows"]}
    ratios = {(r["fast"], r["slow"]): r["fps_ratio"] for r in comparison["ratios"]}
    rows, published = [], []
    for name in list(toy) + [n for n in speed if n not in toy]:
        t, s = toy.get(name), speed.get(name)
        cells = [str(t["method_label"]) if t is not None else s["label"]]
        for col in ("mIoU-S", "mIoU-U", "hIoU"):
            cells.append(format_value(t[f"{col}_mean"], t[f"{col}_std"], decimals=1)
                         if t is not None else MISSING)
        if s is not None:
            cells += [format_value(s["fps"]), format_value(s["latency_ms"], decimals=0),
                      format_value(s["gflops"], decimals=1),
                      format_value(s["learnable_params_m"], decimals=1),
                      format_value(s["total_params_m"], decimals=1)]
        else:
            cells += [MISSING] * 5
        for ref, _ in refs:
            cells.append(f"1.0{TIMES}" if ref == name else _speedup(ratios.get((name, ref))))
        cells.append(format_value(t["fps_mean"], t["fps_std"]) if t is not None else MISSING)
        rows.append(cells)
        published.append(False)
    accuracy = {a.method: a for a in PUBLISHED_ACCURACY
                if a.dataset == dataset and a.setting == "inductive"}
    sources = []
    for e in published_efficiency(dataset):
        a = accuracy.get(e.method)
        cells = [f"{e.method} (published, {e.hardware})"]
        cells += [format_value(v, decimals=1) for v in
                  ((a.miou_s, a.miou_u, a.hiou) if a else (None, None, None))]
        cells += [format_value(e.fps, decimals=1), format_value(1000 / e.fps, decimals=0),
                  format_value(e.gflops, decimals=1), format_value(e.learnable_params_m,
                                                                   decimals=1), MISSING]
        cells += [_speedup(published_speedup(e))] + [MISSING] * (len(refs) - 1) + [MISSING]
        rows.append(cells)
        published.append(True)
        sources.append(f"{e.method}: efficiency {e.source}"
                       + (f"; accuracy {a.source}" if a else ""))
    return Table(header, rows, published, _notes(agg, comparison, refs, sources), title)


def _notes(agg: pd.DataFrame, comparison: dict[str, Any], refs: list[tuple[str, str]],
           sources: list[str]) -> list[str]:
    it = comparison.get("iterations", {})
    size = "x".join(str(s) for s in comparison["input_size"])
    seeds = sorted(set(agg["n_seeds"])) if "n_seeds" in agg and len(agg) else [1]
    notes = [
        "toy mIoU-S / mIoU-U / hIoU: each method trained and evaluated on the toy world "
        "(inductive), " + ("one seed (no std)" if seeds == [1] else
                           f"mean {PM} sample std over {', '.join(map(str, seeds))} seeds") + ".",
        f"Paper scale: CLIP ViT-B/16 with random weights, {size}, "
        f"{comparison.get('vocabulary_size')} classes, batch 1, each method with its reference "
        f"config and inference mode, on {comparison['device_name']} "
        f"({comparison['precision']}); warm-up {it.get('warmup')}, "
        f"{it.get('repeats')} x {it.get('iters')} timed call(s) per method (a two-stage call "
        "takes minutes on a 2-core CPU). GFLOPs: fvcore, one multiply-add = one flop.",
        "Speed-up: paper-scale FPS over " + " / ".join(label for _, label in refs) + ".",
        "toy FPS: the toy models (64 px toy CLIP) at 160x160 — not the paper's claim.",
        f"Published rows: FPS on a {PUBLISHED_HARDWARE} (not comparable with ours), their "
        "speed-up over ZegFormer (the paper's two-stage baseline). Sources: "
        + "; ".join(sources) + ".",
    ]
    return notes


def plot_hiou_vs_paper_fps(agg: pd.DataFrame, comparison: dict[str, Any], path: str | Path,
                           dataset: str = "voc") -> Path:
    """Toy hIoU (error bars over seeds) against paper-scale FPS (log axis), one marker per
    method; published points (published hIoU and FPS on the paper's GPU) hollow."""
    fig = _new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    speed = {row["name"]: row for row in comparison["rows"]}
    for i, (name, t) in enumerate(_toy_by_method(agg).items()):
        s = speed.get(name)
        if s is None or not s.get("fps"):
            continue
        std = t["hIoU_std"]
        ax.errorbar(s["fps"], t["hIoU_mean"], yerr=None if math.isnan(std) else std,
                    fmt=MARKERS[i % len(MARKERS)], color=f"C{i % 10}", capsize=3,
                    label=f"{t['method_label']} (toy hIoU, paper-scale FPS here)")
    accuracy = {a.method: a for a in PUBLISHED_ACCURACY
                if a.dataset == dataset and a.setting == "inductive"}
    for e in published_efficiency(dataset):
        if e.method in accuracy:
            ax.scatter([e.fps], [accuracy[e.method].hiou], marker="*", s=140,
                       facecolors="none", edgecolors="black")
            ax.annotate(f"{e.method} (published, {e.hardware})", (e.fps, accuracy[e.method].hiou),
                        textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"FPS at paper scale ({'x'.join(map(str, comparison['input_size']))}, "
                  f"batch 1), {comparison['device_name']}")
    ax.set_ylabel("hIoU (%): toy world (ours), published (stars)")
    ax.set_title("Accuracy vs paper-scale speed")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, Path(path))


def write_paper_table(agg: pd.DataFrame, comparison: dict[str, Any], output_dir: str | Path,
                      dataset: str = "voc", title: str = "zsseg-bench demo") -> tuple[str, Path,
                                                                                        Path]:
    """Writes ``table.md`` and ``hiou_vs_fps.png`` into ``output_dir``; returns (Markdown,
    table path, plot path)."""
    from zsseg_bench.utils.file_io import atomic_write_text

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(build_paper_table(agg, comparison, dataset, title))
    atomic_write_text(out / "table.md", markdown)
    return markdown, out / "table.md", plot_hiou_vs_paper_fps(agg, comparison,
                                                              out / "hiou_vs_fps.png", dataset)
