"""How the SAN oracle test finds and runs the official code, and its comparison table.

The official SAN runs in its own virtual environment (detectron2, open_clip 2.16, timm 0.6.13:
``tests/oracle/setup_san_env.sh PREFIX``), named by ``ZSSEG_ORACLE_SAN_PYTHON`` (that
environment's python wrapper). Without it the test is skipped, unless ``ZSSEG_REQUIRE_ORACLE=1``
(set by the CI block that builds the environment): then it fails. The official side runs as a
script under the oracle's python (:func:`run_oracle`), exchanging files with the test; the suite
never imports official code.

(The same conventions as the ZegCLIP and zsseg oracles of issue 28; at merge these helpers can
join theirs.)
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

REQUIRE_ENV = "ZSSEG_REQUIRE_ORACLE"
PYTHON_ENV = "ZSSEG_ORACLE_SAN_PYTHON"
HERE = Path(__file__).resolve().parent


def oracle_python() -> str:
    """The oracle's python; skips the calling module when unset (fails under
    ``ZSSEG_REQUIRE_ORACLE=1``)."""
    path = os.environ.get(PYTHON_ENV, "")
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    why = f"{PYTHON_ENV} names no executable ({path!r})" if path else f"{PYTHON_ENV} is not set"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{why} but {REQUIRE_ENV}=1: build it with tests/oracle/setup_san_env.sh",
                    pytrace=False)
    pytest.skip(f"{why} (the official SAN: tests/oracle/setup_san_env.sh)",
                allow_module_level=True)


def run_oracle(python: str, script: str, spec: dict[str, Any], workdir: Path,
               timeout: float = 900) -> str:
    """Runs ``python tests/oracle/<script> <workdir>/spec.json``; a failure fails the test
    with the end of the official side's stderr."""
    spec_file = workdir / "spec.json"
    spec = {"threads": torch.get_num_threads(), **spec}
    spec_file.write_text(json.dumps(spec, indent=1))
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    proc = subprocess.run([python, str(HERE / script), str(spec_file)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"the official side ({script}) failed with code {proc.returncode}:\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    return proc.stdout


def relative_error(ours: torch.Tensor, official: torch.Tensor) -> float:
    """``max |ours - official| / max |official|`` (shapes must be equal)."""
    if tuple(ours.shape) != tuple(official.shape):
        raise AssertionError(f"shape {tuple(ours.shape)} vs official {tuple(official.shape)}")
    ours, official = ours.detach().double(), official.detach().double()
    scale = float(official.abs().max()) if official.numel() else 0.0
    diff = float((ours - official).abs().max()) if official.numel() else 0.0
    return diff / scale if scale > 0 else diff


@dataclass
class StageTable:
    """Rows (stage, value, limit); :meth:`check` prints the table and fails on any row over
    its limit."""

    title: str
    rows: list[tuple[str, float, float]] = field(default_factory=list)

    def close(self, stage: str, ours: torch.Tensor, official: torch.Tensor, tol: float) -> float:
        err = relative_error(ours, official)
        self.rows.append((stage, err, tol))
        return err

    def count(self, stage: str, value: int, limit: int = 0) -> None:
        self.rows.append((stage, float(value), float(limit)))

    def failures(self) -> list[str]:
        return [s for s, v, lim in self.rows if not v <= lim]

    def __str__(self) -> str:
        width = max([len(s) for s, _, _ in self.rows] + [5])
        lines = [self.title, f"  {'stage':<{width}}  {'value':>10}  {'limit':>9}  ok"]
        lines += [f"  {s:<{width}}  {v:>10.2e}  {lim:>9.1e}  {'yes' if v <= lim else 'NO'}"
                  for s, v, lim in self.rows]
        return "\n".join(lines)

    def check(self) -> None:
        print(self)
        if self.failures():
            pytest.fail(f"the suite differs from the official code:\n{self}", pytrace=False)
