"""``zsseg-bench``: the command line (also ``python -m zsseg_bench``).

Every subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported lazily, so ``zsseg-bench --help`` stays fast.
A :class:`~zsseg_bench.utils.errors.UserError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NamedTuple

from zsseg_bench.utils.errors import UserError, config_file_not_found


class Command(NamedTuple):
    module: str
    help: str


COMMANDS = {
    "train": Command("zsseg_bench.commands.train",
                     "train a model (and evaluate it at the end)"),
    "eval": Command("zsseg_bench.commands.eval",
                    "evaluate trained weights on DATASETS.TEST"),
    "predict": Command("zsseg_bench.commands.predict",
                       "segment your own images with your own class names"),
    "speed": Command("zsseg_bench.commands.speed",
                     "measure FPS, latency, FLOPs, parameters and memory"),
    "speed-preset": Command("zsseg_bench.commands.speed_preset",
                            "every method at paper scale, beside the published figures"),
    "speed-scaling": Command("zsseg_bench.commands.speed_scaling",
                             "every method's cost as vocabulary, input size, proposals grow"),
    "sweep": Command("zsseg_bench.commands.sweep",
                     "run a grid of methods x datasets x settings x seeds"),
    "report": Command("zsseg_bench.commands.report",
                      "tables and plots from a directory of runs"),
    "demo": Command("zsseg_bench.commands.demo",
                    "the toy-world comparison end to end (sweep + report)"),
    "convert": Command("zsseg_bench.commands.convert",
                       "turn a checkpoint of a method's official code into a suite checkpoint"),
    "prepare": Command("zsseg_bench.commands.prepare",
                       "prepare a dataset (the toy world, or real ones from their downloads)"),
}


def _load(command: Command) -> ModuleType:
    """The module implementing ``command``."""
    return importlib.import_module(command.module)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the subcommand ``only`` gets its arguments (imported lazily)."""
    parser = argparse.ArgumentParser(
        prog="zsseg-bench",
        description="Zero-shot semantic segmentation with CLIP: two-stage vs one-stage methods "
                    "on the same data, evaluator and timing protocol.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        if only == name:
            _load(command).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(only=name if name in COMMANDS else None).parse_args(argv)
    try:
        config_file = getattr(args, "config_file", None)
        if config_file and not os.path.isfile(config_file):
            raise config_file_not_found(config_file)  # at once, before torch is imported
        module = _load(COMMANDS[args.command])
        return int(module.run(args) or 0)
    except UserError as e:
        print(f"zsseg-bench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zsseg-bench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (e.g. `zsseg-bench sweep ... --dry-run | head`): stop
        # quietly, and point stdout at /dev/null so the interpreter's final flush cannot fail.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a process ended by the signal


if __name__ == "__main__":
    raise SystemExit(main())
