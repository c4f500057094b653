"""Progress of a running sweep on the console: which run, which stage, iteration and ETA.

The runs' own output goes to their ``stdout.log``; without this, a sweep (and the demo) is
silent until a run ends, which may be many minutes. :class:`ProgressMonitor` prints, every
``period_s`` seconds, one line per running run, read from the run's files (``status.json``: the
running stage; ``train/log.jsonl``: the last training record, with its iteration and ETA)::

    [progress 0:40] zegclip-synthetic-inductive-s0-1a2b3c4d5e: train: started at 0/1000 0:35 ago
    (iterations are logged every 50)
    [progress 2:10] zegclip-synthetic-inductive-s0-1a2b3c4d5e: train 350/1000 (ETA 3:05)
    [progress 2:40] zegclip-synthetic-inductive-s0-1a2b3c4d5e: evaluating (trained 1000/1000)

Display only: nothing is decided from these lines.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from zsseg_bench.sweep.status import read_status
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.run_dir import LOG_FILE
from zsseg_bench.utils.sweep_layout import stage_dir

#: Seconds between two progress reports.
DEFAULT_PERIOD_S = 30.0
#: Bytes read from the end of a ``log.jsonl`` to find its last records.
_TAIL_BYTES = 16384


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _LogFollower:
    """Reads a ``log.jsonl`` incrementally (only what was appended since the last call) and
    keeps its last start / resume event and its last training record."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.start: dict[str, Any] | None = None
        self.train: dict[str, Any] | None = None

    def update(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # a line being written is read next time
        self.offset += end
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("type") == "event" and record.get("event") in ("start", "resume"):
                self.start, self.train = record, None
            elif record.get("type") == "train":
                self.train = record


def run_progress(run_dir: Path, follower: _LogFollower | None = None) -> str | None:
    """What the run in ``run_dir`` is doing now, or None when no stage runs (``follower``: the
    reader of its training log kept between calls; a new one reads the whole log)."""
    try:
        status = read_status(run_dir)
    except (OSError, UserError):
        return None
    stage = status.running_stage() if status is not None else None
    if stage is None:
        return None
    if stage != "train":
        return stage
    follower = follower or _LogFollower(stage_dir(run_dir, stage) / LOG_FILE)
    follower.update()
    start, train = follower.start, follower.train
    if start is None:
        return "train: starting"
    total = start.get("max_iter")
    if train is None:
        since = _clock(time.time() - start.get("time", time.time()))
        period = start.get("log_period")
        return (f"train: started at {start.get('start_iter', 0)}/{total} {since} ago"
                + (f" (iterations are logged every {period})" if period else ""))
    done = train.get("iteration")
    if done is not None and total is not None and done >= total:
        return f"evaluating (trained {done}/{total})"
    eta = train.get("eta_s")
    return f"train {done}/{total}" + (f" (ETA {_clock(eta)})" if eta is not None else "")


class ProgressMonitor:
    """Prints :func:`run_progress` of the running runs every ``period_s`` seconds, from a
    daemon thread, while the ``with`` block runs.

    Args:
        run_dirs: the runs of this launch.
        stream: where to print.
        period_s: seconds between two reports (<= 0: never).
    """

    def __init__(self, run_dirs: Sequence[Path], stream: TextIO,
                 period_s: float = DEFAULT_PERIOD_S):
        self.run_dirs = [Path(d) for d in run_dirs]
        self._followers = {d: _LogFollower(stage_dir(d, "train") / LOG_FILE)
                           for d in self.run_dirs}
        self.stream = stream
        self.period_s = float(period_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = time.monotonic()

    def report(self) -> list[str]:
        """The progress lines of the running runs (also printed)."""
        lines = []
        for run_dir in self.run_dirs:
            what = run_progress(run_dir, self._followers[run_dir])
            if what is not None:
                lines.append(f"[progress {_clock(time.monotonic() - self._start)}] "
                             f"{run_dir.name}: {what}")
        for line in lines:
            print(line, file=self.stream, flush=True)
        return lines

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self.report()

    def __enter__(self) -> ProgressMonitor:
        if self.period_s > 0:
            self._thread = threading.Thread(target=self._loop, name="sweep-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
