"""``--dataset`` of the two-stage tools: the toy world's held-out renders, the config's test
dataset or any registered one."""

from __future__ import annotations

import argparse
from typing import Any


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """``--dataset``, ``--holdout-root``, ``--holdout-images``."""
    from zsseg_bench.data.synthetic.holdout import DEFAULT_NUM_IMAGES, DEFAULT_ROOT

    p.add_argument("--dataset", default="holdout",
                   help="'holdout' (held-out renders, for choosing constants), 'val' "
                        "(DATASETS.TEST[0], for reporting) or a registered dataset name")
    p.add_argument("--holdout-root", default=DEFAULT_ROOT)
    p.add_argument("--holdout-images", type=int, default=DEFAULT_NUM_IMAGES)


def resolve_dataset(args: argparse.Namespace, cfg: Any) -> str:
    """The registered name ``--dataset`` stands for (rendering the held-out split once)."""
    from zsseg_bench.data.synthetic.holdout import register_holdout

    if args.dataset == "holdout":
        return register_holdout(args.holdout_root, args.holdout_images)
    if args.dataset == "val":
        return cfg.DATASETS.TEST[0]
    return args.dataset
