"""``zsseg-bench speed-preset NAME`` (older spelling ``speed --preset NAME``): a speed-only
sweep, then the comparison table.

The preset's spec (``configs/sweeps/paper_*.yaml``) runs through the sweep machinery (one
``zsseg-bench speed`` process per method, fresh memory peak, no state shared between methods;
re-running resumes), then the runs' ``speed.json`` records are compared with each other and with
the published figures (:func:`zsseg_bench.speed.presets.compare`) into ``comparison.json`` and
``comparison.md`` in the output directory.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsseg_bench.speed.presets import (
    PRESET_DATASET,
    PRESETS,
    PresetRun,
    compare,
    format_comparison,
    preset_speed_args,
)
from zsseg_bench.speed.request import SpeedRequest
from zsseg_bench.sweep.spec import load_sweep_spec
from zsseg_bench.sweep.sweep import SweepOptions, run_sweep
from zsseg_bench.utils.errors import OptionError, UserError
from zsseg_bench.utils.file_io import atomic_write_json, atomic_write_text
from zsseg_bench.utils.sweep_layout import RUNS_DIRNAME, result_file

COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"


def run_speed_sweep(spec_path: str | Path, output_dir: str | Path, speed_args: Sequence[str],
                    dataset: str | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Runs (or resumes) a speed-only sweep and writes its comparison.

    Args:
        spec_path: the sweep spec (``train.enabled: false``).
        output_dir: the sweep directory; ``comparison.json``/``.md`` are written there.
        speed_args: options appended to every run's ``zsseg-bench speed`` command (part of
            the run ids: another device or precision gives other runs).
        dataset: the published-dataset key of the vocabulary (``voc``, ``coco_stuff``).
        overrides: ``KEY VALUE ...`` config overrides of every run.

    Returns:
        The comparison.

    Raises:
        UserError: a run failed (its log is named) or the sweep was interrupted.
    """
    spec = load_sweep_spec(spec_path)
    extra = {"speed": list(speed_args)}
    summary = run_sweep(spec_path, output_dir, SweepOptions(launcher="local",
                                                           overrides=overrides,
                                                           extra_args=extra))
    if summary.interrupted:
        raise UserError(f"speed preset {spec.name}: interrupted; re-run to resume")
    if not summary.ok:
        logs = ", ".join(o.log or o.run_dir for o in summary.failed)
        raise UserError(f"speed preset {spec.name}: {len(summary.failed)} run(s) failed; "
                        f"see {logs}")
    runs = []
    for cell in spec.expand(overrides, extra_args=extra):
        path = result_file(Path(output_dir) / RUNS_DIRNAME / cell.run_id, "speed")
        runs.append(PresetRun(cell.method, cell.method_label, cell.config_file,
                              json.loads(path.read_text(encoding="utf-8"))))
    comparison = compare(runs, spec.baseline, dataset, spec.name, spec.description)
    table = format_comparison(comparison)
    atomic_write_json(Path(output_dir) / COMPARISON_JSON, comparison)
    atomic_write_text(Path(output_dir) / COMPARISON_MD, table + "\n")
    return comparison


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``zsseg-bench speed-preset``: the preset, the output directory, how to
    time (as ``zsseg-bench speed``) and overrides of every run."""
    from zsseg_bench.commands.speed import add_overrides_argument, add_protocol_arguments

    parser.add_argument("preset", choices=sorted(PRESETS), metavar="NAME",
                        help="paper-voc / paper-coco: every method at 512x512 with the VOC / "
                             "COCO-Stuff vocabulary, random init (configs/sweeps/paper_*.yaml)")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="the sweep directory (default: output/speed_<name>)")
    add_protocol_arguments(parser)
    add_overrides_argument(parser)


def run_preset(name: str, request: SpeedRequest) -> dict[str, Any]:
    """Runs (or resumes) the preset ``name`` with the request's speed options, into
    ``request.output_dir`` (default ``./output/speed_<name>``); returns the comparison."""
    from zsseg_bench.modeling.build import resolve_device

    if name not in PRESETS:
        raise UserError(f"unknown speed preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    output_dir = Path(request.output_dir or Path("output") / f"speed_{name.replace('-', '_')}")
    speed_args = preset_speed_args(request, request.device or resolve_device("auto"))
    comparison = run_speed_sweep(PRESETS[name], output_dir, speed_args, PRESET_DATASET[name],
                                 list(request.opts))
    print(format_comparison(comparison))
    print(f"wrote {output_dir / COMPARISON_JSON} and {COMPARISON_MD}")
    return comparison


def request_from_preset_args(args: argparse.Namespace) -> SpeedRequest:
    """The request of parsed ``speed-preset`` arguments.

    The overrides (``argparse.REMAINDER``) take everything after NAME, options included, so the
    options given after NAME are parsed back out of them (those given before NAME stay)."""
    from zsseg_bench.commands.speed import add_protocol_arguments, request_from_args

    parser = argparse.ArgumentParser(prog="zsseg-bench speed-preset NAME", add_help=False)
    parser.add_argument("--output-dir", metavar="DIR")
    add_protocol_arguments(parser)
    args, rest = parser.parse_known_args(list(args.opts or []), namespace=args)
    unknown = next((a for a in rest if a.startswith("-")), None)
    if unknown is not None:
        raise UserError(f"unknown option {unknown} (see zsseg-bench speed-preset --help)")
    args.opts = rest
    return request_from_args(args)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``zsseg-bench speed-preset``."""
    from zsseg_bench.commands.speed import flag_errors

    request = request_from_preset_args(args)
    try:
        request.validate()
        run_preset(args.preset, request)
    except OptionError as e:
        raise flag_errors(e) from e
    return 0
