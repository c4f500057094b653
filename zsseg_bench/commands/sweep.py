"""``zsseg-bench sweep SPEC.yaml --output-dir D [--launcher local|slurm] [--jobs N] [--dry-run]
[KEY VALUE ...]``."""

from __future__ import annotations

import argparse
from typing import Any

from zsseg_bench.sweep.sweep import LAUNCHERS, run_sweep
from zsseg_bench.utils.errors import UserError

EXIT_INTERRUPTED = 130
EXIT_FAILED = 1

_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--output-dir",), dict(default=None, metavar="D",
                             help="sweep directory (required); re-launching into it skips "
                                  "finished runs and retries failed ones")),
    (("--launcher",), dict(choices=LAUNCHERS, default=None,
                           help="local subprocesses or Slurm through submitit (settings: the "
                                "spec's launcher.slurm); default: the spec's launcher.default "
                                "or local")),
    (("--jobs",), dict(type=int, default=None, metavar="N",
                       help="runs in parallel (local) or array parallelism (slurm)")),
    (("--dry-run",), dict(action="store_true",
                          help="list the runs, their ids and commands; run nothing")),
]


class _OptionsThenOverrides(argparse.Action):
    """Trailing ``KEY VALUE`` overrides after the positional spec, with the command's options
    still accepted anywhere (argparse's REMAINDER alone would swallow them)."""

    def __init__(self, *args: Any, late_parser: argparse.ArgumentParser, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.late_parser = late_parser

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        options, rest = self.late_parser.parse_known_args(list(values))
        for key, value in vars(options).items():
            setattr(namespace, key, value)
        setattr(namespace, self.dest, rest)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``zsseg-bench sweep``."""
    late = argparse.ArgumentParser(prog=parser.prog, add_help=False)
    for flags, kwargs in _OPTIONS:
        parser.add_argument(*flags, **kwargs)
        late.add_argument(*flags, **{**kwargs, "default": argparse.SUPPRESS})
    parser.add_argument("spec", metavar="SPEC.yaml",
                        help="sweep spec, e.g. configs/sweeps/toy_comparison.yaml")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        action=_OptionsThenOverrides, late_parser=late,
                        help="config overrides for every run (part of the run ids)")


def run(args: argparse.Namespace) -> int:
    """Runs the sweep; exit code 0 when every run is done, 1 on failures, 130 if interrupted."""
    if not args.output_dir:
        raise UserError("--output-dir D is required (the sweep directory)")
    summary = run_sweep(args.spec, args.output_dir, launcher=args.launcher, jobs=args.jobs,
                        dry_run=args.dry_run, overrides=args.opts)
    if summary.dry_run:
        return 0
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return 0 if summary.ok else EXIT_FAILED
