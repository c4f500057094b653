"""End to end through the CLI: SAN trained on a small toy world with the shipped [CLS]-pooled
toy CLIP (short schedule, seeded) segments unseen classes far above chance."""

import pytest

from tests.cli_helpers import REPO, train_toy

CONFIG = REPO / "configs" / "synthetic" / "san.yaml"
NUM_TRAIN, NUM_VAL = 64, 40
#: Guessing uniformly among the 21 toy classes gives an unseen class an IoU of about 1% (see
#: tests/projects/zegclip/test_toy_cli.py); the bar is 20x chance.
UNSEEN_FLOOR = 20.0


@pytest.mark.slow
def test_toy_run_beats_chance_on_unseen_classes(tmp_path):
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path / "datasets"
    prepare_synthetic(str(root), num_train=NUM_TRAIN, num_val=NUM_VAL)
    record = train_toy(CONFIG, tmp_path / "run", root, "SOLVER.MAX_ITER", "400",
                       "DATALOADER.NUM_WORKERS", "0", "SEED", "0")
    assert record["iteration"] == 400 and record["dataset"] == "synthetic_val"
    metrics = record["metrics"]
    assert metrics["mIoU-unseen"] > UNSEEN_FLOOR, metrics
    assert metrics["mIoU-seen"] > UNSEEN_FLOOR, metrics


@pytest.mark.slow
def test_ddp_two_processes_train(tmp_path):
    """Every parameter gets a gradient in a step (the head does not ask DDP to look for unused
    ones): a 2-process gloo DDP run trains."""
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path / "datasets"
    prepare_synthetic(str(root), num_train=8, num_val=2)
    record = train_toy(CONFIG, tmp_path / "ddp", root, "MODEL.DEVICE", "cpu",
                       "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "4",
                       "DATALOADER.NUM_WORKERS", "0", nproc=2, timeout=300)
    assert record["iteration"] == 2
