"""Where a sweep puts things: the layout of a sweep directory and of each run in it.

::

    <sweep dir>/
        sweep.yaml          the spec the sweep was (last) launched with
        summary.json        the outcome of the last launch (written at its end)
        sweep.lock          held while a sweep runs in this directory
        runs/<run id>/
            cell.json       the cell: labels (method, dataset, setting, seed, variant), config
                            file, overrides, stages; the report reads labels from here
            status.json     pending | running | done | failed | interrupted, per stage too
            stdout.log      the output of every stage's subprocess, appended per attempt
            train/          the engine's run directory (config.yaml, metrics.json, log.jsonl, ...)
            speed/          the speed harness's run directory (speed.json, ...)

A stage is finished when its result file exists (written atomically by the command that
produces it); a run is finished when all its stages are.
"""

from __future__ import annotations

from pathlib import Path

from zsseg_bench.utils.run_dir import METRICS_FILE, SPEED_FILE

RUNS_DIRNAME = "runs"
CELL_FILE = "cell.json"
STATUS_FILE = "status.json"
STDOUT_FILE = "stdout.log"
SPEC_COPY_FILE = "sweep.yaml"
SUMMARY_FILE = "summary.json"
LOCK_FILE = "sweep.lock"

#: The stages of a run, in execution order, and the result file that marks each finished.
STAGES = ("train", "speed")
RESULT_FILES = {"train": METRICS_FILE, "speed": SPEED_FILE}


def stage_dir(run_dir: str | Path, stage: str) -> Path:
    """The run directory the stage's command writes (``<run dir>/<stage>``)."""
    return Path(run_dir) / stage


def result_file(run_dir: str | Path, stage: str) -> Path:
    """The file whose existence marks ``stage`` of the run in ``run_dir`` as finished."""
    return stage_dir(run_dir, stage) / RESULT_FILES[stage]


def stage_finished(run_dir: str | Path, stage: str) -> bool:
    """Whether ``stage`` of the run in ``run_dir`` has written its result file."""
    return result_file(run_dir, stage).is_file()


def run_finished(run_dir: str | Path, stages: tuple[str, ...] | list[str]) -> bool:
    """Whether every stage in ``stages`` of the run in ``run_dir`` is finished."""
    return all(stage_finished(run_dir, s) for s in stages)
