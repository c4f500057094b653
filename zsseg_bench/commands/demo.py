"""``zsseg-bench demo``: the toy comparison end to end on CPU (prepare, sweep, report).

Prepares the toy world if absent, runs the toy comparison sweep (every method with a toy
config, inductive, one seed; ``configs/sweeps/toy_comparison.yaml``), writes the report and
prints the table and the paths of the plots. Re-running it resumes: finished runs are skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from zsseg_bench.sweep.spec import load_sweep_spec
from zsseg_bench.sweep.sweep import LAUNCHERS, run_sweep
from zsseg_bench.utils.errors import UserError

DEFAULT_OUTPUT_DIR = "output/demo"
DEMO_SPEC = Path("sweeps") / "toy_comparison.yaml"
TOY_DATASET = "synthetic"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def default_demo_spec() -> Path:
    """``configs/sweeps/toy_comparison.yaml`` of the checkout (or of the installed package)."""
    package = Path(__file__).resolve().parents[1]
    for configs in (package.parent / "configs", package / "configs"):
        if (configs / DEMO_SPEC).is_file():
            return configs / DEMO_SPEC
    raise UserError(f"demo: cannot find configs/{DEMO_SPEC} next to the zsseg_bench package "
                    f"({package}); pass --spec")


def prepare_toy_world(stream=None) -> None:  # noqa: ANN001
    """Renders the toy dataset into the datasets root unless it is complete already."""
    from zsseg_bench.data.catalog import get_datasets_root
    from zsseg_bench.data.synthetic import dataset_is_complete, prepare_synthetic

    stream = stream or sys.stdout
    root = get_datasets_root()
    if dataset_is_complete(root):
        print(f"toy world: ready in {os.path.join(root, TOY_DATASET)}", file=stream)
        return
    start = time.time()
    print(f"toy world: rendering into {os.path.join(root, TOY_DATASET)} ...", file=stream,
          flush=True)
    counts = prepare_synthetic(root, num_workers=os.cpu_count() or 1)
    print(f"toy world: {counts['train']} train / {counts['val']} val images "
          f"({time.time() - start:.0f} s)", file=stream, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``zsseg-bench demo``."""
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, metavar="D",
                        help=f"sweep + report directory (default: {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--spec", default=None, metavar="SPEC.yaml",
                        help="sweep spec (default: configs/sweeps/toy_comparison.yaml)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="local")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="runs in parallel (default: the spec's, 1)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides for every run, e.g. SOLVER.MAX_ITER 20 for a "
                             "quick look (part of the run ids)")


def run(args: argparse.Namespace) -> int:
    """Prepare, sweep, report; exit 0 when every run finished, 1 on failures."""
    from zsseg_bench.report.report import print_report, write_report

    spec_path = Path(args.spec) if args.spec else default_demo_spec()
    spec = load_sweep_spec(spec_path)
    if TOY_DATASET in spec.datasets:
        prepare_toy_world()
    summary = run_sweep(spec_path, args.output_dir, launcher=args.launcher, jobs=args.jobs,
                        overrides=args.opts)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if summary.count("done") == 0:
        print("demo: no run finished; see the logs above", file=sys.stderr)
        return EXIT_FAILED
    outputs = write_report(args.output_dir, title="zsseg-bench demo: toy-world comparison "
                           "(CPU)")
    print()
    print_report(outputs)
    if spec.description:
        print(f"\nAbout these numbers ({spec_path.name}):\n{spec.description}")
    return 0 if summary.ok else EXIT_FAILED
