"""``zsseg-bench prepare DATASET``: write a dataset to the datasets root.

- ``synthetic``: renders the toy world to ``<root>/synthetic/{images,labels}/{train,val}``
  (``<root>`` = ``--root``, else ``$ZSSEG_DATASETS``, else ``./datasets``).
- ``voc``, ``coco_stuff``, ``pcontext``: real datasets are converted from their official
  downloads by the scripts in the repository's ``datasets/`` folder; this command names the
  script and the expected layout.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from zsseg_bench.data.catalog import get_datasets_root
from zsseg_bench.data.datasets.coco_stuff import COCO_STUFF_BENCHMARK
from zsseg_bench.data.datasets.pcontext import PCONTEXT_BENCHMARK
from zsseg_bench.data.datasets.voc import VOC_BENCHMARK
from zsseg_bench.utils.errors import UserError

logger = logging.getLogger(__name__)

#: Real datasets, by the key of their BenchmarkSpec.
_REAL = {s.key: s for s in (VOC_BENCHMARK, COCO_STUFF_BENCHMARK, PCONTEXT_BENCHMARK)}
DATASETS = ("synthetic", *_REAL)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``zsseg-bench prepare``."""
    from zsseg_bench.data.synthetic import DEFAULT_NUM_TRAIN, DEFAULT_NUM_VAL, DEFAULT_SEED

    parser.add_argument("dataset", choices=DATASETS, help="the dataset to prepare")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="datasets root (default: $ZSSEG_DATASETS, else ./datasets)")
    group = parser.add_argument_group("synthetic only")
    group.add_argument("--num-train", type=int, default=DEFAULT_NUM_TRAIN, metavar="N",
                       help=f"training images (default {DEFAULT_NUM_TRAIN})")
    group.add_argument("--num-val", type=int, default=DEFAULT_NUM_VAL, metavar="N",
                       help=f"validation images (default {DEFAULT_NUM_VAL})")
    group.add_argument("--seed", type=int, default=DEFAULT_SEED,
                       help=f"base seed of the renderer (default {DEFAULT_SEED})")
    group.add_argument("--workers", type=int, default=0, metavar="N",
                       help="rendering processes (default: the CPU count)")


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


def real_dataset_instructions(name: str, root: str) -> str:
    """How to prepare a real dataset: its script and the layout it expects and writes."""
    spec = _REAL[name]
    lines = [f"{name} is converted from its official download by "
             f"`python {spec.prepare_script} --root {root}` (run from the repository; see "
             f"datasets/README.md). Layout:"]
    for split in spec.splits:
        lines.append(f"{split.name}: images {os.path.join(root, split.image_dir)}/<name>."
                     f"{split.image_ext} -> labels {os.path.join(root, split.label_dir)}/"
                     f"<name>.png")
    return " ".join(lines)


def run(args: argparse.Namespace) -> int:
    """Runs ``zsseg-bench prepare``."""
    logging.basicConfig(level=logging.INFO)
    root = args.root or get_datasets_root()
    if args.dataset == "synthetic":
        prepare_synthetic_command(root, args.num_train, args.num_val, args.seed, args.workers)
        return 0
    raise UserError(real_dataset_instructions(args.dataset, root))
