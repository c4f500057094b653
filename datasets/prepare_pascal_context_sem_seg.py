#!/usr/bin/env python
"""Prepares PASCAL Context: the 59-class zero-shot benchmark ``pcontext_zs_{train,val}`` and,
with ``--classes 459``, the evaluation-only full label space ``pcontext_459_val``.

Reads, under ``--root`` (default ``$ZSSEG_DATASETS``, else ``./datasets``), the VOC 2010 images
``VOCdevkit/VOC2010/JPEGImages/<name>.jpg`` and the Context labels in one of three formats
(``--source``; ``auto`` takes the first one present):

- ``json``: ``VOCdevkit/VOC2010/trainval_merged.json``, the official PASCAL in Detail
  annotations that zsseg (and mmseg's converter) use; splits from each image's ``phase``.
- ``mat``: ``VOCdevkit/VOC2010/trainval/<name>.mat`` (official ``trainval.tar.gz``, key
  ``LabelMap``); splits from ``VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt``.
- ``mmseg``: ``VOCdevkit/VOC2010/SegmentationClassContext/<name>.png`` written by mmseg's
  converter (59 classes only); splits from
  ``VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt``.

Writes ``VOCdevkit/VOC2010/annotations_zsseg/pc59_{train,val}/<name>.png`` (59 classes as ids
0..58, everything else 255) and, for 459, ``pc459_val/<name>.png`` (16-bit PNGs: the 459 labels
as ids 0..458, unlabelled 65535), each with a manifest ``<folder>.json`` beside it. Classes,
split and id mappings: :mod:`zsseg_bench.data.datasets.pcontext`. Finished files are kept, so
the script is idempotent and resumes after an interruption. See datasets/README.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from zsseg_bench.data.datasets.pcontext import (
    FULL_TO_459,
    FULL_TO_CONTIGUOUS,
    FULL_UNLABELLED,
    MMSEG_TO_CONTIGUOUS,
    NUM_FULL_LABELS,
    OFFICIAL_COUNTS,
    PCONTEXT459_BENCHMARK,
    PCONTEXT_BENCHMARK,
    VOC2010_DIR,
)
from zsseg_bench.data.datasets.prepared import BenchmarkSpec, PreparedSplit
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

FULL_MAPPING = RawLabelMapping(FULL_TO_CONTIGUOUS, f"0 (unlabelled) and 1..{NUM_FULL_LABELS} "
                                                   f"(PASCAL Context labels.txt ids)")
FULL459_MAPPING = RawLabelMapping(FULL_TO_459, FULL_MAPPING.description)
MMSEG_MAPPING = RawLabelMapping(MMSEG_TO_CONTIGUOUS, "0 (background), 1..59 (the Context-59 "
                                                     "classes) and 255")
README = "see 'PASCAL Context' in datasets/README.md"
JSON_FILE = "trainval_merged.json"
MAT_DIR = "trainval"
MMSEG_DIR = "SegmentationClassContext"
#: Where each source keeps its split lists (``mat`` / ``mmseg``), relative to VOC2010.
LIST_DIRS = {"mat": os.path.join("ImageSets", "Main"),
             "mmseg": os.path.join("ImageSets", "SegmentationContext")}
SOURCES = ("json", "mat", "mmseg")
#: ``--classes`` -> the benchmark prepared.
CLASS_SETS: dict[str, BenchmarkSpec] = {"59": PCONTEXT_BENCHMARK, "459": PCONTEXT459_BENCHMARK}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, [s.split for s in PCONTEXT_BENCHMARK.splits])
    parser.add_argument("--source", choices=("auto", *SOURCES), default="auto",
                        help="format of the Context labels (default: the first present of "
                             f"{JSON_FILE}, {MAT_DIR}/, {MMSEG_DIR}/)")
    parser.add_argument("--classes", nargs="+", choices=list(CLASS_SETS), default=["59"],
                        help="label spaces to prepare: 59 (the zero-shot benchmark, default) "
                             "and/or 459 (the full labels.txt, val only, for evaluation)")
    return parser.parse_args(argv)


def detect_source(voc2010: str) -> str:
    """The first label format present under ``voc2010``: json, then mat, then mmseg."""
    for source, path in (("json", JSON_FILE), ("mat", MAT_DIR), ("mmseg", MMSEG_DIR)):
        if os.path.exists(os.path.join(voc2010, path)):
            return source
    raise UserError(f"no PASCAL Context labels under {voc2010}: expected {JSON_FILE}, "
                    f"{MAT_DIR}/*.mat or {MMSEG_DIR}/*.png; {README}")


# ---------------------------------------------------------------------------------------------
# Raw readers (module level: they run in worker processes)
# ---------------------------------------------------------------------------------------------
def read_label_mat(path: str) -> np.ndarray:
    """The ``LabelMap`` (full-space ids) of one ``.mat`` file of ``trainval.tar.gz``."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except FileNotFoundError as e:
        raise UserError(f"raw label file not found: {path}") from e
    except (ValueError, OSError, TypeError) as e:
        raise UserError(f"cannot read {path} ({e}); extract trainval.tar.gz again") from e
    if "LabelMap" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise UserError(f"{path} has no 'LabelMap' (keys: {keys}); expected a file of the "
                        f"official trainval.tar.gz")
    return np.asarray(mat["LabelMap"]).astype(np.int64)


def paint_segments(segments: Sequence[tuple[int, object]], height: int, width: int,
                   source: str) -> np.ndarray:
    """The full-space label map of one image of ``trainval_merged.json``.

    As the PASCAL in Detail API's class mask (``Detail.getMask(img)``): start from 0
    (unlabelled) and paint each segment's ``category_id`` in file order, later ones on top.
    Segments are COCO-style RLE (compressed or not) or polygons.
    """
    from pycocotools import mask as mask_utils

    label = np.full((height, width), FULL_UNLABELLED, dtype=np.int64)
    for category_id, segmentation in segments:
        try:
            if isinstance(segmentation, list):  # polygons
                rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
            elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
                rle = mask_utils.frPyObjects(segmentation, height, width)
            else:
                rle = segmentation
            mask = mask_utils.decode(rle)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise UserError(f"{source}: undecodable segmentation ({e})") from e
        if mask.shape != (height, width):
            raise UserError(f"{source}: segmentation of size {mask.shape[1]}x{mask.shape[0]} "
                            f"(WxH) in an image of {width}x{height}")
        label[mask.astype(bool)] = category_id
    return label


# ---------------------------------------------------------------------------------------------
# Raw labels per source: split -> [(stem, reader, source)]
# ---------------------------------------------------------------------------------------------
RawEntry = tuple[str, Callable[[], np.ndarray], str]


def json_raws(voc2010: str, splits: Sequence[str]) -> dict[str, list[RawEntry]]:
    """The raw labels of every split in ``trainval_merged.json`` (read once, here)."""
    path = os.path.join(voc2010, JSON_FILE)
    print(f"reading {path} ...")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        images, annotations = data["images"], data["annos_segmentation"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot read {path} as PASCAL in Detail annotations ({e!r}); "
                        f"download it again; {README}") from e
    segments = defaultdict(list)
    for ann in annotations:
        segments[ann["image_id"]].append((ann["category_id"], ann["segmentation"]))
    raws: dict[str, list[RawEntry]] = {split: [] for split in splits}
    for img in sorted(images, key=lambda i: i["file_name"]):
        if img.get("phase") not in raws:
            continue
        stem = os.path.splitext(img["file_name"])[0]
        source = f"{path} (image {img['file_name']}, id {img['image_id']})"
        read = functools.partial(paint_segments, tuple(segments.get(img["image_id"], ())),
                                 img["height"], img["width"], source)
        raws[img["phase"]].append((stem, read, source))
    for split, entries in raws.items():
        if not entries:
            raise UserError(f"{path} has no image of phase '{split}'; {README}")
    return raws


def file_raws(voc2010: str, splits: Sequence[str], source: str) -> dict[str, list[RawEntry]]:
    """The raw labels of every split, one file per image (``mat`` or ``mmseg``)."""
    raw_dir, ext = (MAT_DIR, ".mat") if source == "mat" else (MMSEG_DIR, ".png")
    require_dir(os.path.join(voc2010, raw_dir), f"PASCAL Context labels ({source})", README)
    reader = read_label_mat if source == "mat" else read_label_png
    raws = {}
    for split in splits:
        stems = read_split_list(os.path.join(voc2010, LIST_DIRS[source], f"{split}.txt"),
                                README)
        paths = [os.path.join(voc2010, raw_dir, f"{s}{ext}") for s in stems]
        require_files(paths, f"raw label(s) of the {split} list", README)
        raws[split] = [(s, functools.partial(reader, p), p) for s, p in zip(stems, paths)]
    return raws


def mapping_of(classes: str, source: str) -> RawLabelMapping:
    """Raw value -> contiguous id of label space ``classes`` from labels in ``source``."""
    if source == "mmseg":
        if classes != "59":
            raise UserError(f"--classes {classes} needs the full label space, which mmseg's "
                            f"{MMSEG_DIR} PNGs do not hold (59 classes only): use "
                            f"{JSON_FILE} or the .mat files of trainval.tar.gz; {README}")
        return MMSEG_MAPPING
    return FULL_MAPPING if classes == "59" else FULL459_MAPPING


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    voc2010 = os.path.join(args.root, VOC2010_DIR)
    require_dir(os.path.join(voc2010, "JPEGImages"), "VOC 2010 images", README)
    source = detect_source(voc2010) if args.source == "auto" else args.source
    targets: list[tuple[PreparedSplit, RawLabelMapping]] = [
        (split, mapping_of(classes, source))
        for classes in dict.fromkeys(args.classes)
        for split in CLASS_SETS[classes].splits if split.split in args.splits]
    if not targets:
        raise UserError(f"nothing to prepare: Context-459 has only a val split (--classes "
                        f"{' '.join(args.classes)} --splits {' '.join(args.splits)}); {README}")
    print(f"PASCAL Context labels: {source}")
    splits = list(dict.fromkeys(split.split for split, _ in targets))
    raws = json_raws(voc2010, splits) if source == "json" else \
        file_raws(voc2010, splits, source)
    for split, mapping in targets:
        label_dir = os.path.join(args.root, split.label_dir)
        jobs = [ConvertJob(stem=stem, image=os.path.join(voc2010, "JPEGImages", f"{stem}.jpg"),
                           output=os.path.join(label_dir, f"{stem}.png"), read_raw=read,
                           source=raw_source, mapping=mapping)
                for stem, read, raw_source in raws[split.split]]
        require_files([j.image for j in jobs], f"image(s) of the {split.split} split", README)
        convert_split(args.root, split, jobs, args.workers, args.overwrite,
                      official_count=OFFICIAL_COUNTS[source][split.split])


if __name__ == "__main__":
    raise SystemExit(run_main(main))
