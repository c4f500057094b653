#!/usr/bin/env python
"""Prepares ADE20K-150 (ADEChallengeData2016) for the evaluation-only ``ade20k_150_val``.

Reads, under ``--root`` (default ``$ZSSEG_DATASETS``, else ``./datasets``)::

    ADEChallengeData2016/images/validation/<name>.jpg
    ADEChallengeData2016/annotations/validation/<name>.png   raw 0 (other) and 1..150

and writes ``ADEChallengeData2016/annotations_zsseg/validation/<name>.png`` (150 classes as ids
0..149, "other" 255) plus a manifest ``validation.json`` beside the folder. Classes and id
mapping: :mod:`zsseg_bench.data.datasets.ade20k`. Finished files are kept, so the script is
idempotent and resumes after an interruption. See datasets/README.md.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from zsseg_bench.data.datasets.ade20k import (
    ADE20K_150_BENCHMARK,
    ADE20K_150_CLASSES,
    ADE_CHALLENGE_DIR,
    RAW_TO_CONTIGUOUS,
)
from zsseg_bench.data.prepare_utils import (
    RawLabelMapping,
    add_common_arguments,
    convert_split,
    paired_folder_jobs,
    run_main,
)

MAPPING = RawLabelMapping(RAW_TO_CONTIGUOUS, f"0 (other objects) and 1..{len(ADE20K_150_CLASSES)} "
                                             f"(objectInfo150 classes)")
README = "see 'ADE20K-150' in datasets/README.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, [s.split for s in ADE20K_150_BENCHMARK.splits])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    base = os.path.join(args.root, ADE_CHALLENGE_DIR)
    for split in ADE20K_150_BENCHMARK.splits:
        if split.split in args.splits:
            jobs = paired_folder_jobs(
                os.path.join(base, "images", split.split),
                os.path.join(base, "annotations", split.split),
                os.path.join(args.root, split.label_dir), MAPPING, split.split,
                (f"ADE20K {split.split} images", f"ADE20K {split.split} annotations"), README)
            convert_split(args.root, split, jobs, args.workers, args.overwrite)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
