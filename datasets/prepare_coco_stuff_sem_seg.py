#!/usr/bin/env python
"""Prepares COCO-Stuff 164k for the zero-shot benchmark ``coco_stuff_zs_{train,val}``.

Reads, under ``--root`` (default ``$ZSSEG_DATASETS``, else ``./datasets``)::

    coco/train2017/<name>.jpg, coco/val2017/<name>.jpg
    coco/stuffthingmaps_trainval2017/{train2017,val2017}/<name>.png   raw COCO ids - 1, 255
        (``unzip stuffthingmaps_trainval2017.zip -d coco/stuffthingmaps_trainval2017``; the
        ``coco/stuffthingmaps/`` of zsseg's and MaskFormer's layout is read too)

and writes ``coco/stuffthingmaps_zsseg/{train2017,val2017}/<name>.png`` (171 classes as ids
0..170, unlabelled 255) plus a manifest ``{train2017,val2017}.json`` beside each folder.
Classes, split and id mapping: :mod:`zsseg_bench.data.datasets.coco_stuff`. Finished files are
kept, so the script is idempotent and resumes after an interruption. See datasets/README.md.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from zsseg_bench.data.datasets.coco_stuff import (
    COCO_DIR,
    COCO_STUFF_BENCHMARK,
    MAX_COCO_ID,
    RAW_MAPS_DIRNAMES,
    RAW_TO_CONTIGUOUS,
)
from zsseg_bench.data.prepare_utils import (
    ConvertJob,
    RawLabelMapping,
    add_common_arguments,
    convert_split,
    paired_folder_jobs,
    run_main,
)

MAPPING = RawLabelMapping(RAW_TO_CONTIGUOUS, f"0..{MAX_COCO_ID - 1} (COCO id - 1) and 255 "
                                             f"(unlabelled)")
README = "see 'COCO-Stuff 164k' in datasets/README.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, [s.split for s in COCO_STUFF_BENCHMARK.splits])
    return parser.parse_args(argv)


def raw_maps_dir(root: str, split_name: str) -> str:
    """The official maps of a split: under ``coco/stuffthingmaps_trainval2017``, else under
    ``coco/stuffthingmaps`` (zsseg's / MaskFormer's layout); the first when neither exists
    (the error then names it)."""
    candidates = [os.path.join(root, COCO_DIR, d, split_name) for d in RAW_MAPS_DIRNAMES]
    return next((c for c in candidates if os.path.isdir(c)), candidates[0])


def build_jobs(root: str, split_name: str, label_dir: str) -> list[ConvertJob]:
    """One :class:`ConvertJob` per raw map of a split; every image needs a map and vice versa."""
    return paired_folder_jobs(
        os.path.join(root, COCO_DIR, split_name),
        raw_maps_dir(root, split_name), label_dir, MAPPING,
        split_name, (f"COCO {split_name} images", f"COCO-Stuff {split_name} stuff+thing maps"),
        README)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for split in COCO_STUFF_BENCHMARK.splits:
        if split.split in args.splits:
            jobs = build_jobs(args.root, split.split, os.path.join(args.root, split.label_dir))
            convert_split(args.root, split, jobs, args.workers, args.overwrite)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
