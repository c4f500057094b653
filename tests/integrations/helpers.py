"""Shared set-up of the detectron2 integration tests: the skip-or-fail rule, the tiny toy
world's overrides and the command lines of both engines."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAIN_NET = REPO / "scripts" / "train_net.py"
TOY_CONFIGS = sorted((REPO / "configs" / "synthetic").glob("*.yaml"))
#: Set by .ci/run's detectron2 step: a missing detectron2 is then a failure, not a skip.
REQUIRE_ENV = "ZSSEG_REQUIRE_DETECTRON2"
#: Dataset-name prefix of the in-process registration of the tiny toy world.
PREFIX = "d2_test"
NUM_TRAIN, NUM_VAL = 8, 4
#: Tiny runs: 2 steps of 2 images, no loader workers, CPU.
TINY_OPTS = ["SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "TEST.IMS_PER_BATCH", "2",
             "DATALOADER.NUM_WORKERS", "0", "MODEL.DEVICE", "cpu",
             "SOLVER.CHECKPOINT_PERIOD", "1000"]


def require_detectron2() -> None:
    """Skips the calling test module when detectron2 is not installed, or fails it when
    ``$ZSSEG_REQUIRE_DETECTRON2`` is 1 (the CI step that built detectron2)."""
    if importlib.util.find_spec("detectron2") is not None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"detectron2 is not importable but {REQUIRE_ENV}=1: the integration tests "
                    "must run (build detectron2 first, see .ci/run)", pytrace=False)
    pytest.skip("detectron2 is not installed (.ci/run builds it for these tests)",
                allow_module_level=True)


def env(datasets_root: Path) -> dict[str, str]:
    """Environment of a subprocess: the tiny toy world, one thread."""
    return {**os.environ, "ZSSEG_DATASETS": str(datasets_root), "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def run(args: list[str], datasets_root: Path, timeout: float = 300) -> None:
    """Runs ``python ARGS`` in the repository; fails the test with its output on an error."""
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env(datasets_root),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def same_metrics(a: dict[str, float | None], b: dict[str, float | None]) -> bool:
    """Equal keys and values; a metric without value is NaN in detectron2's files and null in the
    suite's JSON files (valid JSON), and the two are equal."""
    def missing(v: float | None) -> bool:
        return v is None or math.isnan(v)

    return a.keys() == b.keys() and all(
        (missing(a[k]) and missing(b[k])) or a[k] == b[k] for k in a)
