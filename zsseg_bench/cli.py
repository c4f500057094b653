"""``zsseg-bench``: the command line (also ``python -m zsseg_bench``).

Every subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported lazily, so ``zsseg-bench --help`` stays fast.
A :class:`~zsseg_bench.utils.errors.UserError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple

from zsseg_bench.utils.errors import UserError


class Command(NamedTuple):
    module: str
    help: str
    issue: str


COMMANDS = {
    "train": Command("zsseg_bench.engine.train_command",
                     "train a model (and evaluate it at the end)", "#6 engine"),
    "eval": Command("zsseg_bench.engine.eval_command",
                    "evaluate trained weights on DATASETS.TEST", "#6 engine"),
    "speed": Command("zsseg_bench.benchmark.speed_command",
                     "measure FPS, latency, FLOPs, parameters and memory", "#9 speed harness"),
    "sweep": Command("zsseg_bench.sweep.sweep_command",
                     "run a grid of methods x datasets x settings x seeds", "#10 sweeps"),
    "report": Command("zsseg_bench.report.report_command",
                      "tables and plots from a directory of runs", "#10 reports"),
    "demo": Command("zsseg_bench.sweep.demo_command",
                    "the toy-world comparison end to end (sweep + report)", "#10 demo"),
    "prepare": Command("zsseg_bench.data.prepare_command",
                       "prepare a dataset (the toy world, or real ones from their downloads)",
                       "#3 data layer"),
}


def _load(command: Command):  # noqa: ANN202
    """The command's module, or None while its issue has not landed."""
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as e:
        if e.name == command.module:
            return None
        raise


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``only`` imports just that subcommand's module."""
    parser = argparse.ArgumentParser(
        prog="zsseg-bench",
        description="Zero-shot semantic segmentation with CLIP: two-stage vs one-stage methods "
                    "on the same data, evaluator and timing protocol.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        module = _load(command) if only in (None, name) else None
        p = sub.add_parser(name, help=command.help, description=command.help)
        if module is not None:
            module.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = next((a for a in argv if not a.startswith("-")), None)
    if name in COMMANDS and _load(COMMANDS[name]) is None:
        print(f"zsseg-bench {name}: not available yet (issue {COMMANDS[name].issue} has not "
              "landed)", file=sys.stderr)
        return 3
    args = build_parser(only=name if name in COMMANDS else None).parse_args(argv)
    module = _load(COMMANDS[args.command])
    try:
        return int(module.run(args) or 0)
    except UserError as e:
        print(f"zsseg-bench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zsseg-bench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
