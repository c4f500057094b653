#!/usr/bin/env python
"""Prepares PASCAL VOC 2012 (SBD-augmented) for the zero-shot benchmark ``voc_zs_{train,val}``.

Reads, under ``--root`` (default ``$ZSSEG_DATASETS``, else ``./datasets``)::

    VOCdevkit/VOC2012/JPEGImages/<name>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<name>.png         palette PNGs (val labels)
    VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt       1,449 names
    VOCdevkit/VOC2012/SegmentationClassAug/<name>.png      grey PNGs, SBD-augmented (train_aug)
    VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt 10,582 names (--train-list; mmseg's
                                                           trainaug.txt is found too)

A train_aug label comes from ``SegmentationClassAug`` where it has one, else from
``SegmentationClass`` (``--train-labels-first SegmentationClass`` turns the preference round),
so both the DeepLab release (every train_aug label in ``SegmentationClassAug``) and mmseg's
``voc_aug.py`` output (``SegmentationClassAug`` from the SBD ``.mat`` files only; the VOC train
images SBD lacks are labelled in ``SegmentationClass``) are accepted. A val label always comes
from ``SegmentationClass``, and a train_aug list that names a val image is an error.

and writes ``VOCdevkit/VOC2012/annotations_zsseg/{train_aug,val}/<name>.png`` (20 classes as
ids 0..19, background and boundaries 255) plus a manifest ``{train_aug,val}.json`` beside each
folder. Classes, split and id mapping: :mod:`zsseg_bench.data.datasets.voc`. Finished files are
kept, so the script is idempotent and resumes after an interruption. See datasets/README.md.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections import Counter
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
AUG, VOC_LABELS = "SegmentationClassAug", "SegmentationClass"
#: Per split: (raw label folders, by preference; default split lists: the first present is
#: used), relative to VOCdevkit/VOC2012. ``trainaug.txt`` is the name mmseg's ``voc_aug.py``
#: converter writes.
RAW_SOURCES = {
    "train_aug": ((AUG, VOC_LABELS), [os.path.join("ImageSets", "Segmentation", name)
                                      for name in ("train_aug.txt", "trainaug.txt")]),
    "val": ((VOC_LABELS,), [os.path.join("ImageSets", "Segmentation", "val.txt")]),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, [s.split for s in VOC_BENCHMARK.splits])
    parser.add_argument("--train-list", default=None,
                        help="list of the train_aug images (default: VOCdevkit/VOC2012/"
                             f"{' or '.join(RAW_SOURCES['train_aug'][1])} under the root)")
    parser.add_argument("--train-labels-first", choices=RAW_SOURCES["train_aug"][0],
                        default=AUG,
                        help="the folder whose label a train_aug image takes when both have "
                             f"one (default {AUG}; {VOC_LABELS} is mmseg's and ZegCLIP's "
                             "choice for the VOC train images)")
    return parser.parse_args(argv)


def raw_label_paths(voc: str, split_name: str, stems: Sequence[str],
                    folders: Sequence[str]) -> list[str]:
    """Per stem, its label PNG in the first of ``folders`` (under ``voc``) that has one.

    Raises:
        UserError: none of the folders exists, or a stem has a label in none of them.
    """
    dirs = [os.path.join(voc, f) for f in folders]
    if not any(os.path.isdir(d) for d in dirs):
        require_dir(dirs[0], f"raw label folder of {split_name}", README)

    def first(stem: str) -> str:
        paths = [os.path.join(d, f"{stem}.png") for d in dirs]
        return next((p for p in paths if os.path.exists(p)), paths[0])

    found = [first(s) for s in stems]
    require_files(found, f"raw label(s) of the {split_name} list",
                  f"looked in {' and '.join(folders)}; {README}")
    counts = Counter(os.path.basename(os.path.dirname(p)) for p in found)
    if len(folders) > 1:
        print(f"{split_name}: labels from " + ", ".join(f"{f} ({counts[f]})" for f in folders))
    return found


def build_jobs(root: str, split_name: str, stems: Sequence[str], label_dir: str,
               folders: Sequence[str]) -> list:
    """One :class:`ConvertJob` per image of a split (inputs checked to exist); each label
    from the first of ``folders`` that has it."""
    voc = os.path.join(root, VOC_DIR)
    images = [os.path.join(voc, "JPEGImages", f"{s}.jpg") for s in stems]
    require_files(images, f"image(s) of the {split_name} list", README)
    raws = raw_label_paths(voc, split_name, stems, folders)
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
    # the val list is read for train_aug too: no val image may be trained on
    needed = {"val", *args.splits}
    stems = {name: read_split_list(lists[name], README) for name in RAW_SOURCES if name in needed}
    if "train_aug" in stems:
        leaked = sorted(set(stems["train_aug"]) & set(stems["val"]))
        if leaked:
            raise UserError(f"{lists['train_aug']} lists {len(leaked)} image(s) of the val "
                            f"split (e.g. {', '.join(leaked[:5])}); train_aug must exclude "
                            f"VOC 2012 val: {README}")
    folders = {"val": RAW_SOURCES["val"][0],
               "train_aug": sorted(RAW_SOURCES["train_aug"][0],
                                   key=lambda f: f != args.train_labels_first)}
    for split in VOC_BENCHMARK.splits:
        if split.split in args.splits:
            jobs = build_jobs(args.root, split.split, stems[split.split],
                              os.path.join(args.root, split.label_dir), folders[split.split])
            convert_split(args.root, split, jobs, args.workers, args.overwrite)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
