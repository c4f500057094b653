"""``zsseg-bench report D [--output DIR] [--baseline METHOD] [--published auto|all|none]``."""

from __future__ import annotations

import argparse

from zsseg_bench.report.report import PUBLISHED_CHOICES, print_report, write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``zsseg-bench report``."""
    parser.add_argument("directory", metavar="D", help="a sweep --output-dir (every directory "
                        "below it holding cell.json is a run)")
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="where to write results.csv, table.md/.tex and plots (default: D)")
    parser.add_argument("--baseline", default=None, metavar="METHOD",
                        help="method the speed-ups are relative to (default: the sweep's "
                             "baseline, else the method marked as the reference, "
                             "Method.reference)")
    parser.add_argument("--published", choices=PUBLISHED_CHOICES, default="auto",
                        help="reference rows with the papers' numbers: for the datasets among "
                             "the runs (auto), all, or none")
    parser.add_argument("--title", default=None, help="title of the table")


def run(args: argparse.Namespace) -> int:
    """Writes the report and prints the table and the paths."""
    outputs = write_report(args.directory, output_dir=args.output, baseline=args.baseline,
                           published=args.published, title=args.title)
    print_report(outputs)
    return 0
