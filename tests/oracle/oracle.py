"""How an oracle test finds and runs an official implementation.

Each official code base lives in its own virtual environment (its pins clash with the suite's),
named by an environment variable holding that environment's python:

- ``ZSSEG_ORACLE_ZEGCLIP_PYTHON``: ZegCLIP (``tests/oracle/setup_zegclip_env.sh PREFIX``);
- ``ZSSEG_ORACLE_ZSSEG_PYTHON``: zsseg.baseline.

A test whose oracle is not set is skipped, unless ``ZSSEG_REQUIRE_ORACLE=1`` (set by the CI
step that builds the environments): then it fails. The official side runs as a script under the
oracle's python (:func:`run_oracle`), exchanging files with the test; the suite never imports
official code.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

#: Set by .ci/run's oracle steps: a missing oracle is then a failure, not a skip.
REQUIRE_ENV = "ZSSEG_REQUIRE_ORACLE"
HERE = Path(__file__).resolve().parent


def oracle_env_var(name: str) -> str:
    """``zegclip`` -> ``ZSSEG_ORACLE_ZEGCLIP_PYTHON``."""
    return f"ZSSEG_ORACLE_{name.upper()}_PYTHON"


def oracle_python(name: str) -> str:
    """The python of oracle ``name``; skips the calling test (module) when it is not set, or
    fails it when ``ZSSEG_REQUIRE_ORACLE=1``."""
    var = oracle_env_var(name)
    path = os.environ.get(var, "")
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    why = (f"{var} names no executable ({path!r})" if path else f"{var} is not set")
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{why} but {REQUIRE_ENV}=1: build the oracle environment first "
                    f"(tests/oracle/README.md)", pytrace=False)
    pytest.skip(f"{why} (the official {name} code: tests/oracle/README.md)",
                allow_module_level=True)


def run_oracle(python: str, script: str, spec: dict[str, Any], workdir: Path,
               timeout: float = 600) -> str:
    """Runs ``python tests/oracle/<script> <workdir>/spec.json``; returns its stdout. A failure
    fails the test with the end of the oracle's stderr."""
    spec_file = workdir / "spec.json"
    spec_file.write_text(json.dumps({"threads": torch.get_num_threads(), **spec}, indent=1))
    env = {**os.environ, "OMP_NUM_THREADS": str(spec.get("threads", torch.get_num_threads()))}
    proc = subprocess.run([python, str(HERE / script), str(spec_file)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"the official side ({script}) failed with code {proc.returncode}:\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    return proc.stdout
