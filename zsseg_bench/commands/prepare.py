"""``zsseg-bench prepare DATASET [--root DIR] [OPTIONS ...]``: write a dataset to the datasets
root (``--root``, else ``$ZSSEG_DATASETS``, else ``./datasets``).

- ``synthetic``: renders the toy world to ``<root>/synthetic/{images,labels}/{train,val}``.
- ``voc``, ``coco_stuff``, ``pcontext``, ``pcontext_459``, ``ade20k_150``, ``ade20k_847``: the
  real benchmarks are converted from their official downloads (which you fetch yourself;
  ``datasets/README.md``) by the repository's ``datasets/prepare_*.py`` scripts; this command
  runs the dataset's script with ``--root`` and every further option (e.g. ``--splits val``,
  ``--workers 4``; the script's ``--help`` lists them). ``pcontext_459`` is the Context script
  with ``--classes 459``.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from zsseg_bench.commands.argparse_utils import add_options_then_rest
from zsseg_bench.data.catalog import get_datasets_root
from zsseg_bench.data.datasets.ade20k import ADE20K_150_BENCHMARK
from zsseg_bench.data.datasets.ade20k_full import ADE20K_847_BENCHMARK
from zsseg_bench.data.datasets.coco_stuff import COCO_STUFF_BENCHMARK
from zsseg_bench.data.datasets.pcontext import PCONTEXT459_BENCHMARK, PCONTEXT_BENCHMARK
from zsseg_bench.data.datasets.voc import VOC_BENCHMARK
from zsseg_bench.utils.errors import UserError

logger = logging.getLogger(__name__)

#: Real datasets, by the key of their BenchmarkSpec.
_REAL = {s.key: s for s in (VOC_BENCHMARK, COCO_STUFF_BENCHMARK, PCONTEXT_BENCHMARK,
                            PCONTEXT459_BENCHMARK, ADE20K_150_BENCHMARK,
                            ADE20K_847_BENCHMARK)}
#: Options a dataset's script gets unless given (the script serves several benchmarks).
_SCRIPT_DEFAULTS = {"pcontext_459": ["--classes", "459"]}
DATASETS = ("synthetic", *_REAL)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``zsseg-bench prepare``."""
    from zsseg_bench.data.synthetic import DEFAULT_NUM_TRAIN, DEFAULT_NUM_VAL, DEFAULT_SEED

    parser.add_argument("dataset", choices=DATASETS, help="the dataset to prepare")
    options = [
        (("--root",), dict(default=None, metavar="DIR",
                           help="datasets root (default: $ZSSEG_DATASETS, else ./datasets)")),
        (("--num-train",), dict(type=int, default=DEFAULT_NUM_TRAIN, metavar="N",
                                help=f"synthetic: training images (default "
                                     f"{DEFAULT_NUM_TRAIN})")),
        (("--num-val",), dict(type=int, default=DEFAULT_NUM_VAL, metavar="N",
                              help=f"synthetic: validation images (default {DEFAULT_NUM_VAL})")),
        (("--seed",), dict(type=int, default=DEFAULT_SEED,
                           help=f"synthetic: base seed of the renderer (default {DEFAULT_SEED})")),
        (("--workers",), dict(type=int, default=0, metavar="N",
                              help="processes (default: the CPU count for synthetic, the "
                                   "script's default for a real dataset)")),
    ]
    add_options_then_rest(parser, options, "script_args", "OPTIONS",
                          "a real dataset: options of its datasets/prepare_*.py script, e.g. "
                          "--splits val")


def prepare_synthetic_command(root: str, num_train: int, num_val: int, seed: int,
                              workers: int) -> dict:
    """Renders the toy world and prints where it went; returns the preparation summary."""
    from zsseg_bench.data.synthetic import DATASET_DIRNAME, prepare_synthetic

    if num_train <= 0 or num_val <= 0:
        raise UserError(f"--num-train and --num-val must be positive, got {num_train}, "
                        f"{num_val}")
    workers = workers if workers > 0 else (os.cpu_count() or 1)
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the datasets root {root} ({e}); pass a writable --root "
                        f"or set $ZSSEG_DATASETS") from e
    start = time.perf_counter()
    summary = prepare_synthetic(root, num_train=num_train, num_val=num_val, seed=seed,
                                num_workers=workers)
    elapsed = time.perf_counter() - start
    print(f"toy world ready in {os.path.join(root, DATASET_DIRNAME)}: {summary['train']} train "
          f"+ {summary['val']} val images ({summary['written']} newly written) in "
          f"{elapsed:.1f} s with {workers} process(es); registered as synthetic_train / "
          f"synthetic_val")
    return summary


def prepare_script(name: str) -> Path:
    """The repository's ``datasets/prepare_*.py`` of the real dataset ``name``.

    Raises:
        UserError: the scripts are not beside the package (an install without the repository).
    """
    relative = _REAL[name].prepare_script
    script = Path(__file__).resolve().parents[2] / relative
    if not script.is_file():
        raise UserError(f"{relative} is not here ({script}): the prepare scripts ship with the "
                        "repository; clone it and run `zsseg-bench prepare` from an editable "
                        "install (pip install -e .), or run the script directly")
    return script


def prepare_real_command(name: str, root: str, workers: int, script_args: list[str]) -> int:
    """Runs the dataset's prepare script with ``--root`` and ``script_args``; returns its exit
    code (its errors are one line already)."""
    args = ["--root", root, *(["--workers", str(workers)] if workers > 0 else [])]
    defaults = _SCRIPT_DEFAULTS.get(name, [])
    if defaults and defaults[0] not in script_args:
        args += defaults
    cmd = [sys.executable, str(prepare_script(name)), *args, *script_args]
    logger.info("running %s", " ".join(cmd))
    return subprocess.run(cmd, check=False).returncode


def run(args: argparse.Namespace) -> int:
    """Runs ``zsseg-bench prepare``."""
    logging.basicConfig(level=logging.INFO)
    root = args.root or get_datasets_root()
    if args.dataset == "synthetic":
        if args.script_args:
            raise UserError(f"prepare synthetic: unknown options {' '.join(args.script_args)} "
                            "(it takes --root, --num-train, --num-val, --seed, --workers)")
        prepare_synthetic_command(root, args.num_train, args.num_val, args.seed, args.workers)
        return 0
    return prepare_real_command(args.dataset, root, args.workers, list(args.script_args))
