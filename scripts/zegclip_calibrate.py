#!/usr/bin/env python
"""Choose ZegCLIP's seen-score calibration on held-out toy-world renders (never on synthetic_val).

Renders a held-out set of the toy world with a seed of its own (default 7; the benchmark's
splits use seed 0), runs a trained ZegCLIP model on it once, and scores every calibration value
(the constant subtracted from seen-class scores, ``MODEL.ZEGCLIP.SEEN_SCORE_CALIBRATION``) from
the same score maps: seen / unseen mIoU and hIoU per value, then the value with the best hIoU.

    python scripts/zegclip_calibrate.py --run-dir output/zegclip_toy \
        --values 0 0.05 0.1 0.15 0.2 0.3

Writes ``calibration.json`` into the run directory (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Held-out render seed: differs from the toy benchmark's seed (0), so no image is shared.
HOLDOUT_SEED = 7
HOLDOUT_PREFIX = "zegclip_holdout"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="a `zsseg-bench train` run directory "
                    "(config.yaml + model_final.pth)")
    ap.add_argument("--weights", default=None, help="default: RUN_DIR/model_final.pth")
    ap.add_argument("--values", type=float, nargs="+",
                    default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4])
    ap.add_argument("--num-images", type=int, default=300)
    ap.add_argument("--seed", type=int, default=HOLDOUT_SEED)
    ap.add_argument("--root", default=None, help="where to render (default: a temp dir)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import zsseg_bench.data.datasets  # noqa: F401  (built-in registrations)
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.data.build import build_test_loader
    from zsseg_bench.data.catalog import DatasetCatalog, MetadataCatalog
    from zsseg_bench.data.datasets.synthetic import register_all_synthetic
    from zsseg_bench.data.image_io import read_sem_seg
    from zsseg_bench.data.synthetic import prepare_synthetic
    from zsseg_bench.engine.checkpoint import build_model_with_weights
    from zsseg_bench.evaluation.metrics import metrics_from_confusion
    from zsseg_bench.evaluation.sem_seg_evaluation import confusion_matrix
    from zsseg_bench.utils.file_io import atomic_write_json

    run_dir = Path(args.run_dir)
    weights = args.weights or str(run_dir / "model_final.pth")
    root = args.root or tempfile.mkdtemp(prefix="zegclip_holdout_")
    prepare_synthetic(root, num_train=1, num_val=args.num_images, seed=args.seed)
    if f"{HOLDOUT_PREFIX}_val" not in DatasetCatalog.list():
        register_all_synthetic(root, prefix=HOLDOUT_PREFIX, num_train=1,
                               num_val=args.num_images)
    name = f"{HOLDOUT_PREFIX}_val"
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
    print(f"best hIoU on held-out renders (seed {args.seed}): calibration {best['calibration']}")
    record = {"weights": weights, "holdout_seed": args.seed, "num_images": args.num_images,
              "rows": rows, "best": best}
    atomic_write_json(str(run_dir / "calibration.json"), record)
    if args.root is None:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
