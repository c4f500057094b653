"""``zsseg-bench report D``: results.csv, seed aggregates, table.md/.tex and the plots.

``table.md`` / ``table.tex`` hold the comparison table of the runs evaluated first on their
training benchmark (the in-domain table), then, if any run was evaluated on several test
datasets or on another dataset (cross-dataset), the table with one block of columns per test
dataset; a file holds only the tables that have rows.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TextIO

from zsseg_bench.report.aggregate import aggregate_seeds
from zsseg_bench.report.plots import (
    plot_hiou_vs_fps,
    plot_per_class_iou,
    plot_seen_unseen,
    plot_speed_breakdown,
)
from zsseg_bench.report.published import canonical_dataset, published_rows
from zsseg_bench.report.results import TARGET_SEP, collect_results, target_names
from zsseg_bench.report.tables import (
    build_cross_dataset_table,
    build_table,
    to_latex,
    to_markdown,
)
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_text
from zsseg_bench.utils.run_dir import make_output_dir

PUBLISHED_CHOICES = ("auto", "all", "none")
RESULTS_CSV = "results.csv"
AGGREGATE_CSV = "results_aggregated.csv"
TABLE_MD = "table.md"
TABLE_TEX = "table.tex"
PLOT_FILES = ("hiou_vs_fps.png", "per_class_iou.png", "speed_breakdown.png",
              "seen_vs_unseen.png")


@dataclasses.dataclass
class ReportOutputs:
    """Paths of everything a report wrote, and the Markdown table text."""

    results_csv: Path
    aggregate_csv: Path
    table_md: Path
    table_tex: Path
    plots: list[Path]
    markdown: str
    warnings: list[str]


def write_report(root: str | Path, output_dir: str | Path | None = None,
                 baseline: str | None = None, published: str = "auto",
                 title: str | None = None) -> ReportOutputs:
    """Collects the runs under ``root`` and writes the report files.

    Args:
        root: a sweep directory (or any directory with run directories below it).
        output_dir: where to write (default: ``root``).
        baseline: the method speed-ups are relative to (default: the sweep's ``baseline``,
            else the installed method marked ``reference``).
        published: reference rows from the papers: ``auto`` (only for datasets among the
            runs), ``all`` or ``none``.
        title: the table's title (default: from the directory name).

    Returns:
        The written paths and the table text.
    """
    if published not in PUBLISHED_CHOICES:
        raise UserError(f"report: --published must be one of {', '.join(PUBLISHED_CHOICES)}")
    root = Path(root)
    out = Path(output_dir) if output_dir is not None else root
    collected = collect_results(root)
    make_output_dir(out, "--output")
    warnings = []
    if collected.unfinished:
        warnings.append(f"{len(collected.unfinished)} unfinished run(s) (without metrics.json, "
                        "or speed.json for a speed-only run) left out: "
                        + ", ".join(Path(d).name for d in collected.unfinished))
    if collected.other_data:
        warnings.append(f"{len(collected.other_data)} run(s) on other (older) data than the "
                        "newest runs of the same dataset left out (their metrics.json record "
                        "another fingerprint): " + ", ".join(collected.other_data))
    if collected.duplicates:
        warnings.append(f"{len(collected.duplicates)} older run(s) with the same method/"
                        "dataset/setting/variant/seed as a newer one left out: "
                        + ", ".join(collected.duplicates))
    runs = collected.runs
    if runs.empty:
        raise UserError(f"report: no finished run under {root} (none has train/metrics.json, "
                        "or speed/speed.json for a speed-only run); wait for the sweep or "
                        "re-launch it")
    agg = aggregate_seeds(runs, baseline=baseline)
    title = title or f"Results: {root.resolve().name}"
    tables = []
    in_domain = agg[~agg["cross_dataset"]]
    if not in_domain.empty:
        domain_runs = runs[~runs["cross_dataset"]]
        if published == "none":
            pub = []
        elif published == "all":
            pub = published_rows(None)
        else:
            keys = {canonical_dataset(d) for d in domain_runs["dataset"]} - {None}
            pub = published_rows(keys) if keys else []
        tables.append(build_table(in_domain, domain_runs, pub, title=title))
    targets = [f"{t}{TARGET_SEP}mIoU" for t in target_names(runs.columns)]
    if targets:
        cross_runs = runs[runs[targets].notna().any(axis=1)]
        tables.append(build_cross_dataset_table(agg, cross_runs,
                                                title=f"{title} (cross-dataset)"))
    outputs = ReportOutputs(out / RESULTS_CSV, out / AGGREGATE_CSV, out / TABLE_MD,
                            out / TABLE_TEX, [out / p for p in PLOT_FILES],
                            "\n".join(to_markdown(t) for t in tables), warnings)
    atomic_write_text(outputs.results_csv, runs.to_csv(index=False))
    atomic_write_text(outputs.aggregate_csv, agg.to_csv(index=False))
    atomic_write_text(outputs.table_md, outputs.markdown)
    atomic_write_text(outputs.table_tex, "\n".join(to_latex(t) for t in tables))
    plot_hiou_vs_fps(in_domain, outputs.plots[0])
    plot_per_class_iou(collected.per_class, outputs.plots[1])
    plot_speed_breakdown(collected.breakdown, agg, outputs.plots[2])
    plot_seen_unseen(in_domain, outputs.plots[3])
    return outputs


def print_report(outputs: ReportOutputs, stream: TextIO | None = None) -> None:
    """Prints the Markdown table, warnings and the paths of the files written."""
    stream = stream or sys.stdout
    print(outputs.markdown, file=stream)
    for w in outputs.warnings:
        print(f"warning: {w}", file=stream)
    print("wrote:", file=stream)
    for p in [outputs.results_csv, outputs.aggregate_csv, outputs.table_md, outputs.table_tex,
              *outputs.plots]:
        print(f"  {p}", file=stream)
    stream.flush()
