"""Fixtures of the sweep tests: a real single-node Slurm cluster (``scripts/slurm_cluster.py``),
started once per session and always stopped.

Outside CI a machine without Slurm (or not root) skips the tests that need it, with the reason;
with ``CI=true`` they fail, showing the daemons' logs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm_cluster.py"


@pytest.fixture(scope="session")
def slurm_cluster() -> Path:
    """The ``slurm.conf`` of a running throwaway cluster (stopped at the end of the session)."""
    root = Path(tempfile.mkdtemp(prefix="zsseg-slurm-"))  # short: munge's socket path is limited
    res = subprocess.run([sys.executable, str(SCRIPT), "start", "--dir", str(root)],
                         capture_output=True, text=True, timeout=180)
    if res.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        message = f"cannot start a Slurm cluster: {res.stderr.strip() or res.stdout.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield root / "slurm.conf"
    finally:
        subprocess.run([sys.executable, str(SCRIPT), "stop", "--dir", str(root)],
                       capture_output=True, text=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
