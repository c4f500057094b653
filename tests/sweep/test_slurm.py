"""The ``slurm`` launcher against a real single-node Slurm cluster (``scripts/slurm_cluster.py``):
a two-method toy sweep as a job array, ``scancel`` and relaunch resuming from the checkpoint,
Slurm's SIGUSR2 checkpointing and requeueing a run that then matches an uninterrupted one, and
a 2-task ``srun`` training whose evaluation equals a single-process one."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.cli_helpers import CLI_MAIN
from tests.engine.helpers import write_config
from zsseg_bench.cli import main
from zsseg_bench.sweep import SweepOptions, run_sweep
from zsseg_bench.sweep.launchers import JOB_ID_FILE, SLURM_FINAL_STATES, SubmititLauncher
from zsseg_bench.sweep.runner import ProcessRegistry

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "speed" / "configs"
#: Small images and batches for every run (the tiny configs train at 64 x 64).
SMALL = {"MODEL.CLIP.RANDOM_INIT": True, "SOLVER.IMS_PER_BATCH": 2,
         "DATALOADER.NUM_WORKERS": 0, "INPUT.RESIZE.SCALE": [128, 64],
         "INPUT.TEST_SCALE": [128, 64], "SOLVER.LOG_PERIOD": 1}
#: The train command with the test-only head registered (``tests/cli_main.py``).
CONTRACT_COMMANDS = {"train": ["{python}", str(CLI_MAIN), "train", "--resume", "--no-progress",
                               "--config-file", "{config_file}", "--output-dir", "{output_dir}",
                               "{opts}"]}
#: Dataset-name prefix of the in-process registration of the jobs' ``synthetic_*`` files.
PREFIX = "slurm_test"
#: One tiny job on the 2-CPU node.
RESOURCES = {"cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10, "slurm_partition": "debug"}


@pytest.fixture
def on_cluster(slurm_cluster, tmp_path_factory, monkeypatch):
    """The environment of a test submitting to the cluster: SLURM_CONF, a tiny toy world as
    the datasets root, one thread per process."""
    import zsseg_bench.data.datasets  # noqa: F401  (registers the built-in datasets)
    from zsseg_bench.data.catalog import DatasetCatalog
    from zsseg_bench.data.datasets.synthetic import register_all_synthetic
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path_factory.getbasetemp() / "slurm-datasets"
    if not (root / "synthetic").is_dir():
        prepare_synthetic(str(root), num_train=8, num_val=4)
    if f"{PREFIX}_val" not in DatasetCatalog.list():  # the same files, for in-process commands
        register_all_synthetic(str(root), prefix=PREFIX, num_train=8, num_val=4)
    for key, value in {"SLURM_CONF": str(slurm_cluster), "ZSSEG_DATASETS": str(root),
                       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                       "TQDM_DISABLE": "1"}.items():
        monkeypatch.setenv(key, value)
    return root


def _write_spec(path: Path, **fields) -> Path:
    spec = {"name": path.stem, "datasets": ["synthetic"], "settings": ["inductive"],
            "seeds": [0], "baseline": None, "resolve_configs": False, **fields}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _contract_spec(tmp_path: Path, max_iter: int, **fields) -> Path:
    """A sweep of the cheap test-only head (train only) with ``max_iter`` iterations."""
    config = write_config(tmp_path / "contract.yaml", SOLVER__MAX_ITER=max_iter,
                          SOLVER__CHECKPOINT_PERIOD=1000)
    fields.setdefault("methods", {"contract": {"config": str(config)}})
    return _write_spec(tmp_path / "contract_sweep.yaml", commands=CONTRACT_COMMANDS,
                       speed={"enabled": False}, **fields)


def _sweep(spec, out, registry=None, **options):
    stream = io.StringIO()
    summary = run_sweep(spec, out, SweepOptions(**options), stream=stream,
                        registry=registry or ProcessRegistry())
    return summary, stream.getvalue()


class _Background:
    """A sweep in a thread (so the test can signal its jobs meanwhile)."""

    def __init__(self, spec, out, **kwargs):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(spec, out), kwargs=kwargs,
                                       daemon=True)
        self.thread.start()

    def _run(self, spec, out, **kwargs):
        self.result = _sweep(spec, out, **kwargs)

    def join(self, timeout=240):
        self.thread.join(timeout)
        assert self.result is not None, "the sweep did not finish"
        return self.result


def _status(run_dir):
    return json.loads((Path(run_dir) / "status.json").read_text())


def _train_records(run_dir, kind="train"):
    path = Path(run_dir) / "train" / "log.jsonl"
    if not path.is_file():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["type"] == kind]


def _running_job(runs: Path, pattern: str, min_iteration: int = 3, timeout=180) -> tuple:
    """(run dir, Slurm job id) once the run's training logged ``min_iteration``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_dir in runs.glob(pattern) if runs.is_dir() else []:
            with contextlib.suppress(OSError, ValueError, KeyError):
                job = _status(run_dir).get("job_id")
                done = [r["iteration"] for r in _train_records(run_dir)]
                if job and done and max(done) >= min_iteration:
                    return run_dir, job
        time.sleep(0.1)
    raise AssertionError(f"no run {pattern} got to iteration {min_iteration} in {runs}")


@contextlib.contextmanager
def _release_requeued_jobs():
    """Starts requeued jobs at once: Slurm holds a requeued job back for about two minutes
    (``Reason=BeginTime``); ``scontrol update StartTime=now`` only saves the test that wait."""
    stop = threading.Event()

    def loop():
        while not stop.wait(0.5):
            out = subprocess.run(["squeue", "-h", "-r", "--states=PENDING", "-o", "%i|%r"],
                                 capture_output=True, text=True).stdout
            for line in out.split():
                job, _, reason = line.partition("|")
                if reason == "BeginTime":
                    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                                   capture_output=True)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _scontrol(job_id: str, timeout: float = 60) -> dict[str, str]:
    """``scontrol show job`` once the job has ended (a job that wrote its result may still be
    exiting, RUNNING or COMPLETING, for a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                             text=True, check=True).stdout
        job = dict(item.split("=", 1) for item in out.split() if "=" in item)
        if job["JobState"] in SLURM_FINAL_STATES or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


@pytest.mark.slow
def test_two_method_toy_sweep_runs_as_a_job_array(on_cluster, tmp_path):
    spec = _write_spec(
        tmp_path / "toy.yaml",
        methods={"two_stage": {"config": str(TINY / "tiny_two_stage.yaml"), "overrides": {
                     "MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT": True}},
                 "zegclip": {"config": str(TINY / "tiny_zegclip.yaml")}},
        baseline="two_stage", overrides={**SMALL, "SOLVER.MAX_ITER": 2},
        speed={"args": ["--random-init", "--warmup", "1", "--iters", "2", "--repeats", "1",
                        "--no-flops", "--no-breakdown", "--num-images", "1"]},
        launcher={"slurm": {**RESOURCES, "slurm_array_parallelism": 2}})
    summary, text = _sweep(spec, tmp_path / "out", launcher="slurm")
    assert summary.ok, text
    jobs = [r.job_id for r in summary.runs]
    assert len({j.split("_")[0] for j in jobs}) == 1 and sorted(jobs) == sorted(
        f"{jobs[0].split('_')[0]}_{i}" for i in range(2))  # one array, one task per run
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["job_id"] for r in saved["runs"]] == jobs
    for run in summary.runs:
        assert (Path(run.run_dir) / "speed" / "speed.json").is_file()
        assert Path(run.job_log).is_file() and "stage speed attempt 1" in Path(run.log).read_text()
        job = _scontrol(run.job_id)
        assert job["JobState"] == "COMPLETED" and job["Partition"] == "debug"
        assert job["NumCPUs"] == "1" and job["TimeLimit"] == "00:10:00"
        assert job["MinMemoryNode"] == "1G" and job["ArrayTaskThrottle"] == "2"


def test_resources_the_cluster_cannot_give_are_a_clear_error(on_cluster, tmp_path):
    spec = _contract_spec(tmp_path, 2, launcher={"slurm": {**RESOURCES, "gpus_per_node": 1}})
    from zsseg_bench.utils.errors import UserError

    with pytest.raises(UserError, match="the cluster refused the jobs.*launcher.slurm"):
        _sweep(spec, tmp_path / "out", launcher="slurm")


@pytest.mark.slow
def test_scancel_then_relaunch_resumes_the_run_and_redoes_nothing_finished(on_cluster,
                                                                          tmp_path):
    spec = _contract_spec(
        tmp_path, 300, variants={"short": {"SOLVER.MAX_ITER": 2}, "long": {"SOLVER.MAX_ITER": 300}},
        launcher={"slurm": {**RESOURCES, "slurm_array_parallelism": 2}})
    out = tmp_path / "out"
    sweep = _Background(spec, out, launcher="slurm")
    long_run, job = _running_job(out / "runs", "*-long-*")
    subprocess.run(["scancel", job], check=True)
    summary, text = sweep.join()
    states = {r.run_id.split("-")[4]: r.state for r in summary.runs}
    assert states == {"short": "done", "long": "interrupted"}, text
    stopped = _train_records(long_run, "event")[-1]
    assert stopped["event"] == "stopped" and (long_run / "train" / "last_checkpoint").is_file()

    summary, text = _sweep(spec, out, launcher="slurm")  # relaunch
    assert summary.ok and "1 already finished, 1 to run (1 retried)" in text, text
    assert [r.skipped for r in summary.runs] == [r.run_id.split("-")[4] == "short"
                                                 for r in summary.runs]
    resume = _train_records(long_run, "event")[-1]
    assert resume["event"] == "resume" and resume["start_iter"] == stopped["iteration"]
    assert json.loads((long_run / "train" / "metrics.json").read_text())["iteration"] == 300
    (short,) = (Path(r.run_dir) for r in summary.runs if "-short-" in r.run_id)
    assert "attempt 2" not in (short / "stdout.log").read_text()


@pytest.mark.slow
def test_slurm_signal_checkpoints_requeues_and_matches_an_uninterrupted_run(on_cluster,
                                                                           tmp_path):
    spec = _contract_spec(tmp_path, 300, launcher={"slurm": RESOURCES})
    reference = _Background(spec, tmp_path / "reference", launcher="local")  # uninterrupted
    for attempt in (1, 2):
        out = tmp_path / f"out{attempt}"
        # Known race (open; 1 in 5 runs or more on a 2-core machine): the requeued job starts
        # again (squeue: PENDING, RUNNING) and ends FAILED (NonZeroExitCode) before its second
        # attempt logs anything, so the sweep leaves the run interrupted (resumable). It has
        # only been seen with the early start below, so the one retry waits out Slurm's own
        # hold of a requeued job instead; every assertion below holds for the attempt that
        # requeued.
        with _release_requeued_jobs() if attempt == 1 else contextlib.nullcontext():
            sweep = _Background(spec, out, launcher="slurm")
            run_dir, job = _running_job(out / "runs", "contract-*")
            # What Slurm sends --signal=USR2@90 before the time limit (submitit's setting).
            subprocess.run(["scancel", "--signal=USR2", job], check=True)
            summary, text = sweep.join()
        if summary.ok:
            break
    assert summary.ok, text
    assert _scontrol(job)["Restarts"] == "1"  # requeued once, same job id
    events = [e["event"] for e in _train_records(run_dir, "event")]
    assert events == ["start", "stopped", "resume"], events
    assert "stage train attempt 2" in (run_dir / "stdout.log").read_text()

    reference, _ = reference.join()
    assert reference.ok and reference.runs[0].run_id == summary.runs[0].run_id
    requeued = torch.load(run_dir / "train" / "model_final.pth", weights_only=True)["model"]
    straight = torch.load(Path(reference.runs[0].run_dir) / "train" / "model_final.pth",
                          weights_only=True)["model"]
    assert requeued.keys() == straight.keys()
    assert all(torch.equal(requeued[k], straight[k]) for k in straight)


def test_relaunch_cancels_the_job_a_killed_sweep_left(on_cluster, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    job = subprocess.run(["sbatch", "--parsable", "--mem=100M", "--output=/dev/null", "--wrap",
                          "sleep 120"], capture_output=True, text=True, check=True).stdout.strip()
    (run_dir / JOB_ID_FILE).write_text(f"{job}\n")  # what the killed sweep wrote
    assert SubmititLauncher.cancel_left_jobs([run_dir]) == [job]
    assert _scontrol(job)["JobState"] == "CANCELLED"
    assert SubmititLauncher.cancel_left_jobs([run_dir]) == []  # nothing left to cancel


@pytest.mark.slow
def test_srun_two_tasks_train_with_gloo_and_evaluate_like_one_process(on_cluster, tmp_path,
                                                                      one_thread):
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=4,
                          SOLVER__CHECKPOINT_PERIOD=2)
    out = tmp_path / "ddp"
    res = subprocess.run(["srun", "--ntasks=2", "--cpus-per-task=1", "--mem=1G",
                          sys.executable, str(CLI_MAIN), "train", "--config-file", str(config),
                          "--output-dir", str(out)],
                         capture_output=True, text=True, cwd=REPO, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    start = next(r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())
                 if r.get("event") == "start")
    assert start["world_size"] == 2
    ddp = json.loads((out / "metrics.json").read_text())
    single = tmp_path / "single"
    assert main(["eval", "--config-file", str(config), "--weights", str(out / "model_final.pth"),
                 "--output-dir", str(single), "DATASETS.TEST", f"('{PREFIX}_val',)"]) == 0
    evaluated = json.loads((single / "metrics.json").read_text())
    assert json.dumps(evaluated["metrics"]) == json.dumps(ddp["metrics"])  # NaN-safe equality
    confusion = [json.loads((d / "sem_seg_confusion.json").read_text())["confusion"]
                 for d in (out, single)]
    assert confusion[0] == confusion[1] and sum(map(sum, confusion[0])) > 0


def test_srun_variables_become_torchrun_ones(monkeypatch):
    from zsseg_bench.utils import comm

    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        # setenv first, so that the variables the function sets are removed again afterwards
        # (delenv of an absent variable records nothing: WORLD_SIZE=4 would leak into every
        # later test of the session, whose in-process runs then wait for 4 processes).
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert not comm.adopt_slurm_environment()  # one task (e.g. a sweep's job): no DDP
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_STEP_NODELIST", "gpu7,gpu8")
    monkeypatch.setenv("SLURM_JOB_ID", "123456")
    assert comm.adopt_slurm_environment()
    assert [os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                    "MASTER_PORT")] == ["3", "4", "1", "gpu7", "23456"]
    assert not comm.adopt_slurm_environment()  # WORLD_SIZE set (torchrun, or done): untouched
