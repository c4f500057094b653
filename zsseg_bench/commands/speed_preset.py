"""``zsseg-bench speed --preset NAME``: a speed-only sweep, then the comparison table.

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
from zsseg_bench.sweep.spec import load_sweep_spec
from zsseg_bench.sweep.sweep import SweepOptions, run_sweep
from zsseg_bench.utils.errors import UserError
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


def run_preset(name: str, args: argparse.Namespace) -> int:
    """``zsseg-bench speed --preset NAME``; output in ``--output-dir`` (default
    ``./output/speed_<name>``)."""
    from zsseg_bench.modeling.build import resolve_device

    if name not in PRESETS:
        raise UserError(f"unknown speed preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    output_dir = Path(args.output_dir or Path("output") / f"speed_{name.replace('-', '_')}")
    speed_args = preset_speed_args(args, args.device or resolve_device("auto"))
    comparison = run_speed_sweep(PRESETS[name], output_dir, speed_args, PRESET_DATASET[name],
                                 list(args.opts or []))
    print(format_comparison(comparison))
    print(f"wrote {output_dir / COMPARISON_JSON} and {COMPARISON_MD}")
    return 0
