"""The engine tests' tiny toy world, and one tiny model trained on it for the whole module."""

from __future__ import annotations

import pytest

from tests.engine.helpers import PREFIX, write_config

#: The in-process registration of the tiny toy world (tests/conftest.py, toy_root).
DATASETS = ["DATASETS.TRAIN", f"('{PREFIX}_train',)", "DATASETS.TEST", f"('{PREFIX}_val',)"]


@pytest.fixture(scope="module")
def trained(toy_root, tmp_path_factory):
    """(config file, model_final.pth) of the test-only head trained 8 steps on the toy world."""
    from zsseg_bench.cli import main

    tmp = tmp_path_factory.mktemp("predict_run")
    config = write_config(tmp / "config.yaml")
    run = tmp / "run"
    assert main(["train", "--no-progress", "--config-file", str(config), "--output-dir",
                 str(run), *DATASETS]) == 0
    return config, run / "model_final.pth"
