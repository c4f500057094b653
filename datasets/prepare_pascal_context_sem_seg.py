#!/usr/bin/env python
"""Prepares PASCAL Context (59 classes) for the zero-shot benchmark ``pcontext_zs_{train,val}``.

Reads, under ``--root`` (default ``$ZSSEG_DATASETS``, else ``./datasets``), the VOC 2010 images
``VOCdevkit/VOC2010/JPEGImages/<name>.jpg`` and the Context labels in one of three formats
(``--source``; ``auto`` takes the first one present):

- ``json``: ``VOCdevkit/VOC2010/trainval_merged.json``, the official PASCAL in Detail
  annotations that zsseg (and mmseg's converter) use; splits from each image's ``phase``.
- ``mat``: ``VOCdevkit/VOC2010/trainval/<name>.mat`` (official ``trainval.tar.gz``, key
  ``LabelMap``); splits from ``VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt``.
- ``mmseg``: ``VOCdevkit/VOC2010/SegmentationClassContext/<name>.png`` written by mmseg's
  converter; splits from ``VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt``.

Writes ``VOCdevkit/VOC2010/annotations_zsseg/pc59_{train,val}/<name>.png`` (59 classes as ids
0..58, everything else 255) plus a manifest ``pc59_{train,val}.json`` beside each folder.
Classes, split and id mappings: :mod:`zsseg_bench.data.datasets.pcontext`. Finished files are
kept, so the script is idempotent and resumes after an interruption. See datasets/README.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from zsseg_bench.data.datasets.pcontext import (
    FULL_TO_CONTIGUOUS,
    FULL_UNLABELLED,
    MMSEG_TO_CONTIGUOUS,
    NUM_FULL_LABELS,
    OFFICIAL_COUNTS,
    PCONTEXT_BENCHMARK,
    VOC2010_DIR,
)
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, [s.split for s in PCONTEXT_BENCHMARK.splits])
    parser.add_argument("--source", choices=("auto", *SOURCES), default="auto",
                        help="format of the Context labels (default: the first present of "
                             f"{JSON_FILE}, {MAT_DIR}/, {MMSEG_DIR}/)")
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
# Jobs per source
# ---------------------------------------------------------------------------------------------
def _job(voc2010: str, split_dir: str, stem: str, read_raw, source: str,
         mapping: RawLabelMapping) -> ConvertJob:
    return ConvertJob(stem=stem, image=os.path.join(voc2010, "JPEGImages", f"{stem}.jpg"),
                      output=os.path.join(split_dir, f"{stem}.png"), read_raw=read_raw,
                      source=source, mapping=mapping)


def json_jobs(voc2010: str, label_dirs: dict[str, str]) -> dict[str, list[ConvertJob]]:
    """Jobs of every split from ``trainval_merged.json`` (read once, here)."""
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
    jobs: dict[str, list[ConvertJob]] = {split: [] for split in label_dirs}
    for img in sorted(images, key=lambda i: i["file_name"]):
        if img.get("phase") not in jobs:
            continue
        stem = os.path.splitext(img["file_name"])[0]
        source = f"{path} (image {img['file_name']}, id {img['image_id']})"
        read = functools.partial(paint_segments, tuple(segments.get(img["image_id"], ())),
                                 img["height"], img["width"], source)
        jobs[img["phase"]].append(_job(voc2010, label_dirs[img["phase"]], stem, read, source,
                                       FULL_MAPPING))
    for split, split_jobs in jobs.items():
        if not split_jobs:
            raise UserError(f"{path} has no image of phase '{split}'; {README}")
    return jobs


def file_jobs(voc2010: str, label_dirs: dict[str, str], source: str) -> dict[str, list]:
    """Jobs of every split from one file per image (``mat`` or ``mmseg``)."""
    raw_dir, ext = (MAT_DIR, ".mat") if source == "mat" else (MMSEG_DIR, ".png")
    require_dir(os.path.join(voc2010, raw_dir), f"PASCAL Context labels ({source})", README)
    jobs = {}
    for split, label_dir in label_dirs.items():
        stems = read_split_list(os.path.join(voc2010, LIST_DIRS[source], f"{split}.txt"),
                                README)
        raws = [os.path.join(voc2010, raw_dir, f"{s}{ext}") for s in stems]
        require_files(raws, f"raw label(s) of the {split} list", README)
        if source == "mat":
            reads = [functools.partial(read_label_mat, r) for r in raws]
        else:
            reads = [functools.partial(read_label_png, r) for r in raws]
        mapping = FULL_MAPPING if source == "mat" else MMSEG_MAPPING
        jobs[split] = [_job(voc2010, label_dir, s, read, raw, mapping)
                       for s, read, raw in zip(stems, reads, raws)]
    return jobs


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    voc2010 = os.path.join(args.root, VOC2010_DIR)
    require_dir(os.path.join(voc2010, "JPEGImages"), "VOC 2010 images", README)
    source = detect_source(voc2010) if args.source == "auto" else args.source
    splits = [s for s in PCONTEXT_BENCHMARK.splits if s.split in args.splits]
    label_dirs = {s.split: os.path.join(args.root, s.label_dir) for s in splits}
    print(f"PASCAL Context labels: {source}")
    if source == "json":
        jobs = json_jobs(voc2010, label_dirs)
    else:
        jobs = file_jobs(voc2010, label_dirs, source)
    for split in splits:
        require_files([j.image for j in jobs[split.split]],
                      f"image(s) of the {split.split} split", README)
        convert_split(args.root, split, jobs[split.split], args.workers, args.overwrite,
                      official_count=OFFICIAL_COUNTS[source][split.split])


if __name__ == "__main__":
    raise SystemExit(run_main(main))
