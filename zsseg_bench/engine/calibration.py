"""What every method's calibration tool shares: a trained run on the toy world's held-out split,
its batches with their labels, and one metrics row per setting tried.

A tool (``projects/<method>/tools/``) loads the run with :func:`load_holdout_run`, scores each of
its settings into a confusion matrix while iterating :func:`batches_with_labels`, and turns the
matrices into rows with :func:`metric_rows` (printed by :func:`print_rows`). Constants are chosen
on the held-out split, never on ``synthetic_val``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zsseg_bench.data.synthetic.holdout import DEFAULT_NUM_IMAGES, DEFAULT_ROOT, HOLDOUT_SEED

#: Metrics of a row, in print order.
ROW_METRICS = ("mIoU-seen", "mIoU-unseen", "hIoU", "mIoU")


def add_holdout_arguments(ap: argparse.ArgumentParser) -> None:
    """``--run-dir``, ``--weights``, ``--num-images``, ``--holdout-root``, ``--threads``."""
    ap.add_argument("--run-dir", required=True, help="a `zsseg-bench train` run directory "
                    "(config.yaml + model_final.pth)")
    ap.add_argument("--weights", default=None, help="default: RUN_DIR/model_final.pth")
    ap.add_argument("--num-images", type=int, default=None,
                    help="images of the held-out split (default: its standard size)")
    ap.add_argument("--holdout-root", default=DEFAULT_ROOT,
                    help="where the held-out split is rendered (once)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")


@dataclass
class HoldoutRun:
    """A trained model set to infer on ``dataset`` (the held-out split unless asked otherwise)."""

    cfg: Any
    model: torch.nn.Module
    dataset: str
    meta: Any
    weights: str
    num_images: int

    @property
    def num_classes(self) -> int:
        return len(self.meta.stuff_classes)

    def record(self, rows: list[dict[str, Any]], best: dict[str, Any]) -> dict[str, Any]:
        """What a tool writes next to the run: the split, every row and the choice."""
        return {"weights": self.weights, "dataset": self.dataset, "holdout_seed": HOLDOUT_SEED,
                "num_images": self.num_images, "rows": rows, "best": best}


def load_holdout_run(args: argparse.Namespace, opts: Sequence[Any] = (),
                     dataset: str | None = None) -> HoldoutRun:
    """Renders (once) and registers the held-out split, then builds the run's model from its
    ``config.yaml`` and weights (``opts``: config overrides, e.g. a calibration set to 0)."""
    import zsseg_bench.data.datasets  # noqa: F401  (built-in registrations)
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.data.catalog import MetadataCatalog
    from zsseg_bench.data.synthetic.holdout import register_holdout
    from zsseg_bench.engine.checkpoint import build_model_with_weights

    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    weights = args.weights or str(run_dir / "model_final.pth")
    num_images = args.num_images or DEFAULT_NUM_IMAGES
    name = dataset or register_holdout(args.holdout_root, num_images)
    cfg = setup_cfg(str(run_dir / "config.yaml"),
                    ["MODEL.WEIGHTS", weights, "DATASETS.TEST", (name,), *opts])
    model, _ = build_model_with_weights(cfg, weights)
    model.eval()
    model.set_test_dataset(name)
    return HoldoutRun(cfg, model, name, MetadataCatalog.get(name), weights, num_images)


def batches_with_labels(run: HoldoutRun) -> Iterator[tuple[list[dict], list[torch.Tensor]]]:
    """``(batched_inputs, label maps)`` of the run's dataset, under ``no_grad``."""
    from zsseg_bench.data.build import build_test_loader
    from zsseg_bench.data.image_io import read_sem_seg

    with torch.no_grad():
        for batch in build_test_loader(run.cfg, run.dataset):
            yield batch, [torch.from_numpy(read_sem_seg(x["sem_seg_file_name"], run.num_classes,
                                                        run.meta.ignore_label))
                          for x in batch]


def add_to_confusion(confusion: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor,
                     run: HoldoutRun) -> None:
    """Adds one image's prediction to ``confusion`` (in place)."""
    from zsseg_bench.evaluation.sem_seg_evaluation import confusion_matrix

    confusion += confusion_matrix(pred, gt, run.num_classes, run.meta.ignore_label)


def metric_rows(confusions: dict[Any, torch.Tensor], run: HoldoutRun,
                labels: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting: ``labels[setting]`` (what identifies it) + :data:`ROW_METRICS`."""
    from zsseg_bench.evaluation.metrics import metrics_from_confusion

    rows = []
    for setting, confusion in confusions.items():
        m = metrics_from_confusion(confusion, run.meta.seen_classes, run.meta.unseen_classes)
        rows.append({**labels[setting], **{k: round(m[k], 2) for k in ROW_METRICS}})
    return rows


def print_rows(rows: list[dict[str, Any]], key: str) -> None:
    """A table of ``rows``: column ``key`` (the setting), then seen / unseen / hIoU / mIoU."""
    width = max(len(key), *(len(str(r[key])) for r in rows))
    print(f"{key:>{width}} {'seen':>6} {'unseen':>6} {'hIoU':>6} {'mIoU':>6}")
    for r in rows:
        print(f"{r[key]!s:>{width}} " + " ".join(f"{r[k]:>6.2f}" for k in ROW_METRICS))
