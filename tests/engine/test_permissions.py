"""Files a run writes get the user's umask (0644 under the usual 022), not the 0600 of a
temporary file: a colleague (here a real second user, ``nobody``, when the tests run as root)
reads ``config.yaml``, ``metrics.json``, checkpoints, tables and pictures."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.engine.helpers import PREFIX, write_config
from zsseg_bench.cli import main
from zsseg_bench.utils.file_io import atomic_save, atomic_write_json, atomic_write_text
from zsseg_bench.utils.visualize import save_png

NOBODY = 65534
RUN_FILES = ("config.yaml", "env.json", "log.jsonl", "metrics.json", "model_final.pth",
             "last_checkpoint")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory others may enter (pytest's own tmp_path is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="zsseg_shared_", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Sets the process's umask for the test (restored afterwards)."""
    old = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _nobody_can_read(path: Path) -> bool:
    return subprocess.run(["cat", str(path)], user=NOBODY, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def _write_all(folder: Path) -> list[Path]:
    atomic_write_text(folder / "table.md", "| a |\n")
    atomic_write_json(folder / "cell.json", {"a": 1})
    atomic_save({"x": 1}, folder / "model.pth")
    save_png(folder / "plot.png", np.zeros((4, 4, 3), np.uint8))
    return [folder / n for n in ("table.md", "cell.json", "model.pth", "plot.png")]


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)],
                         ids=["umask-022", "umask-002", "umask-077"])
def test_atomic_writes_follow_the_umask(shared_dir, umask, mask, expected):
    umask(mask)
    for path in _write_all(shared_dir):
        assert _mode(path) == expected, path


@pytest.mark.skipif(os.geteuid() != 0, reason="a second user needs root to switch to")
def test_a_colleague_reads_a_training_run(toy_root, shared_dir, umask):
    umask(0o022)
    config = write_config(shared_dir / "config.yaml", SOLVER__MAX_ITER=2)
    out = shared_dir / "run"
    assert main(["train", "--no-progress", "--config-file", str(config), "--output-dir",
                 str(out), "DATASETS.TRAIN", f"('{PREFIX}_train',)", "DATASETS.TEST",
                 f"('{PREFIX}_val',)"]) == 0
    for name in RUN_FILES:
        assert _nobody_can_read(out / name), (name, oct(_mode(out / name)))
    for path in _write_all(shared_dir):
        assert _nobody_can_read(path), path
