#!/usr/bin/env python
"""Prepares PASCAL VOC 2012 (SBD-augmented) for the zero-shot benchmark ``voc_zs_{train,val}``.

Reads, under ``--root`` (default ``$ZSSEG_DATASETS``, else ``./datasets``)::

    VOCdevkit/VOC2012/JPEGImages/<name>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<name>.png         palette PNGs (val labels)
    VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt       1,449 names
    VOCdevkit/VOC2012/SegmentationClassAug/<name>.png      grey PNGs, SBD-augmented (train_aug)
    VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt 10,582 names (--train-list; mmseg's
                                                           trainaug.txt is found too)

and writes ``VOCdevkit/VOC2012/annotations_zsseg/{train_aug,val}/<name>.png`` (20 classes as
ids 0..19, background and boundaries 255) plus a manifest ``{train_aug,val}.json`` beside each
folder. Classes, split and id mapping: :mod:`zsseg_bench.data.datasets.voc`. Finished files are
kept, so the script is idempotent and resumes after an interruption. See datasets/README.md.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Sequence

from zsseg_bench.data.datasets.voc import RAW_TO_CONTIGUOUS, VOC_BENCHMARK, VOC_DIR
from zsseg_bench.data.prepare_utils import (
    ConvertJob,
    RawLabelMapping,
    add_common_arguments,
    convert_split,
    read_label_png,
    read_split_list,
    require_dir,
    require_files,
    run_main,
)
from zsseg_bench.utils.errors import UserError

MAPPING = RawLabelMapping(RAW_TO_CONTIGUOUS, "0 (background), 1..20 (the VOC classes) and 255 "
                                             "(boundary)")
README = "see 'PASCAL VOC 2012' in datasets/README.md"
#: Per split: (raw label folder, default split lists: the first present is used), relative to
#: VOCdevkit/VOC2012. ``trainaug.txt`` is the name mmseg's ``voc_aug.py`` converter writes.
RAW_SOURCES = {
    "train_aug": ("SegmentationClassAug", [os.path.join("ImageSets", "Segmentation", name)
                                           for name in ("train_aug.txt", "trainaug.txt")]),
    "val": ("SegmentationClass", [os.path.join("ImageSets", "Segmentation", "val.txt")]),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, [s.split for s in VOC_BENCHMARK.splits])
    parser.add_argument("--train-list", default=None,
                        help="list of the train_aug images (default: VOCdevkit/VOC2012/"
                             f"{' or '.join(RAW_SOURCES['train_aug'][1])} under the root)")
    return parser.parse_args(argv)


def build_jobs(root: str, split_name: str, stems: Sequence[str], label_dir: str) -> list:
    """One :class:`ConvertJob` per image of a split (inputs checked to exist)."""
    voc = os.path.join(root, VOC_DIR)
    raw_dir = os.path.join(voc, RAW_SOURCES[split_name][0])
    require_dir(raw_dir, f"raw label folder of {split_name}", README)
    images = [os.path.join(voc, "JPEGImages", f"{s}.jpg") for s in stems]
    raws = [os.path.join(raw_dir, f"{s}.png") for s in stems]
    require_files(images, f"image(s) of the {split_name} list", README)
    require_files(raws, f"raw label(s) of the {split_name} list", README)
    return [ConvertJob(stem=s, image=img, output=os.path.join(label_dir, f"{s}.png"),
                       read_raw=functools.partial(read_label_png, raw), source=raw,
                       mapping=MAPPING)
            for s, img, raw in zip(stems, images, raws)]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    voc = os.path.join(args.root, VOC_DIR)
    require_dir(os.path.join(voc, "JPEGImages"), "VOC 2012 images", README)
    lists = {}
    for name, (_, candidates) in RAW_SOURCES.items():
        paths = [os.path.join(voc, c) for c in candidates]
        lists[name] = next((p for p in paths if os.path.exists(p)), paths[0])
    if args.train_list:
        lists["train_aug"] = args.train_list
    stems = {name: read_split_list(lists[name], README) for name in args.splits}
    if "train_aug" in stems and "val" in stems:
        leaked = sorted(set(stems["train_aug"]) & set(stems["val"]))
        if leaked:
            raise UserError(f"{lists['train_aug']} lists {len(leaked)} image(s) of the val "
                            f"split (e.g. {', '.join(leaked[:5])}); train_aug must exclude "
                            f"VOC 2012 val: {README}")
    for split in VOC_BENCHMARK.splits:
        if split.split in args.splits:
            jobs = build_jobs(args.root, split.split, stems[split.split],
                              os.path.join(args.root, split.label_dir))
            convert_split(args.root, split, jobs, args.workers, args.overwrite)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
