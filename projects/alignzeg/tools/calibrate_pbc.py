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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="a `zsseg-bench train` run directory "
                    "(config.yaml + model_final.pth)")
    ap.add_argument("--weights", default=None, help="default: RUN_DIR/model_final.pth")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9])
    ap.add_argument("--factors", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    ap.add_argument("--num-images", type=int, default=None,
                    help="images of the held-out split (default: its standard size)")
    ap.add_argument("--holdout-root", default="/tmp/zsseg_holdout",
                    help="where the held-out split is rendered (once)")
    ap.add_argument("--report-on", default=None, metavar="DATASET",
                    help="score the same settings on this registered dataset instead (e.g. "
                    "synthetic_val): to report them, never to choose")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
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
    if args.threads:
        torch.set_num_threads(args.threads)
    import zsseg_bench.data.datasets  # noqa: F401  (built-in registrations)
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.data.build import build_test_loader
    from zsseg_bench.data.catalog import MetadataCatalog
    from zsseg_bench.data.image_io import read_sem_seg
    from zsseg_bench.data.synthetic.holdout import (
        DEFAULT_NUM_IMAGES,
        HOLDOUT_SEED,
        register_holdout,
    )
    from zsseg_bench.engine.checkpoint import build_model_with_weights
    from zsseg_bench.evaluation.metrics import metrics_from_confusion
    from zsseg_bench.evaluation.sem_seg_evaluation import confusion_matrix
    from zsseg_bench.utils.file_io import atomic_write_json

    run_dir = Path(args.run_dir)
    weights = args.weights or str(run_dir / "model_final.pth")
    num_images = args.num_images or DEFAULT_NUM_IMAGES
    name = args.report_on or register_holdout(args.holdout_root, num_images)
    cfg = setup_cfg(str(run_dir / "config.yaml"), ["MODEL.WEIGHTS", weights,
                                                   "DATASETS.TEST", (name,)])
    model, _ = build_model_with_weights(cfg, weights)
    model.eval()
    model.set_test_dataset(name)
    head = model.head
    meta = MetadataCatalog.get(name)
    num_classes = len(meta.stuff_classes)
    settings = [("off", None, None)] + [(f"t={t:g} f={f:g}", t, f)
                                        for t in args.thresholds for f in args.factors]
    confusions = {s[0]: torch.zeros(num_classes, num_classes, dtype=torch.long)
                  for s in settings}
    replay = Replay(head)
    head.proposals = replay
    with torch.no_grad():
        for batch in build_test_loader(cfg, name):
            gts = [torch.from_numpy(read_sem_seg(x["sem_seg_file_name"], num_classes))
                   for x in batch]
            replay.reset()
            for i, (label, threshold, factor) in enumerate(settings):
                if i:
                    replay.start_replay()
                head.pbc = threshold is not None
                if threshold is not None:
                    head.pbc_threshold, head.pbc_factor = threshold, factor
                for gt, out in zip(gts, model(batch)):
                    pred = out["sem_seg"].cpu().argmax(0)
                    confusions[label] += confusion_matrix(pred, gt, num_classes,
                                                          meta.ignore_label)
    rows = []
    for label, threshold, factor in settings:
        m = metrics_from_confusion(confusions[label], meta.seen_classes, meta.unseen_classes)
        rows.append({"setting": label, "threshold": threshold, "factor": factor,
                     **{k: round(m[k], 2) for k in ("mIoU-seen", "mIoU-unseen", "hIoU",
                                                    "mIoU")}})
    best = max(rows[1:], key=lambda r: r["hIoU"])
    print(f"{'PBC':>14} {'seen':>6} {'unseen':>6} {'hIoU':>6} {'mIoU':>6}")
    for r in rows:
        print(f"{r['setting']:>14} {r['mIoU-seen']:>6.2f} {r['mIoU-unseen']:>6.2f} "
              f"{r['hIoU']:>6.2f} {r['mIoU']:>6.2f}")
    if args.report_on:
        atomic_write_json(str(run_dir / f"pbc_report_{name}.json"),
                          {"weights": weights, "dataset": name, "rows": rows})
        return 0
    print(f"best hIoU on the held-out split: threshold {best['threshold']} factor "
          f"{best['factor']}")
    record = {"weights": weights, "holdout_seed": HOLDOUT_SEED, "num_images": num_images,
              "rows": rows, "best": best}
    atomic_write_json(str(run_dir / "pbc_calibration.json"), record)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
