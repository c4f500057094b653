"""The run directory every command writes (README: "Run directory").

``config.yaml`` (resolved config), ``env.json`` (versions, device, git commit) and
``log.jsonl`` (one JSON object per line: metrics every N iterations, events) are created by
:func:`setup_run_dir`; ``metrics.json`` / ``speed.json`` are written atomically by the
commands that produce them. Sweeps and reports read only these files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from zsseg_bench.utils.env import collect_env
from zsseg_bench.utils.file_io import atomic_write_json, atomic_write_text

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
LOG_FILE = "log.jsonl"
METRICS_FILE = "metrics.json"
SPEED_FILE = "speed.json"


class JSONLWriter:
    """Appends one JSON object per line to ``log.jsonl`` and flushes, so a kill loses nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        """Appends ``record`` with a wall-clock timestamp."""
        line = json.dumps({"time": time.time(), **record}, default=_to_builtin)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _to_builtin(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def setup_run_dir(output_dir: str | Path, cfg: Any, device: str | None = None,
                  is_main_process: bool = True) -> JSONLWriter:
    """Creates ``output_dir`` and writes ``config.yaml`` and ``env.json`` into it.

    Args:
        output_dir: the run directory.
        cfg: the resolved config (a ``CfgNode``); dumped as YAML.
        device: the device the run uses, recorded in ``env.json``.
        is_main_process: only the main process writes (DDP rank 0).

    Returns:
        The writer of the run's ``log.jsonl``.
    """
    out = Path(output_dir)
    if is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / CONFIG_FILE, cfg.dump())
        atomic_write_json(out / ENV_FILE, collect_env(device))
    return JSONLWriter(out / LOG_FILE)
