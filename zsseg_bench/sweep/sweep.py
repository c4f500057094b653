"""``zsseg-bench sweep``: expand a spec into runs, skip finished ones, launch the rest, summarise.

Re-launching the same command resumes a sweep: runs whose result files exist are skipped,
failed and interrupted runs are retried (only their unfinished stages).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from zsseg_bench.sweep.launchers import make_launcher
from zsseg_bench.sweep.progress import DEFAULT_PERIOD_S, ProgressMonitor
from zsseg_bench.sweep.runner import (
    REGISTRY,
    ProcessRegistry,
    build_stage_command,
    init_status,
    stop_orphans,
)
from zsseg_bench.sweep.spec import Cell, SweepSpec, load_sweep_spec
from zsseg_bench.sweep.status import RunState, RunStatus, read_status
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_json, atomic_write_text
from zsseg_bench.utils.run_dir import make_output_dir
from zsseg_bench.utils.sweep_layout import (
    CELL_FILE,
    LOCK_FILE,
    RUNS_DIRNAME,
    SPEC_COPY_FILE,
    STDOUT_FILE,
    SUMMARY_FILE,
    run_finished,
)


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """How to launch a sweep (what the ``sweep`` command's options set).

    Attributes:
        launcher: ``local`` or ``slurm``; None: the spec's ``launcher.default``.
        jobs: local: runs side by side; slurm: the array parallelism. None: from the spec.
        dry_run: print the runs and their commands, run nothing, write nothing.
        overrides: ``KEY VALUE ...`` applied to every run (part of the run ids).
        extra_args: stage -> command-line options appended to the stage's (part of the ids).
        progress_s: seconds between two progress reports of the running runs (which run,
            stage, iteration, ETA; :mod:`zsseg_bench.sweep.progress`); <= 0: none.
    """

    launcher: str | None = None
    jobs: int | None = None
    dry_run: bool = False
    overrides: Sequence[str] = ()
    extra_args: Mapping[str, Sequence[str]] | None = None
    progress_s: float = DEFAULT_PERIOD_S


@dataclasses.dataclass
class RunOutcome:
    """What happened to one run in a launch."""

    run_id: str
    run_dir: str
    state: RunState
    skipped: bool
    error: str | None = None
    log: str | None = None
    job_log: str | None = None
    job_id: str | None = None


@dataclasses.dataclass
class SweepSummary:
    """The outcome of a launch (also written to ``<output dir>/summary.json``)."""

    name: str
    output_dir: str
    runs: list[RunOutcome]
    interrupted: bool = False
    dry_run: bool = False
    wall_time_s: float = 0.0

    def count(self, state: RunState | str) -> int:
        """Number of runs in ``state``."""
        return sum(r.state == state for r in self.runs)

    @property
    def failed(self) -> list[RunOutcome]:
        """Runs that failed (their logs are listed by :meth:`format`)."""
        return [r for r in self.runs if r.state is RunState.FAILED]

    @property
    def ok(self) -> bool:
        """Whether every run is done."""
        return all(r.state is RunState.DONE for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (states as their string values)."""
        d = dataclasses.asdict(self)
        for run in d["runs"]:
            run["state"] = str(run["state"])
        return d

    def format(self) -> str:
        """A human-readable summary listing failed runs with the paths of their logs."""
        skipped = sum(r.skipped for r in self.runs)
        head = (f"sweep {self.name}: {len(self.runs)} runs: {self.count(RunState.DONE)} done "
                f"({skipped} already finished), {self.count(RunState.FAILED)} failed")
        unfinished = len(self.runs) - self.count(RunState.DONE) - self.count(RunState.FAILED)
        if unfinished:
            head += f", {unfinished} not finished"
        lines = [head + f" [{self.wall_time_s:.0f} s]"]
        if self.interrupted:
            lines.append("interrupted: unfinished runs are left resumable")
        if self.failed:
            lines.append("failed runs:")
            for r in self.failed:
                lines.append(f"  {r.run_id}: {r.error or 'failed'}")
                lines.append(f"      log: {r.log}")
                if r.job_log:
                    lines.append(f"      job log: {r.job_log} (job {r.job_id})")
        if not self.ok:
            lines.append("re-launch the same command to retry failed and unfinished runs "
                         "(finished runs are skipped)")
        return "\n".join(lines)


@contextlib.contextmanager
def _sweep_lock(output_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``<output dir>/sweep.lock`` (released even on SIGKILL)."""
    make_output_dir(output_dir)
    with open(output_dir / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise UserError(f"another sweep is running in {output_dir} (lock {f.name}); wait "
                            "for it or use another --output-dir") from e
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _stop_on_signals(registry: ProcessRegistry, stream: TextIO) -> Iterator[None]:
    """SIGINT/SIGTERM stop the children; a second signal is handled the same way (they are
    SIGKILLed after the grace period anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if not registry.stopping.is_set():
            print(f"\nreceived {signal.Signals(signum).name}: stopping runs (their directories "
                  "stay resumable)...", file=stream, flush=True)
        registry.stop()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def run_sweep(
    spec_path: str | Path,
    output_dir: str | Path,
    options: SweepOptions = SweepOptions(),
    *,
    stream: TextIO | None = None,
    registry: ProcessRegistry = REGISTRY,
    resolver: Callable[[str, list[str]], str] | None = None,
) -> SweepSummary:
    """Launches (or resumes) the sweep of ``spec_path`` into ``output_dir``.

    Args:
        spec_path: the sweep spec (YAML).
        output_dir: the sweep directory (runs go to ``<output_dir>/runs/<run id>``).
        options: launcher, jobs, dry run, overrides, extra options, progress period.
        stream: where progress and the summary are printed (default stdout).
        registry: the child-process registry (tests pass their own).
        resolver: config resolver for run ids (see :meth:`SweepSpec.expand`).

    Returns:
        The summary; ``summary.interrupted`` tells whether a signal stopped the sweep.
    """
    stream = stream or sys.stdout
    start = time.time()
    spec = load_sweep_spec(spec_path)
    missing: set[str] = set()
    cells = spec.expand(options.overrides, resolver=resolver, extra_args=options.extra_args,
                        data=_unprepared_data_ok(spec, missing) if options.dry_run else None)
    output_dir = Path(output_dir).resolve()
    name = options.launcher or spec.launcher.default
    runner = make_launcher(name, spec, output_dir, options.jobs, registry)
    runs_root = output_dir / RUNS_DIRNAME
    if options.dry_run:
        return _dry_run(spec, cells, runs_root, name, stream, missing)

    with _sweep_lock(output_dir):
        registry.reset()
        atomic_write_text(output_dir / SPEC_COPY_FILE, spec.text)
        todo: list[Path] = []
        retried = 0
        outcomes: dict[str, RunOutcome] = {}
        for cell in cells:
            run_dir = runs_root / cell.run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_dir / CELL_FILE, cell.to_dict())
            for pid in stop_orphans(run_dir):
                print(f"stopped process {pid} of {cell.run_id}, left running by a killed sweep",
                      file=stream, flush=True)
            state = init_status(run_dir, cell).state  # done iff every result file exists
            finished = state is RunState.DONE
            outcomes[cell.run_id] = RunOutcome(
                cell.run_id, str(run_dir), RunState.DONE if finished else RunState.PENDING,
                finished, log=str(run_dir / STDOUT_FILE))
            if not finished:
                todo.append(run_dir)
                retried += state in (RunState.FAILED, RunState.INTERRUPTED)
        todo = runner.prepare(todo, stream)
        print(f"sweep {spec.name}: {len(cells)} runs, {len(cells) - len(todo)} already "
              f"finished, {len(todo)} to run ({retried} retried) with the {name} launcher "
              f"-> {output_dir}", file=stream, flush=True)
        reported = 0

        def progress(run_dir: str, status: RunStatus) -> None:
            nonlocal reported
            reported += 1
            state = str(status.state)
            if status.state is RunState.PENDING and registry.stopping.is_set():
                state = "not started (sweep stopping)"
            extra = f" ({status.failure()}; log: {Path(run_dir) / STDOUT_FILE})" \
                if status.state is RunState.FAILED else ""
            print(f"[{reported}/{len(todo)}] {Path(run_dir).name}: {state}{extra}",
                  file=stream, flush=True)

        with _stop_on_signals(registry, stream), ProgressMonitor(todo, stream,
                                                                 options.progress_s):
            runner.launch(todo, progress=progress)
        for outcome in outcomes.values():
            if outcome.skipped:
                continue
            status = read_status(Path(outcome.run_dir)) or RunStatus(outcome.run_id)
            outcome.state = status.state
            outcome.error = status.failure() if status.state is not RunState.DONE else None
            outcome.job_log, outcome.job_id = status.job_log, status.job_id
        summary = SweepSummary(spec.name, str(output_dir), list(outcomes.values()),
                               interrupted=registry.stopping.is_set(),
                               wall_time_s=time.time() - start)
        atomic_write_json(output_dir / SUMMARY_FILE, summary.to_dict())
    print(summary.format(), file=stream, flush=True)
    return summary


def _unprepared_data_ok(spec: SweepSpec,
                        missing: set[str]) -> Callable[[str, list[str]], dict[str, str]] | None:
    """A dry run's data fingerprints: a dataset that is not prepared is noted in ``missing``,
    never prepared (a dry run writes nothing)."""
    if not spec.resolve_configs:
        return None
    from zsseg_bench.sweep.resolve import data_fingerprints

    cache: dict[str, dict[str, Any]] = {}
    return lambda config_file, opts: data_fingerprints(config_file, opts, cache, missing)


def _dry_run(spec: SweepSpec, cells: list[Cell], runs_root: Path, launcher: str,
             stream: TextIO, missing: Collection[str] = ()) -> SweepSummary:
    outcomes = []
    print(f"sweep {spec.name} (dry run, {launcher} launcher): {len(cells)} runs",
          file=stream)
    for cell in cells:
        run_dir = runs_root / cell.run_id
        finished = run_finished(run_dir, cell.stages)
        state = RunState.DONE if finished else RunState.PENDING
        print(f"\n{cell.run_id}  [{'finished' if finished else 'to run'}]", file=stream)
        print(f"  method={cell.method} dataset={cell.dataset} setting={cell.setting} "
              f"seed={cell.seed} variant={cell.variant}", file=stream)
        for stage in cell.stages:
            cmd = build_stage_command(cell, stage, run_dir)
            print(f"  {stage}: {shlex.join(cmd)}", file=stream)
        outcomes.append(RunOutcome(cell.run_id, str(run_dir), state, finished))
    if missing:
        print(f"\nnote: {', '.join(sorted(missing))} not prepared: the ids of the runs that "
              "train on them hash their data's fingerprint, so they will differ once the data "
              "is prepared", file=stream)
    stream.flush()
    return SweepSummary(spec.name, str(runs_root.parent), outcomes, dry_run=True)
