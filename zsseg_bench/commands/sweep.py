"""``zsseg-bench sweep SPEC.yaml --output-dir D [--launcher local|slurm] [--jobs N] [--dry-run]
[KEY VALUE ...]``."""

from __future__ import annotations

import argparse
from typing import Any

from zsseg_bench.commands.argparse_utils import add_options_then_rest
from zsseg_bench.sweep.spec import LAUNCHER_NAMES
from zsseg_bench.sweep.sweep import SweepOptions, run_sweep
from zsseg_bench.utils.errors import UserError

EXIT_INTERRUPTED = 130
EXIT_FAILED = 1

_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--output-dir",), dict(default=None, metavar="D",
                             help="sweep directory (required); re-launching into it skips "
                                  "finished runs and retries failed ones")),
    (("--launcher",), dict(choices=LAUNCHER_NAMES, default=None,
                           help="local subprocesses or Slurm through submitit (settings: the "
                                "spec's launcher.slurm); default: the spec's launcher.default "
                                "or local")),
    (("--jobs",), dict(type=int, default=None, metavar="N",
                       help="runs in parallel (local) or array parallelism (slurm)")),
    (("--dry-run",), dict(action="store_true",
                          help="list the runs, their ids and commands; run nothing")),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``zsseg-bench sweep``."""
    parser.add_argument("spec", metavar="SPEC.yaml",
                        help="sweep spec, e.g. configs/sweeps/toy_comparison.yaml")
    add_options_then_rest(parser, _OPTIONS, "opts", "KEY VALUE",
                          "config overrides for every run (part of the run ids)")


def run(args: argparse.Namespace) -> int:
    """Runs the sweep; exit code 0 when every run is done, 1 on failures, 130 if interrupted."""
    if not args.output_dir:
        raise UserError("--output-dir D is required (the sweep directory)")
    summary = run_sweep(args.spec, args.output_dir, SweepOptions(
        launcher=args.launcher, jobs=args.jobs, dry_run=args.dry_run, overrides=args.opts))
    if summary.dry_run:
        return 0
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return 0 if summary.ok else EXIT_FAILED
