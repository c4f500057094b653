"""``table.md`` and ``table.tex``: the comparison table (measured rows, then published rows) and,
for runs evaluated on several test datasets (cross-dataset), a table with one block of columns
per test dataset."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from zsseg_bench.evaluation.published import PUBLISHED_BASELINE
from zsseg_bench.report.results import SPLIT_COLUMNS, TARGET_SEP, target_names

MISSING = "–"
PM = "±"
TIMES = "×"
#: Header of each column and how it is filled from an aggregate row.
COLUMNS = ("Method", "Setting", "Dataset", "mIoU-S", "mIoU-U", "hIoU", "pAcc", "FPS",
           "GFLOPs", "Learnable params (M)", "Speed-up")
_ACCURACY = ("mIoU-S", "mIoU-U", "hIoU", "pAcc")
#: Columns of each test dataset's block in the cross-dataset table: mIoU always, the seen /
#: unseen groups where that dataset has both.
_TARGET_ALL = ("mIoU",)
_TARGET_SPLIT = ("mIoU-S", "mIoU-U", "hIoU")
#: Left-aligned text columns; every other column is a number.
_TEXT_COLUMNS = ("Method", "Setting", "Dataset", "Variant", "Trained on")
_PARAMS_UNIT = 1e6
#: Fields of speed.json's ``protocol`` summarised under the table (all are in results.csv).
PROTOCOL_NOTE_KEYS = ("device_name", "device", "threads", "precision", "input_size", "mode",
                      "batch_size", "vocabulary_size", "text_embeddings_cached")
_SIG_DIGITS = 3
_MAX_DECIMALS = 4


@dataclasses.dataclass
class Table:
    """A formatted table: header, rows of cell strings, which rows are published, notes, and
    optionally ``groups``: (label, number of columns) spanning the header, left to right (an
    empty label spans columns of no group)."""

    header: list[str]
    rows: list[list[str]]
    published: list[bool]
    notes: list[str]
    title: str
    groups: list[tuple[str, int]] | None = None

    def column_titles(self) -> list[str]:
        """Each column's title with its group's label in front (one header row)."""
        if not self.groups:
            return list(self.header)
        labels = [label for label, span in self.groups for _ in range(span)]
        return [f"{g} {h}" if g else h for g, h in zip(labels, self.header)]


def _isnan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _decimals(x: float) -> int:
    if x == 0 or _isnan(x):
        return 1
    return int(min(_MAX_DECIMALS, max(0, _SIG_DIGITS - 1 - math.floor(math.log10(abs(x))))))


def format_value(mean: Any, std: Any = None, decimals: int | None = None) -> str:
    """``mean ± std`` (std omitted when missing); ``decimals`` None = 3 significant digits."""
    if _isnan(mean):
        return MISSING
    d = _decimals(mean) if decimals is None else decimals
    text = f"{mean:.{d}f}"
    if not _isnan(std):
        text += f" {PM} {std:.{d}f}"
    return text


def _speedup(x: Any, std: Any = None) -> str:
    if _isnan(x):
        return MISSING
    text = f"{x:.2f}{TIMES}"
    if not _isnan(std):
        text = f"{x:.2f} {PM} {std:.2f}{TIMES}"
    return text


def build_table(agg: pd.DataFrame, runs: pd.DataFrame, published: Sequence[dict] = (),
                title: str = "Zero-shot segmentation: accuracy and speed") -> Table:
    """Formats the aggregate rows (and published reference rows) of a report.

    Args:
        agg: :func:`~zsseg_bench.report.aggregate.aggregate_seeds` output.
        runs: the per-run table (for the speed protocol and seed notes).
        published: rows of :func:`~zsseg_bench.report.published.published_rows`.
        title: the table's title.
    """
    show_variant = agg["variant"].nunique() > 1 or (agg["variant"] != "default").any()
    header = list(COLUMNS)
    if show_variant:
        header.insert(3, "Variant")
    rows, is_pub = [], []
    for _, r in agg.iterrows():
        cells = [r["method_label"], r["setting"], r["dataset"]]
        if show_variant:
            cells.append(r["variant"])
        for col in _ACCURACY:
            cells.append(format_value(r[f"{col}_mean"], r[f"{col}_std"], decimals=1))
        cells.append(format_value(r["fps_mean"], r["fps_std"]))
        cells.append(format_value(r["gflops_mean"]))  # deterministic: no std
        cells.append(format_value(r["params_learnable_mean"] / _PARAMS_UNIT))
        cells.append(_speedup(r["speedup"], r["speedup_std"]))
        rows.append(cells)
        is_pub.append(False)
    for p in published:
        cells = [f"{p['method_label']} (published)", p["setting"], p["dataset"]]
        if show_variant:
            cells.append(MISSING)
        for col in _ACCURACY:
            cells.append(format_value(p[col], decimals=1))
        cells += [format_value(p["fps"]), format_value(p["gflops"]),
                  format_value(p["params_learnable_m"]), _published_speedup(p)]
        rows.append(cells)
        is_pub.append(True)
    return Table(header, rows, is_pub, _notes(agg, runs, published), title)


def _published_speedup(row: dict) -> str:
    """A published row's speed-up, over the paper's own two-stage baseline (named: it is not
    the measured baseline of the column); the baseline itself is the reference."""
    if _isnan(row["speedup"]):
        return MISSING
    if row["method_label"] == PUBLISHED_BASELINE:
        return "reference (published)"
    return f"{_speedup(row['speedup'])} vs {PUBLISHED_BASELINE}"


def _protocol_value(run: pd.Series, key: str) -> str | None:
    """One run's ``protocol.<key>`` as shown under the table (slide windows spelled out)."""
    value = run.get(f"protocol.{key}")
    if _isnan(value):
        return None
    if key == "mode" and value == "slide" and isinstance(run.get("protocol.slide"), str):
        slide = json.loads(run["protocol.slide"])
        crop, stride = slide.get("crop"), slide.get("stride")
        if crop and stride:
            return f"slide ({crop[0]}×{crop[1]} windows, stride {stride[0]}×{stride[1]})"
    return str(value)


def _protocol_notes(runs: pd.DataFrame) -> list[str]:
    """The speed protocol shared by every run, then the fields that differ, per method."""
    same, differ = [], []
    for key in PROTOCOL_NOTE_KEYS:
        by_method: dict[str, set[str]] = {}
        for _, run in runs.iterrows():
            value = _protocol_value(run, key)
            if value is not None:
                by_method.setdefault(run["method_label"], set()).add(value)
        values = set().union(*by_method.values()) if by_method else set()
        if len(values) == 1:
            same.append(f"{key}={values.pop()}")
        elif values:
            differ.append(f"{key}: " + "; ".join(f"{m} {' / '.join(sorted(v))}"
                                                  for m, v in sorted(by_method.items())))
    notes = ["Speed protocol: " + ", ".join(same) + "."] if same else []
    if differ:
        notes.append("Speed protocol, per method: " + "; ".join(differ) + ".")
    return notes


def _seeds_note(agg: pd.DataFrame) -> str:
    counts = sorted(set(agg["n_seeds"]))
    if counts == [1]:
        return "One seed per row (no std)."
    return f"Mean {PM} sample std over seeds ({', '.join(map(str, counts))} seeds per row)."


def _notes(agg: pd.DataFrame, runs: pd.DataFrame, published: Sequence[dict]) -> list[str]:
    notes = [_seeds_note(agg)]
    base = agg.loc[agg["is_baseline"], "method_label"].unique()
    if len(base):
        notes.append(f"Speed-up: FPS relative to {base[0]} on the same dataset and setting.")
    notes.append("mIoU-S / mIoU-U: mean IoU over seen / unseen classes; "
                 "hIoU = 2·S·U / (S + U); pAcc: pixel accuracy (%).")
    notes += _protocol_notes(runs)
    regions = sorted({str(v) for v in runs["protocol.timed_region"].dropna()}) \
        if "protocol.timed_region" in runs else []
    if regions:
        notes.append("Timed region: " + " / ".join(regions) + ".")
    missing_speed = agg[agg["fps_mean"].isna()]["method_label"].tolist()
    if missing_speed:
        notes.append(f"No speed.json for: {', '.join(missing_speed)} (FPS blank).")
    if published:
        sources = sorted({p["source"] for p in published})
        notes.append("Rows marked (published) are numbers from the papers, not measured here; "
                     "their FPS was measured on a GTX 1080Ti at 512×512 and is not comparable "
                     "with measured FPS. Sources: " + "; ".join(sources) + ".")
    return notes


def _split_sizes(runs: pd.DataFrame, target: str) -> list[tuple[int, int]]:
    """The distinct (seen, unseen) class counts of ``target`` among ``runs``."""
    cols = [f"{target}{TARGET_SEP}{c}" for c in SPLIT_COLUMNS]
    pairs = runs[cols].dropna().drop_duplicates()
    return [(int(a), int(b)) for a, b in pairs.itertuples(index=False)]


def build_cross_dataset_table(agg: pd.DataFrame, runs: pd.DataFrame,
                              title: str = "Cross-dataset evaluation") -> Table:
    """The rows of ``agg`` evaluated on several test datasets (or on another dataset than
    their training one): one block of columns per test dataset, in ``DATASETS.TEST`` order.

    Args:
        agg: :func:`~zsseg_bench.report.aggregate.aggregate_seeds` output (its
            ``<dataset>/<metric>_mean`` / ``_std`` columns).
        runs: the per-run table of these rows (the seen / unseen class counts of each test
            dataset).
        title: the table's title.

    Each block has the dataset's mIoU, and mIoU-S / mIoU-U / hIoU where some run of the table
    has both seen and unseen classes on it.
    """
    targets = target_names(runs.columns)
    evaluated = [f"{t}{TARGET_SEP}mIoU_mean" for t in targets]
    agg = agg[agg[evaluated].notna().any(axis=1)]
    show_variant = agg["variant"].nunique() > 1 or (agg["variant"] != "default").any()
    header = ["Method", "Setting", "Trained on"] + (["Variant"] if show_variant else [])
    groups = [("", len(header))]
    blocks = []
    for t in targets:
        sizes = _split_sizes(runs, t)
        cols = list(_TARGET_ALL)
        if any(seen and unseen for seen, unseen in sizes):
            cols += list(_TARGET_SPLIT)
        blocks.append((t, cols))
        header += cols
        groups.append((t, len(cols)))
    rows = []
    for _, r in agg.iterrows():
        cells = [r["method_label"], r["setting"], r["dataset"]]
        if show_variant:
            cells.append(r["variant"])
        for t, cols in blocks:
            cells += [format_value(r[f"{t}{TARGET_SEP}{c}_mean"], r[f"{t}{TARGET_SEP}{c}_std"],
                                   decimals=1) for c in cols]
        rows.append(cells)
    sizes = "; ".join(f"{t} " + " or ".join(f"{a} / {b}" for a, b in _split_sizes(runs, t))
                      for t in targets)
    notes = [_seeds_note(agg),
             "One block of columns per test dataset (DATASETS.TEST order): mIoU over all its "
             "classes; mIoU-S / mIoU-U / hIoU of its seen / unseen classes where it has both. "
             "On the training benchmark the split is the dataset's own; on another dataset a "
             "class is seen when its name (ignoring case; or one of its comma-separated "
             "synonyms) is that of a class with training labels, unseen otherwise "
             "(metrics.json: cross_dataset).",
             f"Seen / unseen classes: {sizes}."]
    return Table(header, rows, [False] * len(rows), notes, title, groups)


def to_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown: title, table, notes."""
    numeric = {i for i, h in enumerate(table.header)
               if h not in _TEXT_COLUMNS}
    lines = [f"# {table.title}", ""]
    lines.append("| " + " | ".join(table.column_titles()) + " |")
    lines.append("|" + "|".join("---:" if i in numeric else "---"
                                for i in range(len(table.header))) + "|")
    for cells in table.rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines += [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", PM: r"$\pm$", TIMES: r"$\times$", MISSING: "--",
                  "·": r"$\cdot$"}


def latex_escape(text: str) -> str:
    """Escapes LaTeX special characters (and writes ±, ×, – as math/dashes)."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A ``booktabs`` table (``\\usepackage{booktabs}``); published rows in italics after a rule."""
    align = "".join("l" if h in _TEXT_COLUMNS else "r"
                    for h in table.header)
    out = [r"% " + latex_escape(table.title), r"\begin{tabular}{" + align + "}", r"\toprule"]
    if table.groups:
        spans, rules, first = [], [], 1
        for label, span in table.groups:
            spans.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_escape(label)}}}" if label
                         else " & ".join([""] * span))
            if label:
                rules.append(rf"\cmidrule(lr){{{first}-{first + span - 1}}}")
            first += span
        out += [" & ".join(spans) + r" \\", " ".join(rules)]
    out += [" & ".join(latex_escape(h) for h in table.header) + r" \\", r"\midrule"]
    first_pub = True
    for cells, pub in zip(table.rows, table.published):
        if pub and first_pub:
            out.append(r"\midrule")
            out.append(rf"\multicolumn{{{len(table.header)}}}{{l}}"
                       r"{\textit{Published (reference, not measured here)}} \\")
            first_pub = False
        text = [latex_escape(c) for c in cells]
        if pub:
            text = [rf"\textit{{{t}}}" for t in text]
        out.append(" & ".join(text) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    out += ["% " + latex_escape(n) for n in table.notes]
    return "\n".join(out) + "\n"
