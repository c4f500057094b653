"""The run directory every command writes (README: "Run directory").

``config.yaml`` (resolved config), ``env.json`` (versions, device, git commit) and
``log.jsonl`` (one JSON object per line: metrics every N iterations, events) are created by
:func:`setup_run_dir`; ``metrics.json`` / ``speed.json`` are written atomically by the
commands that produce them. Sweeps and reports read only these files.

A run directory belongs to one process at a time: :func:`lock_run_dir` holds ``run.lock``
(an exclusive ``flock``, released by the kernel when the process ends in any way, so the lock
of a killed process is never stale) and records the holder's pid, host and command in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zsseg_bench.utils.env import collect_env
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_json, atomic_write_text, json_safe

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
LOG_FILE = "log.jsonl"
METRICS_FILE = "metrics.json"
SPEED_FILE = "speed.json"
RUN_LOCK_FILE = "run.lock"


def make_output_dir(path: str | Path, option: str = "--output-dir") -> Path:
    """Creates the directory ``path`` (and its parents) and checks that files can be created in
    it; a :class:`UserError` naming the directory and ``option`` otherwise (permission denied,
    read-only file system, a file in the way)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            raise NotADirectoryError(f"Not a directory: '{path}'")
        probe = path / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        reason = e.strerror or str(e)
        raise UserError(f"cannot write to the output directory {path} ({reason}): choose a "
                        f"writable {option}") from None
    return path


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"`{info['command']}`, pid {info['pid']} on {info['host']}, since {started}"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def lock_run_dir(path: str | Path, command: str) -> Iterator[Path]:
    """Holds ``<path>/run.lock`` while the block runs (the directory is created).

    Raises:
        UserError: another process holds it (the message names its command, pid and host), or
            the directory cannot be written.
    """
    out = make_output_dir(path)
    lock = out / RUN_LOCK_FILE
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with os.fdopen(fd, "r", encoding="utf-8") as f:
                holder = _holder(f.read())
            raise UserError(f"{out} is in use by {holder}: wait for it to finish or stop it, or "
                            "choose another --output-dir") from None
        try:  # the lock file another process removed (released) while we opened it: again
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "command": command, "started": time.time()}).encode())
        yield out
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)  # releases the lock


class JSONLWriter:
    """Appends one JSON object per line to ``log.jsonl`` and flushes, so a kill loses nothing
    (valid JSON: a NaN is written as null)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        """Appends ``record`` with a wall-clock timestamp."""
        line = json.dumps(json_safe({"time": time.time(), **record}), default=_to_builtin,
                          allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _to_builtin(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def setup_run_dir(output_dir: str | Path, cfg: Any, device: str | None = None,
                  is_main_process: bool = True,
                  extra_env: dict[str, Any] | None = None) -> JSONLWriter:
    """Creates ``output_dir`` and writes ``config.yaml`` and ``env.json`` into it.

    Args:
        output_dir: the run directory.
        cfg: the resolved config (a ``CfgNode``); dumped as YAML.
        device: the device the run uses, recorded in ``env.json``.
        is_main_process: only the main process writes (DDP rank 0).
        extra_env: more entries of ``env.json`` (e.g. ``data``, the datasets used).

    Returns:
        The writer of the run's ``log.jsonl``.
    """
    out = Path(output_dir)
    if is_main_process:
        make_output_dir(out)
        atomic_write_text(out / CONFIG_FILE, cfg.dump())
        atomic_write_json(out / ENV_FILE, {**collect_env(device), **(extra_env or {})})
    return JSONLWriter(out / LOG_FILE)
