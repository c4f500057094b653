"""End to end through the CLI: a short, seeded toy-world run beats chance on unseen classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import REPO, train_toy

CONFIG = REPO / "configs" / "synthetic" / "two_stage.yaml"
NUM_TRAIN, NUM_VAL = 160, 24
#: A short schedule on small crops (the toy config trains 1200 iterations on 160 px crops):
#: about 30 s of CPU time for training and evaluation. The config's weight average (decay
#: 0.995) would still hold 55 % of the initial weights after 120 steps: a shorter one here.
OPTS = ["SOLVER.MAX_ITER", "120", "INPUT.CROP.SIZE", "(96, 96)", "SOLVER.LOG_PERIOD", "40",
        "DATALOADER.NUM_WORKERS", "0", "SEED", "0", "MODEL_EMA.DECAY", "0.9"]


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    """A small toy world (same renderer and split, fewer images) as the datasets root."""
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path_factory.mktemp("two_stage_toy")
    prepare_synthetic(str(root), num_train=NUM_TRAIN, num_val=NUM_VAL)
    return root


def chance_iou(root: Path, class_ids: list[int], num_classes: int) -> float:
    """Expected mean IoU over ``class_ids`` of a predictor drawing every pixel's class uniformly:
    for a class covering n of N pixels, IoU = (n/K) / (n + N/K - n/K)."""
    from zsseg_bench.data.image_io import read_sem_seg
    from zsseg_bench.data.synthetic import label_path

    counts = np.zeros(num_classes)
    for i in range(NUM_VAL):
        counts += np.bincount(read_sem_seg(label_path(str(root), "val", i)).ravel(),
                              minlength=num_classes)[:num_classes]
    n, total, k = counts[class_ids], counts.sum(), num_classes
    return float(np.mean((n / k) / (n + total / k - n / k))) * 100


@pytest.mark.slow
def test_short_toy_run_beats_chance_on_unseen_classes(toy_root, tmp_path):
    from zsseg_bench.data.synthetic import NUM_CLASSES, UNSEEN_CLASS_IDS

    record = train_toy(CONFIG, tmp_path / "run", toy_root, *OPTS)
    metrics = record["metrics"]
    chance = chance_iou(toy_root, list(UNSEEN_CLASS_IDS), NUM_CLASSES)
    assert chance < 3.0  # sanity of the yardstick: unseen objects are small
    assert metrics["mIoU-unseen"] > 3 * chance, (metrics, chance)
    assert metrics["hIoU"] > 0
