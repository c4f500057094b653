"""A run's state, typed: :class:`RunStatus` (``status.json``) and its one writer.

Every change of a run's state goes through :meth:`RunStatus.save` (the only function that writes
``status.json``); readers get a :class:`RunStatus` from :func:`read_status`. The JSON layout is
the one sweeps have always written, so older sweep directories read unchanged::

    {"run_id": ..., "state": "running", "updated": 1712345678.9,
     "stages": {"train": {"state": "running", "attempt": 1, "pid": 4242, "host": ..., ...}},
     "error": ..., "traceback": ..., "job_id": ..., "job_log": ...}
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_json
from zsseg_bench.utils.sweep_layout import STATUS_FILE


class RunState(str, enum.Enum):
    """The state of a run or of one of its stages (a ``str``: compares and serialises as its
    value)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped with a checkpoint: resumable

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass
class StageStatus:
    """One stage of a run: its state and, once started, how its last attempt went."""

    state: RunState = RunState.PENDING
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    returncode: int | None = None
    host: str | None = None
    pid: int | None = None
    command: list[str] | None = None
    error: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StageStatus:
        """Parses one entry of ``status.json``'s ``stages`` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["state"] = RunState(kwargs.get("state", RunState.PENDING))
        kwargs["attempt"] = int(kwargs.get("attempt") or 0)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the state as its string value; unset fields left out)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        d["state"] = self.state.value
        return d


@dataclasses.dataclass
class RunStatus:
    """The state of one run (``<run dir>/status.json``).

    Attributes:
        run_id: the run's id (its directory's name).
        state: the run's overall state (see :meth:`settle`).
        stages: stage name -> :class:`StageStatus`, in the cell's order.
        updated: time of the last write.
        error: what failed outside the stages (a launcher or job error), if anything.
        traceback: the Python traceback of such an error.
        job_id: the Slurm job that ran the run last, if any.
        job_log: that job's log file.
    """

    run_id: str
    state: RunState = RunState.PENDING
    stages: dict[str, StageStatus] = dataclasses.field(default_factory=dict)
    updated: float | None = None
    error: str | None = None
    traceback: str | None = None
    job_id: str | None = None
    job_log: str | None = None

    # -- reading and writing ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], run_id: str = "") -> RunStatus:
        """Parses ``status.json``; raises ``ValueError``/``TypeError`` on a malformed one."""
        if not isinstance(d, Mapping) or "state" not in d:
            raise ValueError("no 'state'")
        stages = d.get("stages") or {}
        if not isinstance(stages, Mapping):
            raise TypeError("'stages' is not a mapping")
        return cls(run_id=str(d.get("run_id") or run_id), state=RunState(d["state"]),
                   stages={s: StageStatus.from_dict(e) for s, e in stages.items()},
                   updated=d.get("updated"), error=d.get("error"),
                   traceback=d.get("traceback"),
                   job_id=None if d.get("job_id") is None else str(d["job_id"]),
                   job_log=d.get("job_log"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the layout of the module docstring)."""
        d: dict[str, Any] = {"run_id": self.run_id, "state": self.state.value,
                             "stages": {s: e.to_dict() for s, e in self.stages.items()},
                             "updated": self.updated}
        for key in ("error", "traceback", "job_id", "job_log"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d

    def save(self, run_dir: str | Path) -> RunStatus:
        """Writes ``<run_dir>/status.json`` atomically (the one writer); returns ``self``."""
        self.updated = time.time()
        atomic_write_json(Path(run_dir) / STATUS_FILE, self.to_dict())
        return self

    # -- queries ------------------------------------------------------------------------------
    def stage(self, name: str) -> StageStatus:
        """The status of stage ``name`` (created pending if the run has none yet)."""
        return self.stages.setdefault(name, StageStatus())

    def running_stage(self) -> str | None:
        """The stage that runs now, if any."""
        return next((s for s, e in self.stages.items() if e.state is RunState.RUNNING), None)

    def failure(self) -> str | None:
        """Why the run failed: its own error, else the first failed stage's; None if neither."""
        if self.error:
            return self.error
        for name, entry in self.stages.items():
            if entry.state is RunState.FAILED:
                return f"{name}: {entry.error or 'failed'}"
        return None

    def done_except(self, stages: Sequence[str]) -> bool:
        """Whether every stage but ``stages`` is done while one of ``stages`` is not (a run
        whose other work is over and that waits for, e.g., its timing)."""
        rest = [e.state is RunState.DONE for s, e in self.stages.items() if s not in stages]
        return all(rest) and any(e.state is not RunState.DONE
                                 for s, e in self.stages.items() if s in stages)

    # -- transitions --------------------------------------------------------------------------
    def settle(self, wanted: Sequence[str]) -> RunStatus:
        """Sets the overall state from the stages in ``wanted``: running, interrupted or failed
        if any stage is (in that order), done if all are done, else pending."""
        states = [self.stages[s].state if s in self.stages else RunState.PENDING
                  for s in wanted]
        for state in (RunState.RUNNING, RunState.INTERRUPTED, RunState.FAILED):
            if state in states:
                self.state = state
                return self
        self.state = RunState.DONE if all(s is RunState.DONE for s in states) \
            else RunState.PENDING
        return self

    def end_running(self, state: RunState, **facts: Any) -> RunStatus:
        """Ends the run as ``state`` (failed by a launcher/job error, or interrupted): stages
        still marked running take that state too. ``facts``: ``error``, ``traceback``,
        ``job_id``, ``job_log``."""
        for entry in self.stages.values():
            if entry.state is RunState.RUNNING:
                entry.state = state
        self.state = state
        for key, value in facts.items():
            if key not in {"error", "traceback", "job_id", "job_log"}:
                raise TypeError(f"unknown run fact {key!r}")
            setattr(self, key, value)
        return self


def read_status(run_dir: str | Path) -> RunStatus | None:
    """The run's ``status.json``, or None if it has none; raises UserError naming a malformed
    file and what to do."""
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return None
    try:
        return RunStatus.from_dict(json.loads(path.read_text(encoding="utf-8")),
                                   run_id=Path(run_dir).name)
    except (ValueError, TypeError) as e:
        raise UserError(f"{path} is malformed ({e}); delete it to reset the run") from e


def read_status_or_none(run_dir: str | Path) -> RunStatus | None:
    """:func:`read_status` that treats a malformed file as none (for writers that replace it)."""
    try:
        return read_status(run_dir)
    except UserError:
        return None
