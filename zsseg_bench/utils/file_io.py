"""Atomic writes: a crash or a kill never leaves a truncated result or checkpoint behind.

Every file a user produced (checkpoints, ``metrics.json``, ``speed.json``) is written to a
temporary file in the same directory and moved into place with :func:`os.replace`, which is
atomic on POSIX file systems. The file gets the permissions of any file the user creates
(``0666`` less the umask, e.g. ``0644``), not the ``0600`` of a temporary file, so colleagues
read results as they read the user's other files.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iopath.common.file_io import PathManager as _PathManagerFactory

PathManager = _PathManagerFactory()
"""The suite's iopath ``PathManager``; handlers such as ``zsseg_bench://`` register on it."""


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux reports it
    (``/proc/self/status``), else by setting and restoring it under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 -> as open() would create
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temp file in the same directory + rename)."""
    _atomic_write(path, lambda f: f.write(data), "wb")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")), "wb")


def json_safe(obj: Any) -> Any:
    """``obj`` as valid JSON can hold it: NaN and infinite floats become None (``null``; the
    suite's readers take it as a missing number), numpy / torch scalars Python numbers, tuples
    lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if getattr(obj, "ndim", None) == 0 and hasattr(obj, "item"):
        return json_safe(obj.item())
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented JSON to ``path`` atomically (valid JSON: NaN as null,
    :func:`json_safe`)."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False, default=str,
                                       allow_nan=False) + "\n")


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` of ``obj`` to ``path`` atomically."""
    import torch

    _atomic_write(path, lambda f: torch.save(obj, f), "wb")
