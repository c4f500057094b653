#!/usr/bin/env python
"""Score a trained SAN toy run on the toy world's held-out renders under config variants
(never on synthetic_val): how the toy config's inference choices were made.

Renders (once) the held-out split (``zsseg_bench.data.synthetic.holdout``), builds the run's
model once per variant (``NAME KEY VALUE [KEY VALUE ...]``, config overrides on top of the run's
``config.yaml``) and prints seen / unseen mIoU, hIoU and mIoU per variant::

    python -m zsseg_bench.projects.san.tools.holdout --run-dir RUN \\
        --variant slide TEST.MODE slide --variant whole TEST.MODE whole

Writes ``holdout.json`` into the run directory (atomically).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from zsseg_bench.engine.calibration import (
    add_holdout_arguments,
    add_to_confusion,
    batches_with_labels,
    load_holdout_run,
    metric_rows,
    print_rows,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_holdout_arguments(ap)
    ap.add_argument("--variant", nargs="+", action="append", metavar="NAME [KEY VALUE]",
                    default=None, help="a named set of config overrides (repeatable; default: "
                                       "the run's config as it is)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from zsseg_bench.utils.errors import UserError
    from zsseg_bench.utils.file_io import atomic_write_json

    variants = args.variant or [["as_trained"]]
    for v in variants:
        if len(v) % 2 != 1:
            raise UserError(f"--variant {' '.join(v)}: a name, then KEY VALUE pairs")
    confusions, labels, run = {}, {}, None
    for name, *opts in variants:
        run = load_holdout_run(args, opts)
        confusion = torch.zeros(run.num_classes, run.num_classes, dtype=torch.long)
        for batch, gts in batches_with_labels(run):
            for out, gt in zip(run.model(batch), gts):
                add_to_confusion(confusion, out["sem_seg"].argmax(0).cpu(), gt, run)
        confusions[name], labels[name] = confusion, {"variant": name, "overrides": opts}
    rows = metric_rows(confusions, run, labels)
    print_rows(rows, "variant")
    best = max(rows, key=lambda r: r["hIoU"])
    atomic_write_json(os.path.join(Path(args.run_dir), "holdout.json"), run.record(rows, best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
