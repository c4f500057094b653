"""argparse help shared by the commands."""

from __future__ import annotations

import argparse
from typing import Any


class OptionsThenRest(argparse.Action):
    """A trailing ``nargs=argparse.REMAINDER`` positional that still lets the command's own
    options appear anywhere after it (argparse's REMAINDER alone would swallow them): the
    options ``late_parser`` knows are parsed out of the remainder into the namespace; the rest
    stays in ``dest`` (``KEY VALUE`` overrides, a script's own options)."""

    def __init__(self, *args: Any, late_parser: argparse.ArgumentParser, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.late_parser = late_parser

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        options, rest = self.late_parser.parse_known_args(list(values))
        for key, value in vars(options).items():
            setattr(namespace, key, value)
        setattr(namespace, self.dest, rest)


def add_options_then_rest(parser: argparse.ArgumentParser,
                          options: list[tuple[tuple[str, ...], dict[str, Any]]], dest: str,
                          metavar: str, help: str) -> None:  # noqa: A002
    """Adds ``options`` to ``parser``, then the trailing positional ``dest`` that takes the
    remaining arguments (:class:`OptionsThenRest`)."""
    late = argparse.ArgumentParser(prog=parser.prog, add_help=False)
    for flags, kwargs in options:
        parser.add_argument(*flags, **kwargs)
        late.add_argument(*flags, **{**kwargs, "default": argparse.SUPPRESS})
    parser.add_argument(dest, nargs=argparse.REMAINDER, metavar=metavar, help=help,
                        action=OptionsThenRest, late_parser=late)
