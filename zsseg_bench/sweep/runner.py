"""Running one cell: its stages as subprocesses, output to ``stdout.log``, state to ``status.json``.

:func:`run_cell` is what every launcher executes (in a thread of the local launcher, or
pickled into a submitit job). Stages already finished (result file present) are skipped, so a
re-launched run redoes only what is missing. Children run in their own process group; a
:class:`ProcessRegistry` terminates them all when the sweep is interrupted, and their runs are
marked ``interrupted`` (resumable), not ``failed``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from zsseg_bench.sweep.spec import Cell
from zsseg_bench.sweep.status import RunState, RunStatus, StageStatus, read_status
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.sweep_layout import (
    CELL_FILE,
    RESULT_FILES,
    STDOUT_FILE,
    result_file,
    stage_dir,
    stage_finished,
)

#: Seconds a child gets between SIGTERM and SIGKILL when the sweep is interrupted.
TERMINATE_GRACE_S = 30.0  # time enough for the engine to save a checkpoint on SIGTERM
#: Exit codes of ``zsseg-bench train`` stopped by a signal after saving a checkpoint (the
#: engine's ``EXIT_CODE_SIGTERM`` and ``EXIT_CODE_SIGINT``): the stage is ``interrupted``
#: (resumable), not ``failed``.
STOPPED_EXIT_CODES = (128 + signal.SIGTERM, 128 + signal.SIGINT)
_POLL_S = 0.2


class ProcessRegistry:
    """The live child processes of this sweep process, so that a signal can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: stop() may run in a signal handler
        self._procs: set[subprocess.Popen] = set()
        self.stopping = threading.Event()
        self.stop_time: float | None = None
        self._callbacks: list[Callable[[], None]] = []

    def add_stop_callback(self, fn: Callable[[], None]) -> None:
        """Calls ``fn()`` when the sweep stops (e.g. to cancel submitted jobs)."""
        with self._lock:
            self._callbacks.append(fn)

    def remove_stop_callback(self, fn: Callable[[], None]) -> None:
        """Undoes :meth:`add_stop_callback`."""
        with self._lock:
            if fn in self._callbacks:
                self._callbacks.remove(fn)

    def register(self, proc: subprocess.Popen) -> None:
        """Tracks ``proc``; if the sweep is already stopping, terminates it at once."""
        with self._lock:
            self._procs.add(proc)
        if self.stopping.is_set():
            _signal_group(proc.pid, signal.SIGTERM)

    def unregister(self, proc: subprocess.Popen) -> None:
        """Stops tracking ``proc`` (it has exited)."""
        with self._lock:
            self._procs.discard(proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Marks the sweep as stopping and sends ``sig`` to every child's process group.

        Safe to call from a signal handler. Threads waiting on a child escalate to SIGKILL
        after :data:`TERMINATE_GRACE_S`.
        """
        if not self.stopping.is_set():
            self.stop_time = time.monotonic()
            self.stopping.set()
        with self._lock:
            procs = list(self._procs)
            callbacks = list(self._callbacks)
        for proc in procs:
            _signal_group(proc.pid, sig)
        for fn in callbacks:
            fn()

    def wait_stopped(self, grace_s: float = TERMINATE_GRACE_S) -> None:
        """Waits until every child has exited, SIGKILLs those still alive after ``grace_s``.

        Safe in a signal handler that interrupted a thread waiting on a child (a child that has
        exited but is not reaped yet counts as exited).
        """
        deadline = time.monotonic() + grace_s
        with self._lock:
            procs = list(self._procs)
        while any(_alive(p.pid) for p in procs) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        for proc in procs:
            if _alive(proc.pid):
                _signal_group(proc.pid, signal.SIGKILL)

    def reset(self) -> None:
        """Forgets a previous stop (a new sweep in the same process, e.g. in tests)."""
        self.stopping.clear()
        self.stop_time = None


#: The registry of this process (launchers and signal handlers share it).
REGISTRY = ProcessRegistry()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _signal_group(pid: int, sig: int) -> None:
    """Signals the process group of ``pid`` (a stage runs in a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def build_stage_command(cell: Cell, stage: str, run_dir: str | Path) -> list[str]:
    """The command line of ``stage`` of ``cell`` run in ``run_dir``.

    Placeholders in the template and in override values: ``{python}`` (this interpreter),
    ``{config_file}``, ``{output_dir}`` (``<run dir>/<stage>``), ``{run_dir}``, ``{seed}``,
    ``{stage}``; an element equal to ``{args}`` expands to the stage's extra options, one equal
    to ``{opts}`` to its ``KEY VALUE`` list.
    """
    subs = {
        "{python}": sys.executable,
        "{config_file}": cell.config_file,
        "{output_dir}": str(stage_dir(run_dir, stage)),
        "{run_dir}": str(run_dir),
        "{seed}": str(cell.seed),
        "{stage}": stage,
    }

    def sub(text: str) -> str:
        for key, value in subs.items():
            text = text.replace(key, value)
        return text

    cmd: list[str] = []
    for part in cell.commands[stage]:
        if part == "{opts}":
            cmd += [sub(o) for o in cell.opts[stage]]
        elif part == "{args}":
            cmd += [sub(a) for a in cell.args.get(stage, [])]
        else:
            cmd.append(sub(part))
    return cmd


# ------------------------------------------------------------------------------------------
# cell.json and status.json
# ------------------------------------------------------------------------------------------
def read_cell(run_dir: str | Path) -> Cell:
    """The cell stored in ``<run_dir>/cell.json``; raises UserError naming a malformed file."""
    path = Path(run_dir) / CELL_FILE
    try:
        return Cell.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as e:
        raise UserError(f"{path} does not exist: not a sweep run directory") from e
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is malformed ({e}); delete the run directory and relaunch "
                        "the sweep") from e


def init_status(run_dir: str | Path, cell: Cell) -> RunStatus:
    """(Re)computes the run's status from its result files, keeping attempt counts.

    Stages whose result file exists are ``done``; the others keep ``failed``/``interrupted``
    from a previous launch (shown in the summary until retried) or become ``pending``.
    """
    run_dir = Path(run_dir)
    old = read_status(run_dir) or RunStatus(cell.run_id)
    status = RunStatus(cell.run_id)
    for stage in cell.stages:
        entry = status.stages[stage] = old.stages.get(stage) or StageStatus()
        if stage_finished(run_dir, stage):
            entry.state = RunState.DONE
        elif entry.state not in (RunState.FAILED, RunState.INTERRUPTED):
            entry.state = RunState.PENDING
    return status.settle(cell.stages).save(run_dir)


def _is_stage_process(pid: int, run_dir: Path, stage: str) -> bool:
    """Whether ``pid`` is alive and is the command of ``stage`` of this run (its command line
    names the stage's output directory), so a recycled pid is never mistaken for it."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.fsencode(str(stage_dir(run_dir, stage))) in cmdline


def stop_orphans(run_dir: str | Path, grace_s: float = TERMINATE_GRACE_S) -> list[int]:
    """Stops stage processes a killed sweep left running (SIGTERM, then SIGKILL after
    ``grace_s``), so a re-launched run never runs twice at once. Returns their pids.

    Only processes on this host whose command line names the stage's output directory are
    touched (status.json records pid and host of every running stage).
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    stopped: list[int] = []
    for stage, entry in (status.stages if status else {}).items():
        pid = entry.pid
        if (entry.state is not RunState.RUNNING or not pid or entry.host != socket.gethostname()
                or not _is_stage_process(int(pid), run_dir, stage)):
            continue
        pid = int(pid)
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _is_stage_process(pid, run_dir, stage) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        if _is_stage_process(pid, run_dir, stage):
            _signal_group(pid, signal.SIGKILL)
        stopped.append(pid)
    return stopped


# ------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------
def run_stage(
    run_dir: str | Path,
    cell: Cell,
    stage: str,
    registry: ProcessRegistry = REGISTRY,
    env: Mapping[str, str] | None = None,
) -> RunState:
    """Runs one stage of a cell unless it is finished; returns its final state.

    The stage's output (stdout and stderr) is appended to ``<run_dir>/stdout.log``. The stage
    is ``done`` when its command exits 0 *and* its result file exists; ``interrupted`` when
    the sweep was stopping or the command exited with one of :data:`STOPPED_EXIT_CODES`
    (stopped by a signal after saving a checkpoint, e.g. by Slurm); ``failed`` otherwise
    (return code recorded in ``status.json``).
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir) or init_status(run_dir, cell)
    entry = status.stage(stage)
    if stage_finished(run_dir, stage):
        entry.state = RunState.DONE
        status.settle(cell.stages).save(run_dir)
        return RunState.DONE
    if registry.stopping.is_set():
        return RunState.INTERRUPTED
    cmd = build_stage_command(cell, stage, run_dir)
    entry.state, entry.attempt, entry.started = RunState.RUNNING, entry.attempt + 1, time.time()
    entry.returncode, entry.host, entry.command, entry.error = None, socket.gethostname(), cmd, None
    status.state = RunState.RUNNING
    status.save(run_dir)

    log_path = run_dir / STDOUT_FILE
    with open(log_path, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} stage {stage} attempt "
                  f"{entry.attempt}: {' '.join(cmd)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env=None if env is None else dict(env))
        except OSError as e:
            log.write(f"cannot start {cmd[0]}: {e}\n".encode())
            returncode: int | None = None
            error = f"cannot start {cmd[0]}: {e}"
        else:
            registry.register(proc)
            entry.pid = proc.pid
            status.save(run_dir)
            try:
                returncode = _wait(proc, registry)
            finally:
                registry.unregister(proc)
            error = None

    entry.returncode, entry.ended, entry.pid = returncode, time.time(), None
    stopped = registry.stopping.is_set() or returncode in STOPPED_EXIT_CODES
    if stopped and not stage_finished(run_dir, stage):
        entry.state = RunState.INTERRUPTED
    elif returncode == 0 and stage_finished(run_dir, stage):
        entry.state = RunState.DONE
    else:
        entry.state = RunState.FAILED
        if error is None and returncode == 0:
            error = (f"exited 0 but wrote no {RESULT_FILES[stage]} "
                     f"({result_file(run_dir, stage)})")
        entry.error = error or f"exit code {returncode}"
    status.settle(cell.stages).save(run_dir)
    return entry.state


def _wait(proc: subprocess.Popen, registry: ProcessRegistry) -> int:
    killed = False
    while True:
        try:
            return proc.wait(timeout=_POLL_S)
        except subprocess.TimeoutExpired:
            if (registry.stopping.is_set() and not killed and registry.stop_time is not None
                    and time.monotonic() - registry.stop_time > TERMINATE_GRACE_S):
                _signal_group(proc.pid, signal.SIGKILL)
                killed = True


def run_cell(
    run_dir: str | Path,
    registry: ProcessRegistry = REGISTRY,
    handle_signals: bool = False,
    env_for: Callable[[str], Mapping[str, str] | None] | None = None,
    guard_for: Callable[[str], AbstractContextManager[Any]] | None = None,
    stop_signal: int = signal.SIGTERM,
    job_id: str | None = None,
    only: Sequence[str] | None = None,
) -> RunStatus:
    """Runs the unfinished stages of the cell in ``run_dir`` in order; stops at a failure.

    Args:
        run_dir: a run directory holding ``cell.json``.
        registry: where children are registered (for interruption).
        handle_signals: install SIGINT/SIGTERM handlers that stop the children (for a process
            that runs only this cell, e.g. a submitit job).
        env_for: the environment of a stage's child (default: this process's).
        guard_for: a context manager held while a stage runs (e.g. a lock between runs).
        stop_signal: what the children get when this process is signalled (a Slurm job sends
            SIGUSR2, which training may receive any number of times).
        job_id: the Slurm job running this cell, kept in ``status.json``.
        only: run only these of the cell's stages (None: all), e.g. the training stages of
            every run first and their timings after.

    Returns:
        The run's final status.
    """
    run_dir = Path(run_dir)
    cell = read_cell(run_dir)
    if handle_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: registry.stop(stop_signal))
    status = init_status(run_dir, cell)
    if job_id:
        status.job_id = job_id
        status.save(run_dir)
    for stage in cell.stages:
        if only is not None and stage not in only:
            continue
        with guard_for(stage) if guard_for else contextlib.nullcontext():
            state = run_stage(run_dir, cell, stage, registry=registry,
                              env=env_for(stage) if env_for else None)
        if state is not RunState.DONE:
            break
    status = read_status(run_dir)
    assert status is not None
    return status
