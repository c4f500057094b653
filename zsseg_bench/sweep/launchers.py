"""Launchers: execute the pending runs of a sweep, locally or through submitit (Slurm).

Both call :func:`zsseg_bench.sweep.runner.run_cell` per run, which never raises for a failing
run: one failure never stops the others. A launcher returns the final status
(:class:`~zsseg_bench.sweep.status.RunStatus`) of each run it was given.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol, TextIO

from zsseg_bench.sweep.runner import (
    REGISTRY,
    TERMINATE_GRACE_S,
    ProcessRegistry,
    read_cell,
    run_cell,
)
from zsseg_bench.sweep.spec import Cell, SweepSpec
from zsseg_bench.sweep.status import RunState, RunStatus, read_status_or_none
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_text

#: Stages that time the machine and so must not share it with any other stage.
EXCLUSIVE_STAGES = ("speed",)
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_POLL_S = 0.5
#: Seconds between two ``squeue`` calls while Slurm jobs run.
_SQUEUE_PERIOD_S = 2.0

Progress = Callable[[str, RunStatus], None]


class Launcher(Protocol):
    """What executes a sweep's runs. A launcher never raises for a failing run (one failure
    never stops the others); a run's outcome is in its status."""

    def prepare(self, run_dirs: Sequence[Path], stream: TextIO) -> list[Path]:
        """Called once before :meth:`launch` with the runs to do, in the spec's order: makes
        sure none of them is still running from a killed sweep (reporting what it stopped on
        ``stream``) and returns them in the order to launch."""

    def launch(self, run_dirs: Sequence[Path], progress: Progress | None = None
               ) -> dict[str, RunStatus]:
        """Runs every run in ``run_dirs`` (calling ``progress(run_dir, status)`` as each
        ends); returns run dir -> final status."""


def _end_run(run_dir: Path, state: RunState, **facts: Any) -> RunStatus:
    """Ends a run as ``state`` by something outside its stages (a launcher or job error, or a
    stop): its running stages take that state too."""
    status = read_status_or_none(run_dir) or RunStatus(run_dir.name)
    return status.end_running(state, **facts).save(run_dir)


class _StageLock:
    """Readers-writer lock, writer-preferring: ordinary stages share the machine, timed stages
    (speed) wait until nothing else runs and hold back new stages while they wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    def for_stage(self, stage: str) -> contextlib.AbstractContextManager[None]:
        """The lock a stage holds while it runs: exclusive for timed stages, else shared."""
        return self.exclusive() if stage in EXCLUSIVE_STAGES else self.shared()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class LocalLauncher:
    """Runs cells as subprocesses on this machine, ``jobs`` at a time.

    With ``jobs > 1``, training stages run in parallel (each child limited to
    ``cpu_count // jobs`` threads through ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` unless those
    are set) while speed stages run alone: a timing never shares the machine with other work.
    The runs' other stages go first, all of them in parallel, then the speed stages one after
    the other, so a run waiting to be timed never holds a place another run could train in.
    """

    def __init__(self, jobs: int = 1, registry: ProcessRegistry = REGISTRY,
                 first: Sequence[str] = ()):
        if jobs < 1:
            raise UserError(f"jobs (runs side by side) must be >= 1, got {jobs}")
        self.jobs = jobs
        self.registry = registry
        self.first = tuple(first)

    @classmethod
    def from_spec(cls, spec: SweepSpec, output_dir: Path, jobs: int | None,
                  registry: ProcessRegistry = REGISTRY) -> LocalLauncher:
        """The spec's ``launcher.local`` settings; ``jobs`` (``--jobs``) wins."""
        return cls(jobs=int(jobs or spec.launcher.jobs), registry=registry,
                   first=spec.launcher.first)

    def prepare(self, run_dirs: Sequence[Path], stream: TextIO) -> list[Path]:
        """The runs of the methods in :attr:`first` first, the spec's order otherwise."""
        first = set(self.first)
        def method(run_dir: Path) -> str | None:
            cell = _cell_or_none(run_dir)
            return cell.method if cell else None

        return sorted(run_dirs, key=lambda d: method(d) not in first)  # stable

    def _env(self, stage: str) -> dict[str, str] | None:
        if self.jobs == 1 or stage in EXCLUSIVE_STAGES:
            return None
        env = dict(os.environ)
        threads = str(max(1, (os.cpu_count() or 1) // self.jobs))
        for key in _THREAD_ENV:
            env.setdefault(key, threads)
        return env

    def launch(self, run_dirs: Sequence[Path], progress: Progress | None = None
               ) -> dict[str, RunStatus]:
        """Runs every run in ``run_dirs``; returns run dir -> final status."""
        lock = _StageLock()
        results: dict[str, RunStatus] = {}

        def run(run_dir: Path, only: Sequence[str] | None = None) -> RunStatus:
            return run_cell_job(run_dir, registry=self.registry, env_for=self._env,
                                guard_for=lock.for_stage, only=only)

        if self.jobs == 1:
            self._pool(run_dirs, run, results, progress)
            return results
        timed: list[Path] = []

        def first(run_dir: Path) -> RunStatus:
            cell = _cell_or_none(run_dir)
            status = run(run_dir, only=_untimed(cell.stages if cell else ()))
            if status.done_except(EXCLUSIVE_STAGES):
                timed.append(run_dir)  # reported after its timing
            return status

        def report(run_dir: str, status: RunStatus) -> None:
            if progress and Path(run_dir) not in timed:
                progress(run_dir, status)

        self._pool(run_dirs, first, results, report)
        for run_dir in [Path(d) for d in run_dirs if Path(d) in timed]:  # alone, in order
            results[str(run_dir)] = run_cell_job(run_dir, registry=self.registry,
                                                 only=EXCLUSIVE_STAGES)
            if progress:
                progress(str(run_dir), results[str(run_dir)])
        return results

    def _pool(self, run_dirs: Sequence[Path], fn: Callable[[Path], RunStatus],
              results: dict[str, RunStatus], progress: Progress | None) -> None:
        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(run_dirs)))) as pool:
            futures = {pool.submit(fn, Path(d)): str(d) for d in run_dirs}
            pending = set(futures)
            while pending:  # short waits keep the main thread responsive to signals
                done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                for fut in done:
                    results[futures[fut]] = fut.result()
                    if progress:
                        progress(futures[fut], results[futures[fut]])


def _cell_or_none(run_dir: Path) -> Cell | None:
    """The cell of ``run_dir`` (``cell.json``), or None if it is unreadable (the run then
    fails in :func:`run_cell_job`, with the reason in its status)."""
    try:
        return read_cell(run_dir)
    except UserError:
        return None


def _untimed(stages: Sequence[str]) -> tuple[str, ...]:
    return tuple(s for s in stages if s not in EXCLUSIVE_STAGES)


def run_cell_job(run_dir: str | Path, **kwargs: Any) -> RunStatus:
    """:func:`run_cell` that never raises: a bug or a broken run directory becomes a failed
    status, so one run never stops the others (what a submitit job and each thread of the local
    launcher execute)."""
    try:
        return run_cell(run_dir, **kwargs)
    except Exception as e:  # noqa: BLE001
        return _end_run(Path(run_dir), RunState.FAILED, error=f"{type(e).__name__}: {e}",
                        traceback=traceback.format_exc())


class CellJob:
    """What one submitit job runs: :func:`run_cell_job` on one run directory.

    Checkpointable in submitit's sense (it has :meth:`checkpoint`): when Slurm sends the job
    SIGUSR2 (``--signal=USR2@90`` before its time limit, or at preemption), submitit calls
    :meth:`checkpoint`, which stops the stage (training saves a checkpoint and exits), marks the
    run interrupted and hands submitit the same call to requeue; the requeued job skips the
    finished stages and resumes training from that checkpoint (``train --resume``).
    """

    def __call__(self, run_dir: str) -> RunStatus:
        threads = os.environ.get("SLURM_CPUS_PER_TASK")

        def env_for(stage: str) -> dict[str, str] | None:
            if not threads:
                return None
            env = dict(os.environ)
            for key in _THREAD_ENV:
                env.setdefault(key, threads)
            return env

        return run_cell_job(run_dir, registry=REGISTRY, handle_signals=True,
                            stop_signal=signal.SIGUSR2, env_for=env_for, job_id=_slurm_job_id())

    def checkpoint(self, run_dir: str) -> Any:
        """Stops the running stage (SIGUSR2, SIGKILL after a grace period) and returns the
        call to requeue (submitit's ``DelayedSubmission``)."""
        from submitit.helpers import DelayedSubmission

        REGISTRY.stop(signal.SIGUSR2)
        REGISTRY.wait_stopped(TERMINATE_GRACE_S)
        if read_status_or_none(run_dir) is not None:
            _end_run(Path(run_dir), RunState.INTERRUPTED)
        return DelayedSubmission(CellJob(), run_dir)


def _slurm_job_id() -> str | None:
    """This Slurm job's id as submitit and ``squeue -r`` print it (``<array>_<task>``)."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


#: Seconds a Slurm job must stay in a final state before the launcher takes it as ended (a
#: requeued job passes through CANCELLED, and once was seen FAILED for over 10 s, before it is
#: PENDING again).
_FINAL_STATE_S = 60.0
#: Slurm job states after which a job never runs again (a requeued job is PENDING instead,
#: after a moment in one of them).
SLURM_FINAL_STATES = ("BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
                      "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT")


#: File in a run directory naming the Slurm job last submitted for it (written at submission).
JOB_ID_FILE = "slurm_job_id"


def slurm_states(job_ids: Sequence[str]) -> dict[str, str]:
    """Job id -> Slurm state from ``squeue`` (which, unlike ``sacct``, needs no accounting
    storage; jobs leave it ``MinJobAge`` seconds after they end). Empty if squeue fails."""
    if not job_ids:
        return {}
    cmd = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T",
           "--jobs", ",".join(sorted({j.split("_")[0] for j in job_ids}))]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = dict(line.split("|", 1) for line in res.stdout.split() if "|" in line)
    return {j: states[j] for j in job_ids if j in states}


class SubmititLauncher:
    """Submits one job per cell through submitit (a job array), then waits for all of them.

    Each job runs :class:`CellJob`: on Slurm's SIGUSR2 before the time limit (or at
    preemption) it checkpoints and requeues itself. The launcher follows the jobs through the
    result files submitit writes and, on Slurm, through ``squeue`` (a cancelled or killed job
    writes no result file, and ``sacct`` needs accounting storage).

    Args:
        folder: where submitit writes its job scripts, pickles and logs (one folder per job).
        params: executor settings from the spec's ``launcher.slurm`` mapping, passed to
            ``AutoExecutor.update_parameters`` (e.g. ``timeout_min``, ``slurm_partition``,
            ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_array_parallelism``);
            every job (run) gets these resources. The key ``cluster`` picks the executor:
            ``slurm`` (default where ``sbatch`` exists), ``local`` (subprocesses) or ``debug``
            (in this process; for tests).
        registry: the process registry; its stop callbacks cancel the jobs.
    """

    def __init__(self, folder: str | Path, params: dict[str, Any] | None = None,
                 registry: ProcessRegistry = REGISTRY):
        self.folder = Path(folder)
        self.params = dict(params or {})
        self.registry = registry

    @classmethod
    def from_spec(cls, spec: SweepSpec, output_dir: Path, jobs: int | None,
                  registry: ProcessRegistry = REGISTRY) -> SubmititLauncher:
        """The spec's ``launcher.slurm`` settings; ``jobs`` (``--jobs``) sets the array
        parallelism."""
        params = dict(spec.launcher.slurm)
        if jobs:
            params["slurm_array_parallelism"] = jobs
        return cls(output_dir / "submitit", params, registry=registry)

    def prepare(self, run_dirs: Sequence[Path], stream: TextIO) -> list[Path]:
        """Cancels the jobs a killed sweep left for these runs (:meth:`cancel_left_jobs`)."""
        for job in self.cancel_left_jobs(run_dirs):
            print(f"cancelled Slurm job {job}, left running by a killed sweep", file=stream,
                  flush=True)
        return list(run_dirs)

    def _executor(self) -> Any:
        import submitit

        params = dict(self.params)
        cluster = params.pop("cluster", None)
        try:
            executor = submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster=cluster)
            params.setdefault("name", "zsseg-bench")
            executor.update_parameters(**params)
        except (ValueError, AssertionError, RuntimeError, TypeError) as e:
            raise UserError(f"launcher.slurm settings {self.params}: {e}") from e
        return executor

    def _submit(self, executor: Any, run_dirs: Sequence[Path]) -> list[Any]:
        in_process = executor.cluster == "debug"
        jobs = []
        try:
            with executor.batch():
                for d in run_dirs:
                    if in_process:
                        jobs.append(executor.submit(run_cell_job, str(d)))
                    else:
                        jobs.append(executor.submit(CellJob(), str(d)))
        except (subprocess.CalledProcessError, RuntimeError) as e:
            detail = getattr(e, "stderr", None) or getattr(e, "output", None) or e
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            detail = str(detail).strip().splitlines()[-1] if str(detail).strip() else repr(e)
            raise UserError(f"the cluster refused the jobs ({detail}); check the spec's "
                            f"launcher.slurm settings {self.params}") from e
        return jobs

    @staticmethod
    def cancel_left_jobs(run_dirs: Sequence[Path], grace_s: float = 2 * TERMINATE_GRACE_S
                         ) -> list[str]:
        """Cancels the Slurm jobs that a killed sweep left pending or running for these runs
        (``scancel``: training saves a checkpoint), and waits up to ``grace_s`` for them to
        end, so that a run never runs in two jobs at once. Returns their ids."""
        ids = [(Path(d) / JOB_ID_FILE).read_text().strip() for d in run_dirs
               if (Path(d) / JOB_ID_FILE).is_file()]
        live = [j for j, s in slurm_states(ids).items() if s not in SLURM_FINAL_STATES]
        if not live:
            return []
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["scancel", *live], capture_output=True, timeout=60)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(
                s not in SLURM_FINAL_STATES for s in slurm_states(live).values()):
            time.sleep(_POLL_S)
        return live

    def launch(self, run_dirs: Sequence[Path], progress: Progress | None = None
               ) -> dict[str, RunStatus]:
        """Submits every run in ``run_dirs`` and waits; returns run dir -> final status."""
        if not run_dirs:
            return {}
        executor = self._executor()
        on_slurm = executor.cluster == "slurm"
        jobs = self._submit(executor, run_dirs)
        if on_slurm:
            for job, d in zip(jobs, run_dirs):
                atomic_write_text(Path(d) / JOB_ID_FILE, f"{job.job_id}\n")

        def cancel_all() -> None:
            for job in jobs:
                with contextlib.suppress(Exception):
                    job.cancel(check=False)

        self.registry.add_stop_callback(cancel_all)
        results: dict[str, RunStatus] = {}
        try:
            pending = list(zip(jobs, run_dirs))
            last_squeue = 0.0
            states: dict[str, str] = {}
            final_since: dict[str, float] = {}
            while pending:
                if on_slurm and time.monotonic() - last_squeue > _SQUEUE_PERIOD_S:
                    states = slurm_states([str(job.job_id) for job, _ in pending])
                    last_squeue = time.monotonic()
                    for j in [str(job.job_id) for job, _ in pending]:
                        if states.get(j) in SLURM_FINAL_STATES:
                            final_since.setdefault(j, last_squeue)
                        else:  # running, pending again after a requeue, or not listed now
                            final_since.pop(j, None)
                still = []
                for job, d in pending:
                    # A requeued job passes through CANCELLED/PREEMPTED for a moment before it
                    # is PENDING again: a final state counts once it has lasted.
                    since = final_since.get(str(job.job_id))
                    final = since is not None and time.monotonic() - since >= _FINAL_STATE_S
                    if not (executor.cluster == "debug" or job.done() or final):
                        still.append((job, d))
                        continue
                    results[str(d)] = self._collect(job, Path(d), states.get(str(job.job_id)))
                    if progress:
                        progress(str(d), results[str(d)])
                pending = still
                if pending:
                    time.sleep(_POLL_S)
        finally:
            self.registry.remove_stop_callback(cancel_all)
        return results

    def _collect(self, job: Any, run_dir: Path, slurm_state: str | None = None) -> RunStatus:
        facts = {"job_id": str(job.job_id), "job_log": str(getattr(job.paths, "stderr", ""))}
        try:
            if slurm_state is not None and not job.paths.result_pickle.exists():
                raise RuntimeError(f"Slurm job {job.job_id} ended {slurm_state} without a "
                                   "result")
            status: RunStatus = job.result()
        except Exception as e:  # the job died (timeout, cancelled, node failure)
            own = read_status_or_none(run_dir)
            if self.registry.stopping.is_set() or (
                    own is not None and own.state is RunState.INTERRUPTED):
                return _end_run(run_dir, RunState.INTERRUPTED, **facts)  # resumable
            message = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
            return _end_run(run_dir, RunState.FAILED,
                            error=f"submitit job {job.job_id} failed: {message}", **facts)
        status.job_id, status.job_log = facts["job_id"], facts["job_log"]
        return status.save(run_dir)  # the job has ended: no writer races


#: Launcher name -> its class (each has ``from_spec(spec, output_dir, jobs, registry)``); the
#: names are those a spec may configure, ``spec.LAUNCHER_NAMES``.
LAUNCHERS: dict[str, type[LocalLauncher] | type[SubmititLauncher]] = {
    "local": LocalLauncher, "slurm": SubmititLauncher}


def make_launcher(name: str, spec: SweepSpec, output_dir: Path, jobs: int | None,
                  registry: ProcessRegistry = REGISTRY) -> Launcher:
    """The launcher called ``name`` with its settings from the (validated) spec; ``jobs``
    (``--jobs``) wins over the spec's."""
    if name not in LAUNCHERS:
        raise UserError(f"unknown launcher {name!r}; choose one of {', '.join(LAUNCHERS)}")
    return LAUNCHERS[name].from_spec(spec, output_dir, jobs, registry)
