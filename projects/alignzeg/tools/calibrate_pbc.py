#!/usr/bin/env python
"""Choose AlignZeg's PBC threshold and factor on held-out toy-world renders (never synthetic_val).

Renders (once) the toy world's held-out split (``zsseg_bench.data.synthetic.holdout``), runs a
trained AlignZeg model on it **once** (its proposals of every window are recorded), then replays
those proposals for every (threshold, factor) pair -- and for PBC off -- and scores each: seen /
unseen mIoU and hIoU, then the pair with the best hIoU.

    python -m zsseg_bench.projects.alignzeg.tools.calibrate_pbc --run-dir output/alignzeg_toy \
        --thresholds 0.3 0.5 0.7 --factors 0 0.25 0.5 0.75

Writes ``pbc_calibration.json`` into the run directory (atomically) and prints a table. With
``--report-on synthetic_val`` the same settings are only scored on that split (for the README's
PBC switch row; ``pbc_report_<dataset>.json``), nothing is chosen.
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
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9])
    ap.add_argument("--factors", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    ap.add_argument("--report-on", default=None, metavar="DATASET",
                    help="score the same settings on this registered dataset instead (e.g. "
                    "synthetic_val): to report them, never to choose")
    return ap.parse_args(argv)


class Replay:
    """Wraps ``head.proposals``: records its outputs in call order, then replays them."""

    def __init__(self, head: torch.nn.Module):
        self.head = head
        self.original = head.proposals
        self.recorded: list = []
        self.replaying: list | None = None

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        if self.replaying is not None:
            return self.replaying.pop(0)
        out = self.original(*args, **kwargs)
        self.recorded.append(out)
        return out

    def start_replay(self) -> None:
        self.replaying = list(self.recorded)

    def reset(self) -> None:
        self.recorded, self.replaying = [], None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from zsseg_bench.utils.file_io import atomic_write_json

    run = load_holdout_run(args, dataset=args.report_on)
    head = run.model.head
    settings = [("off", None, None)] + [(f"t={t:g} f={f:g}", t, f)
                                        for t in args.thresholds for f in args.factors]
    confusions = {s[0]: torch.zeros(run.num_classes, run.num_classes, dtype=torch.long)
                  for s in settings}
    replay = Replay(head)
    head.proposals = replay
    for batch, gts in batches_with_labels(run):
        replay.reset()
        for i, (label, threshold, factor) in enumerate(settings):
            if i:
                replay.start_replay()
            head.pbc = threshold is not None
            if threshold is not None:
                head.pbc_threshold, head.pbc_factor = threshold, factor
            for gt, out in zip(gts, run.model(batch)):
                add_to_confusion(confusions[label], out["sem_seg"].cpu().argmax(0), gt, run)
    rows = metric_rows(confusions, run, {label: {"setting": label, "threshold": t, "factor": f}
                                         for label, t, f in settings})
    print_rows(rows, "setting")
    run_dir = Path(args.run_dir)
    if args.report_on:
        atomic_write_json(str(run_dir / f"pbc_report_{run.dataset}.json"),
                          {"weights": run.weights, "dataset": run.dataset, "rows": rows})
        return 0
    best = max(rows[1:], key=lambda r: r["hIoU"])
    print(f"best hIoU on the held-out split: threshold {best['threshold']} factor "
          f"{best['factor']}")
    atomic_write_json(str(run_dir / "pbc_calibration.json"), run.record(rows, best))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
