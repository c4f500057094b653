"""Running the ``zsseg-bench`` CLI in a subprocess, for every test that goes through it (the
engine's and every method's): a toy world as the datasets root (``$ZSSEG_DATASETS``, the
built-in ``synthetic_*`` names), one thread per process, the test-only head registered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLI_MAIN = Path(__file__).with_name("cli_main.py")


def cli_env(datasets_root: str | Path) -> dict[str, str]:
    """Environment of a CLI subprocess: the toy world at ``datasets_root``, one thread."""
    return {**os.environ, "ZSSEG_DATASETS": str(datasets_root), "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def cli_command(*args: str, nproc: int = 1) -> list[str]:
    """``python tests/cli_main.py ARGS``, or through torchrun with ``nproc`` processes."""
    if nproc == 1:
        return [sys.executable, str(CLI_MAIN), *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            str(nproc), str(CLI_MAIN), *args]


def run_cli(*args: str, datasets_root: str | Path, nproc: int = 1,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the CLI in a subprocess and waits (output captured)."""
    return subprocess.run(cli_command(*args, nproc=nproc), capture_output=True, text=True,
                          cwd=REPO, env=cli_env(datasets_root), timeout=timeout)


def train_toy(config_file: str | Path, output_dir: str | Path, datasets_root: str | Path,
              *opts: str, nproc: int = 1, timeout: float = 600) -> dict[str, Any]:
    """``zsseg-bench train`` of a config (a method's toy config) on the toy world at
    ``datasets_root`` with ``KEY VALUE`` overrides; asserts success, returns metrics.json."""
    proc = run_cli("train", "--no-progress", "--config-file", str(config_file),
                   "--output-dir", str(output_dir), *opts, datasets_root=datasets_root,
                   nproc=nproc, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((Path(output_dir) / "metrics.json").read_text())


def wait_until(predicate: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120.0,
               what: str = "the run") -> None:
    """Waits until ``predicate()`` holds while ``proc`` runs; fails (with the process's stderr)
    when it ends first, and kills it on a timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"process ended early ({proc.returncode}): {err[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}")
