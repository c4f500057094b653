#!/usr/bin/env python
"""Choose ZegCLIP's seen-score calibration on held-out toy-world renders (never on synthetic_val).

Renders (once) the toy world's held-out split (``zsseg_bench.data.synthetic.holdout``, the one
every method's toy constants are chosen on), runs a trained ZegCLIP model on it once, and
scores every calibration value (the constant subtracted from seen-class scores,
``MODEL.ZEGCLIP.SEEN_SCORE_CALIBRATION``) from the same score maps: seen / unseen mIoU and hIoU
per value, then the value with the best hIoU.

    python -m zsseg_bench.projects.zegclip.tools.calibrate --run-dir output/zegclip_toy \
        --values 0 0.05 0.1 0.15 0.2 0.3

Writes ``calibration.json`` into the run directory (atomically) and prints a table.
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
    ap.add_argument("--values", type=float, nargs="+",
                    default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4])
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from zsseg_bench.utils.file_io import atomic_write_json

    run = load_holdout_run(args, ["MODEL.ZEGCLIP.SEEN_SCORE_CALIBRATION", 0.0,
                                  "MODEL.ZEGCLIP.SELF_TRAIN_SEEN_SCORE_CALIBRATION", 0.0])
    seen = torch.zeros(run.num_classes, dtype=torch.bool)
    seen[list(run.meta.seen_classes)] = True
    offset = seen.view(-1, 1, 1).float()
    confusions = {v: torch.zeros(run.num_classes, run.num_classes, dtype=torch.long)
                  for v in args.values}
    for batch, gts in batches_with_labels(run):  # one inference, every value scored from it
        for gt, out in zip(gts, run.model(batch)):
            scores = out["sem_seg"].cpu()
            for v in args.values:
                add_to_confusion(confusions[v], (scores - v * offset).argmax(0), gt, run)
    rows = metric_rows(confusions, run, {v: {"calibration": v} for v in args.values})
    best = max(rows, key=lambda r: r["hIoU"])
    print_rows(rows, "calibration")
    print(f"best hIoU on the held-out split: calibration {best['calibration']}")
    atomic_write_json(str(Path(args.run_dir) / "calibration.json"), run.record(rows, best))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
