"""End to end through the CLI: AlignZeg trained on a small toy world with the shipped toy CLIP
(short schedule, seeded) segments unseen classes far above chance."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# The CLI with a small private toy world registered (shared with the ZegCLIP test).
RUN_CLI = REPO / "tests" / "projects" / "zegclip" / "run_cli.py"
TOY_CLIP = REPO / "zsseg_bench" / "model_zoo" / "toy_clip" / "toy_clip.pt"
NUM_TRAIN, NUM_VAL = 64, 40
#: Guessing uniformly among the 21 toy classes gives an unseen class an IoU of about 1% (see
#: tests/projects/zegclip/test_toy_cli.py); the bar is 20x chance.
UNSEEN_FLOOR = 20.0


@pytest.mark.slow
@pytest.mark.skipif(not TOY_CLIP.is_file(), reason="the toy CLIP checkpoint is not shipped")
def test_toy_run_beats_chance_on_unseen_classes(tmp_path):
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path / "datasets"
    prepare_synthetic(str(root), num_train=NUM_TRAIN, num_val=NUM_VAL)
    env = {**os.environ, "ZEGCLIP_TEST_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    cmd = [sys.executable, str(RUN_CLI), "train", "--no-progress",
           "--config-file", str(REPO / "configs" / "synthetic" / "alignzeg.yaml"),
           "--output-dir", str(out),
           "DATASETS.TRAIN", '("zegclip_test_train",)', "DATASETS.TEST", '("zegclip_test_val",)',
           "SOLVER.MAX_ITER", "300", "SOLVER.IMS_PER_BATCH", "8",
           "DATALOADER.NUM_WORKERS", "0", "SEED", "0"]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "metrics.json").read_text())
    assert record["dataset"] == "zegclip_test_val"
    metrics = record["metrics"]
    assert metrics["mIoU-unseen"] > UNSEEN_FLOOR, metrics
    assert metrics["mIoU-seen"] > UNSEEN_FLOOR, metrics
