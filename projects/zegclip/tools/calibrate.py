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

from zsseg_bench.data.synthetic.holdout import DEFAULT_ROOT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="a `zsseg-bench train` run directory "
                    "(config.yaml + model_final.pth)")
    ap.add_argument("--weights", default=None, help="default: RUN_DIR/model_final.pth")
    ap.add_argument("--values", type=float, nargs="+",
                    default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4])
    ap.add_argument("--num-images", type=int, default=None,
                    help="images of the held-out split (default: its standard size)")
    ap.add_argument("--holdout-root", default=DEFAULT_ROOT,
                    help="where the held-out split is rendered (once)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    return ap.parse_args(argv)


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
    name = register_holdout(args.holdout_root, num_images)
    cfg = setup_cfg(str(run_dir / "config.yaml"),
                    ["MODEL.WEIGHTS", weights, "DATASETS.TEST", (name,),
                     "MODEL.ZEGCLIP.SEEN_SCORE_CALIBRATION", 0.0,
                     "MODEL.ZEGCLIP.SELF_TRAIN_SEEN_SCORE_CALIBRATION", 0.0])
    model, _ = build_model_with_weights(cfg, weights)
    model.eval()
    model.set_test_dataset(name)
    meta = MetadataCatalog.get(name)
    num_classes = len(meta.stuff_classes)
    seen = torch.zeros(num_classes, dtype=torch.bool)
    seen[list(meta.seen_classes)] = True
    confusions = {v: torch.zeros(num_classes, num_classes, dtype=torch.long)
                  for v in args.values}
    with torch.no_grad():
        for batch in build_test_loader(cfg, name):
            for inp, out in zip(batch, model(batch)):
                scores = out["sem_seg"].cpu()
                gt = torch.from_numpy(read_sem_seg(inp["sem_seg_file_name"], num_classes))
                for v in args.values:
                    pred = (scores - v * seen.view(-1, 1, 1).float()).argmax(0)
                    confusions[v] += confusion_matrix(pred, gt, num_classes, meta.ignore_label)
    rows = []
    for v in args.values:
        m = metrics_from_confusion(confusions[v], meta.seen_classes, meta.unseen_classes)
        rows.append({"calibration": v, **{k: round(m[k], 2) for k in
                                          ("mIoU-seen", "mIoU-unseen", "hIoU", "mIoU")}})
    best = max(rows, key=lambda r: r["hIoU"])
    print(f"{'calibration':>11} {'seen':>6} {'unseen':>6} {'hIoU':>6} {'mIoU':>6}")
    for r in rows:
        print(f"{r['calibration']:>11.3f} {r['mIoU-seen']:>6.2f} {r['mIoU-unseen']:>6.2f} "
              f"{r['hIoU']:>6.2f} {r['mIoU']:>6.2f}")
    print(f"best hIoU on the held-out split: calibration {best['calibration']}")
    record = {"weights": weights, "holdout_seed": HOLDOUT_SEED, "num_images": num_images,
              "rows": rows, "best": best}
    atomic_write_json(str(run_dir / "calibration.json"), record)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
