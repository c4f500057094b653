"""``zsseg-bench demo``: the paper's table in one command (toy accuracy + paper-scale speed).

1. Prepares the toy world if absent.
2. Toy accuracy: the toy comparison sweep (every method with a toy config, inductive;
   ``configs/sweeps/toy_comparison.yaml``; ``--seeds N`` runs seeds 0..N-1) into
   ``<output>/toy_comparison`` (its own report there, with toy-scale speed), two runs side by
   side with one thread each on 2 cores (:data:`DEFAULT_JOBS`; ``--jobs``).
3. Paper-scale speed: the ``paper-voc`` speed-only sweep (``configs/sweeps/paper_voc.yaml``:
   every method with its reference VOC config ``configs/voc/<method>.yaml``, CLIP ViT-B/16
   with random weights, 512x512, batch 1; the two-stage crops batched and in a loop), extended
   with every toy method it does not list, into ``<output>/paper_speed``.
4. Two tables (``<output>/table.md``) and ``<output>/hiou_vs_fps.png``: what was measured here
   (toy accuracy, training length, paper-scale speed and speed-ups, toy-scale speed, each
   device named), then the published rows with their sources, in their own table and panel.

While the sweeps run, a progress line per running run (stage, iteration, ETA) is printed
every 30 s. Re-running resumes: finished runs of both sweeps are skipped.

``--quick`` is a look at the plumbing in about 3 minutes on 2 CPU cores, with figures that mean
nothing: every toy method trains :data:`QUICK_ITERATIONS` iterations, is evaluated on the
first 16 images of ``synthetic_val`` (``synthetic_val_16``) and timed with one call at toy
scale; the paper-scale speed is skipped. It writes into ``output/demo_quick`` by default and
says so on the table and the picture.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from zsseg_bench.config.suite_configs import get_config_file
from zsseg_bench.sweep.progress import DEFAULT_PERIOD_S
from zsseg_bench.sweep.spec import LAUNCHER_NAMES, load_sweep_spec
from zsseg_bench.sweep.status import RunState
from zsseg_bench.sweep.sweep import SweepOptions, run_sweep
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_text
from zsseg_bench.utils.run_dir import make_output_dir

DEFAULT_OUTPUT_DIR = "output/demo"
QUICK_OUTPUT_DIR = "output/demo_quick"
#: The quick look: iterations of each toy run, the small test split, one timed toy call.
QUICK_ITERATIONS = 10
QUICK_TEST = "synthetic_val_16"
QUICK_OVERRIDES = ["SOLVER.MAX_ITER", str(QUICK_ITERATIONS), "SOLVER.LOG_PERIOD", "2",
                   "DATASETS.TEST", f"('{QUICK_TEST}',)"]
QUICK_SPEED_ARGS = ["--warmup", "0", "--iters", "1", "--repeats", "1"]
QUICK_PROGRESS_S = 15.0
#: Toy runs side by side (local launcher), each with cpus / 2 threads: the small toy models use
#: two cores far better as two one-thread processes than as one two-thread process, above all
#: on a loaded machine (AlignZeg's toy step: 0.65 s with one thread beside another run vs 3.2 s
#: with two threads, same 2-core machine at load average 5-7). Training is deterministic per
#: thread count, so the toy figures are those of one-thread runs (README, toy-world table).
DEFAULT_JOBS = 2
DEMO_SPEC = Path("sweeps") / "toy_comparison.yaml"
SPEED_SPEC = Path("sweeps") / "paper_voc.yaml"
TOY_DATASET = "synthetic"
#: The published dataset whose vocabulary the paper-scale speed runs use.
SPEED_DATASET = "voc"
TOY_DIR = "toy_comparison"
SPEED_DIR = "paper_speed"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def default_demo_spec() -> Path:
    """``configs/sweeps/toy_comparison.yaml`` (the suite's, installed or in the checkout)."""
    return get_config_file(DEMO_SPEC)


def default_speed_spec() -> Path:
    """``configs/sweeps/paper_voc.yaml`` (the suite's, installed or in the checkout)."""
    return get_config_file(SPEED_SPEC)


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
    parser.add_argument("--output-dir", default=None, metavar="D",
                        help=f"demo directory (default: {DEFAULT_OUTPUT_DIR}; with --quick "
                             f"{QUICK_OUTPUT_DIR})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a quick look at the plumbing (~3 min on 2 cores; figures mean "
                             f"nothing): {QUICK_ITERATIONS} iterations per toy run, a small "
                             "test split, one timed call, no paper-scale speed")
    parser.add_argument("--spec", default=None, metavar="SPEC.yaml",
                        help="toy sweep spec (default: configs/sweeps/toy_comparison.yaml)")
    parser.add_argument("--speed-spec", default=None, metavar="SPEC.yaml",
                        help="paper-scale speed-only sweep spec (default: "
                             "configs/sweeps/paper_voc.yaml)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="toy runs with seeds 0..N-1, reported as mean ± std (default: "
                             "the spec's seeds)")
    parser.add_argument("--launcher", choices=LAUNCHER_NAMES, default="local")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help=f"toy runs in parallel, each with cpus / N threads (default "
                             f"{DEFAULT_JOBS} with the local launcher)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides for every toy run, e.g. SOLVER.MAX_ITER 20 for "
                             "a quick look (part of the run ids)")


def _absolute_paths(raw: dict[str, Any], spec_dir: Path) -> dict[str, Any]:
    """The spec with its config paths made absolute, so a copy of it can live elsewhere."""
    raw = dict(raw)
    template = raw.get("config_template", "../{dataset}/{method}.yaml")
    raw["config_template"] = str(spec_dir / template)
    methods = raw.get("methods")
    if isinstance(methods, dict):
        raw["methods"] = {name: ({**entry, "config": str(spec_dir / entry["config"])}
                                 if isinstance(entry, dict) and entry.get("config") else entry)
                          for name, entry in methods.items()}
    return raw


def _write_spec(raw: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(raw, sort_keys=False))
    return path


def toy_spec(spec_path: Path, seeds: int | None, out: Path) -> Path:
    """The toy sweep spec, with seeds 0..N-1 if ``seeds`` is given (a copy in ``out``)."""
    if seeds is None:
        return spec_path
    if seeds < 1:
        raise UserError(f"demo: --seeds must be >= 1, got {seeds}")
    raw = _absolute_paths(yaml.safe_load(spec_path.read_text(encoding="utf-8")),
                          spec_path.parent)
    raw["seeds"] = list(range(seeds))
    return _write_spec(raw, out / f"{TOY_DIR}.yaml")


def speed_spec(spec_path: Path, toy_methods: dict[str, str], out: Path,
               stream: Any = None) -> Path:
    """The paper-scale speed spec extended with every toy method it does not list (config
    ``<config_template>`` of the method, e.g. ``configs/voc/<method>.yaml``, else a plug-in's
    own config for the dataset, ``Method.own_config_file``), copied to ``out``. A toy method
    without such a config is left out, with a message."""
    from zsseg_bench.config.projects import find_method

    raw = _absolute_paths(yaml.safe_load(spec_path.read_text(encoding="utf-8")),
                          spec_path.parent)
    methods = dict(raw.get("methods") or {})
    dataset = next(iter(raw.get("datasets") or [SPEED_DATASET]))
    for name, label in toy_methods.items():
        if name in methods:
            continue
        config = Path(raw["config_template"].format(method=name, dataset=dataset))
        method = find_method(name)
        own = method.own_config_file(dataset) if method is not None else None
        if config.is_file():
            methods[name] = {"label": label}
        elif own is not None:
            methods[name] = {"label": label, "config": str(own)}
        else:
            print(f"demo: {name} has no paper-scale config ({config}): no paper-scale speed",
                  file=stream or sys.stdout)
    raw["methods"] = methods
    return _write_spec(raw, out / f"{SPEED_DIR}.yaml")


def run(args: argparse.Namespace) -> int:
    """Prepare, toy sweep, paper-scale speed sweep, the tables; exit 0 when every run
    finished, 1 on failures."""
    from zsseg_bench.commands.speed_preset import COMPARISON_MD, run_speed_sweep
    from zsseg_bench.modeling.build import resolve_device
    from zsseg_bench.report.aggregate import aggregate_seeds
    from zsseg_bench.report.paper_table import write_paper_table
    from zsseg_bench.report.report import write_report
    from zsseg_bench.report.results import collect_results
    from zsseg_bench.speed.presets import preset_speed_args
    from zsseg_bench.speed.request import SpeedRequest

    start = time.time()
    out = make_output_dir(args.output_dir or (QUICK_OUTPUT_DIR if args.quick
                                              else DEFAULT_OUTPUT_DIR))
    spec_path = toy_spec(Path(args.spec) if args.spec else default_demo_spec(), args.seeds, out)
    spec = load_sweep_spec(spec_path)
    if args.quick:
        print(f"demo --quick: a look at the plumbing, NOT meaningful figures: "
              f"{QUICK_ITERATIONS} iterations per toy run, evaluated on {QUICK_TEST}, one "
              "timed call, no paper-scale speed", flush=True)
    if TOY_DATASET in spec.datasets:
        prepare_toy_world()
    overrides = (QUICK_OVERRIDES if args.quick else []) + list(args.opts or [])
    jobs = args.jobs or (min(DEFAULT_JOBS, os.cpu_count() or 1) if args.launcher == "local"
                         else None)
    summary = run_sweep(spec_path, out / TOY_DIR, SweepOptions(
        launcher=args.launcher, jobs=jobs, overrides=overrides,
        extra_args={"speed": QUICK_SPEED_ARGS} if args.quick else None,
        progress_s=QUICK_PROGRESS_S if args.quick else DEFAULT_PERIOD_S))
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if summary.count(RunState.DONE) == 0:
        print("demo: no toy run finished; see the logs above", file=sys.stderr)
        return EXIT_FAILED
    toy = write_report(out / TOY_DIR, title="Toy-world comparison (toy-scale speed)")
    comparison = None
    if not args.quick:
        methods = {m.name: m.label for m in spec.methods}
        paper = speed_spec(Path(args.speed_spec) if args.speed_spec else default_speed_spec(),
                           methods, out)
        # The options `zsseg-bench speed-preset paper-voc` gives its runs by default (same run
        # ids: a preset run into <output>/paper_speed is resumed here, and the other way round).
        comparison = run_speed_sweep(paper, out / SPEED_DIR,
                                     preset_speed_args(SpeedRequest(), resolve_device("auto")),
                                     SPEED_DATASET)
    runs = collect_results(out / TOY_DIR).runs
    agg = aggregate_seeds(runs)
    banner = (f"Quick look (demo --quick): {QUICK_ITERATIONS} training iterations, "
              f"{QUICK_TEST}, one timed call — NOT meaningful figures") if args.quick else None
    markdown, table, plot = write_paper_table(
        agg, comparison, out, SPEED_DATASET, runs=runs, banner=banner,
        title="zsseg-bench demo: toy accuracy beside paper-scale speed")
    print()
    print(markdown)
    for warning in toy.warnings:
        print(f"warning: {warning}")
    paper_line = "" if comparison is None else \
        f"\n  {out / SPEED_DIR / COMPARISON_MD} (paper-scale speed in detail)"
    print(f"wrote:\n  {table}\n  {plot}{paper_line}\n  {toy.table_md} (toy comparison, "
          "toy-scale speed) and its plots")
    if spec.description:
        print(f"\nAbout the toy numbers ({spec_path.name}):\n{spec.description}")
    print(f"\ndemo wall time: {time.time() - start:.0f} s")
    return 0 if summary.ok else EXIT_FAILED
