"""Launchers: execute the pending runs of a sweep, locally or through submitit (Slurm).

Both call :func:`zsseg_bench.sweep.runner.run_cell` per run, which never raises for a failing
run: one failure never stops the others. A launcher returns the final ``status.json`` of each
run it was given.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from zsseg_bench.sweep.runner import (
    FAILED,
    INTERRUPTED,
    REGISTRY,
    ProcessRegistry,
    read_status,
    run_cell,
)
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_json
from zsseg_bench.utils.sweep_layout import STATUS_FILE

#: Stages that time the machine and so must not share it with any other stage.
EXCLUSIVE_STAGES = ("speed",)
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_POLL_S = 0.5

Progress = Callable[[str, dict[str, Any]], None]


def _failed_status(run_dir: Path, error: str, **extra: Any) -> dict[str, Any]:
    """Marks a run failed by something outside its stages (a launcher/job error)."""
    status = _safe_read_status(run_dir) or {"run_id": run_dir.name, "stages": {}}
    for entry in status.get("stages", {}).values():
        if entry.get("state") == "running":
            entry["state"] = FAILED
    status.update(state=FAILED, error=error, updated=time.time(), **extra)
    atomic_write_json(run_dir / STATUS_FILE, status)
    return status


def _safe_read_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        return read_status(run_dir)
    except UserError:
        return None


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
    """

    def __init__(self, jobs: int = 1, registry: ProcessRegistry = REGISTRY):
        if jobs < 1:
            raise UserError(f"--jobs must be >= 1, got {jobs}")
        self.jobs = jobs
        self.registry = registry

    def _env(self, stage: str) -> dict[str, str] | None:
        if self.jobs == 1 or stage in EXCLUSIVE_STAGES:
            return None
        env = dict(os.environ)
        threads = str(max(1, (os.cpu_count() or 1) // self.jobs))
        for key in _THREAD_ENV:
            env.setdefault(key, threads)
        return env

    def _run_one(self, run_dir: Path, lock: _StageLock) -> dict[str, Any]:
        return run_cell_job(run_dir, registry=self.registry, env_for=self._env,
                            guard_for=lock.for_stage)

    def launch(self, run_dirs: Sequence[Path], progress: Progress | None = None
               ) -> dict[str, dict[str, Any]]:
        """Runs every run in ``run_dirs``; returns run dir -> final status."""
        lock = _StageLock()
        results: dict[str, dict[str, Any]] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(run_dirs)))) as pool:
            futures = {pool.submit(self._run_one, Path(d), lock): str(d) for d in run_dirs}
            pending = set(futures)
            while pending:  # short waits keep the main thread responsive to signals
                done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                for fut in done:
                    results[futures[fut]] = fut.result()
                    if progress:
                        progress(futures[fut], results[futures[fut]])
        return results


def run_cell_job(run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_cell` that never raises: a bug or a broken run directory becomes a failed
    status, so one run never stops the others (what a submitit job and each thread of the local
    launcher execute)."""
    try:
        return run_cell(run_dir, **kwargs)
    except Exception as e:  # noqa: BLE001
        return _failed_status(Path(run_dir), f"{type(e).__name__}: {e}",
                              traceback=traceback.format_exc())


class SubmititLauncher:
    """Submits one job per cell through submitit (a job array), then waits for all of them.

    Args:
        folder: where submitit writes its job scripts, pickles and logs.
        params: executor settings from the spec's ``launcher.slurm`` mapping, passed to
            ``AutoExecutor.update_parameters`` (e.g. ``timeout_min``, ``slurm_partition``,
            ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_array_parallelism``);
            the key ``cluster`` picks the executor: ``slurm`` (default where ``sbatch``
            exists), ``local`` (subprocesses) or ``debug`` (in this process; for tests).
        registry: the process registry; its stop callbacks cancel the jobs.
    """

    def __init__(self, folder: str | Path, params: dict[str, Any] | None = None,
                 registry: ProcessRegistry = REGISTRY):
        self.folder = Path(folder)
        self.params = dict(params or {})
        self.registry = registry

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

    def launch(self, run_dirs: Sequence[Path], progress: Progress | None = None
               ) -> dict[str, dict[str, Any]]:
        """Submits every run in ``run_dirs`` and waits; returns run dir -> final status."""
        if not run_dirs:
            return {}
        executor = self._executor()
        in_process = executor.cluster == "debug"
        jobs = []
        with executor.batch():
            for d in run_dirs:
                jobs.append(executor.submit(run_cell_job, str(d), handle_signals=not in_process))
        def cancel_all() -> None:
            for job in jobs:
                with contextlib.suppress(Exception):
                    job.cancel(check=False)

        self.registry.add_stop_callback(cancel_all)
        results: dict[str, dict[str, Any]] = {}
        try:
            pending = list(zip(jobs, run_dirs))
            while pending:
                still = []
                for job, d in pending:
                    if not in_process and not job.done():
                        still.append((job, d))
                        continue
                    results[str(d)] = self._collect(job, Path(d))
                    if progress:
                        progress(str(d), results[str(d)])
                pending = still
                if pending:
                    time.sleep(_POLL_S)
        finally:
            self.registry.remove_stop_callback(cancel_all)
        return results

    def _collect(self, job: Any, run_dir: Path) -> dict[str, Any]:
        log = str(getattr(job.paths, "stderr", ""))
        try:
            status = job.result()
        except Exception as e:  # the job died (timeout, cancelled, node failure)
            if self.registry.stopping.is_set():
                status = _safe_read_status(run_dir) or {"stages": {}}
                status.update(state=INTERRUPTED, job_id=str(job.job_id), job_log=log)
                atomic_write_json(run_dir / STATUS_FILE, status)
                return status
            return _failed_status(run_dir, f"submitit job {job.job_id} failed: "
                                  f"{str(e).strip().splitlines()[-1] if str(e) else e!r}",
                                  job_id=str(job.job_id), job_log=log)
        status.update(job_id=str(job.job_id), job_log=log)
        atomic_write_json(run_dir / STATUS_FILE, status)  # the job has ended: no writer races
        return status
