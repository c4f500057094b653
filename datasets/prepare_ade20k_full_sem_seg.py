#!/usr/bin/env python
"""Prepares ADE20K-847 (the full ADE20K release) for the evaluation-only ``ade20k_847_val``.

Reads, under ``--root`` (default ``$ZSSEG_DATASETS``, else ``./datasets``), the official
release as extracted::

    ADE20K_2021_17_01/index_ade20k.pkl      image folders and file names, objectnames
    <folder>/ADE_val_<n>.jpg                 folder from the index, relative to the root
    <folder>/ADE_val_<n>_seg.png             RGB: class = R / 10 * 256 + G (0 = unlabelled)

(the index is a Python pickle: load only the official file). Writes, as Mask2Former's converter
(images whose short side exceeds 512 shrunk to 512, labels alike, 847 classes as ids 0..846,
everything else 65535)::

    ADE20K_2021_17_01/images_zsseg/validation/<name>.jpg
    ADE20K_2021_17_01/annotations_zsseg/validation/<name>.png   16-bit PNGs

plus a manifest ``validation.json`` beside the label folder. Classes and id mapping:
:mod:`zsseg_bench.data.datasets.ade20k_full`. Finished files are kept, so the script is
idempotent and resumes after an interruption. See datasets/README.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
from collections.abc import Sequence

import numpy as np

from zsseg_bench.data.datasets.ade20k_full import (
    ADE20K_847_BENCHMARK,
    ADE_FULL_DIR,
    INDEX_FILE,
    MAX_SHORT_SIDE,
    raw_to_contiguous,
)
from zsseg_bench.data.prepare_utils import (
    ConvertJob,
    RawLabelMapping,
    add_common_arguments,
    convert_split,
    read_label_png,
    require_files,
    run_main,
)
from zsseg_bench.utils.errors import UserError

README = "see 'ADE20K-847' in datasets/README.md"
#: The split of an image, from its file name (``ADE_val_00000001.jpg``), as MaskFormer's converter.
FILE_SPLITS = {"validation": "val"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, [s.split for s in ADE20K_847_BENCHMARK.splits])
    return parser.parse_args(argv)


def read_index(path: str) -> tuple[list[str], list[str], int]:
    """(folders, file names, number of object classes) of the official ``index_ade20k.pkl``."""
    try:
        with open(path, "rb") as f:
            index = pickle.load(f)
        folders, files = [str(x) for x in index["folder"]], [str(x) for x in index["filename"]]
        num_classes = len(index["objectnames"])
    except FileNotFoundError as e:
        raise UserError(f"ADE20K index not found: {path}; {README}") from e
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError,
            AttributeError) as e:
        raise UserError(f"cannot read {path} as the official ADE20K index (with 'folder', "
                        f"'filename', 'objectnames'): {e!r}; download it again") from e
    if len(folders) != len(files):
        raise UserError(f"{path}: {len(folders)} folders but {len(files)} file names")
    return folders, files, num_classes


def read_class_mask(path: str) -> np.ndarray:
    """The object class of every pixel of an official ``*_seg.png`` (``R / 10 * 256 + G``, the
    toolkit's ``loadAde20K``)."""
    seg = read_label_png(path, modes=("RGB",))
    return (seg[..., 0].astype(np.int32) // 10) * 256 + seg[..., 1].astype(np.int32)


def build_jobs(root: str, split_name: str, label_dir: str, image_dir: str) -> list[ConvertJob]:
    """One :class:`ConvertJob` per image of the index in split ``split_name``."""
    folders, files, num_classes = read_index(os.path.join(root, ADE_FULL_DIR, INDEX_FILE))
    mapping = RawLabelMapping(raw_to_contiguous(num_classes),
                              f"0 (unlabelled) and 1..{num_classes} (the object classes of "
                              f"{INDEX_FILE})")
    jobs = []
    for folder, name in sorted(zip(folders, files), key=lambda x: x[1]):
        parts = name.split("_")
        if len(parts) < 2 or parts[1] != FILE_SPLITS[split_name]:
            continue
        stem = os.path.splitext(name)[0]
        raw = os.path.join(root, folder, f"{stem}_seg.png")
        jobs.append(ConvertJob(
            stem=stem, image=os.path.join(root, folder, name),
            output=os.path.join(label_dir, f"{stem}.png"),
            read_raw=functools.partial(read_class_mask, raw), source=raw, mapping=mapping,
            image_output=os.path.join(image_dir, f"{stem}.jpg"), max_short_side=MAX_SHORT_SIDE))
    if not jobs:
        raise UserError(f"{INDEX_FILE} lists no image of {split_name} "
                        f"(ADE_{FILE_SPLITS[split_name]}_*.jpg); {README}")
    require_files([j.image for j in jobs], f"image(s) of the {split_name} split", README)
    require_files([j.source for j in jobs], f"raw label(s) (*_seg.png) of the {split_name} "
                                           f"split", README)
    return jobs


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for split in ADE20K_847_BENCHMARK.splits:
        if split.split in args.splits:
            jobs = build_jobs(args.root, split.split, os.path.join(args.root, split.label_dir),
                              os.path.join(args.root, split.image_dir))
            convert_split(args.root, split, jobs, args.workers, args.overwrite)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
