"""Launching sweeps: skip/retry, failure isolation, stage-level resume, interruption, submitit."""

import contextlib
import fcntl
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sweep.helpers import counter_lines, write_spec
from zsseg_bench.sweep import SweepOptions, run_sweep
from zsseg_bench.sweep.runner import ProcessRegistry, stop_orphans
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.sweep_layout import LOCK_FILE, RUNS_DIRNAME, STATUS_FILE, STDOUT_FILE

REPO = Path(__file__).resolve().parents[2]


def _sweep(spec, out, registry=None, **options):
    stream = io.StringIO()
    summary = run_sweep(spec, out, SweepOptions(**options), stream=stream,
                        registry=registry or ProcessRegistry())
    return summary, stream.getvalue()


def _calls(counter):
    """(stage, method) of every recorded call."""
    out = []
    for line in counter_lines(counter):
        stage, output_dir = line.split()[:2]
        out.append((stage, Path(output_dir).parent.name.split("-")[0]))
    return out


def _status(run_dir):
    return json.loads((Path(run_dir) / STATUS_FILE).read_text())


def test_finished_runs_are_skipped_and_failed_ones_retried(tmp_path):
    counter = tmp_path / "calls.txt"
    spec = write_spec(tmp_path, overrides={"FAKE.COUNTER": str(counter)},
                      methods={"two_stage": {}, "zegclip": {"overrides": {
                          "FAKE.CRASH_ONCE": str(tmp_path / "crashed")}}})
    out = tmp_path / "out"
    summary, text = _sweep(spec, out)
    assert [r.state for r in summary.runs] == ["done", "failed"]
    failed = summary.failed[0]
    assert failed.run_id.startswith("zegclip-") and "exit code 3" in failed.error
    assert f"log: {failed.log}" in text and "failed runs:" in text
    assert "deliberate crash" in Path(failed.log).read_text()
    status = _status(failed.run_dir)
    assert status["state"] == "failed"
    assert status["stages"]["train"]["returncode"] == 3
    assert _calls(counter) == [("train", "two_stage"), ("speed", "two_stage"),
                               ("train", "zegclip")]

    summary, text = _sweep(spec, out)  # relaunch: retries only the failed run
    assert summary.ok and "1 already finished, 1 to run (1 retried)" in text
    assert [r.skipped for r in summary.runs] == [True, False]
    assert _calls(counter)[3:] == [("train", "zegclip"), ("speed", "zegclip")]
    assert _status(failed.run_dir)["stages"]["train"]["attempt"] == 2

    summary, _ = _sweep(spec, out)  # everything finished: nothing runs
    assert summary.ok and all(r.skipped for r in summary.runs)
    assert len(_calls(counter)) == 5


def test_a_crashing_run_never_stops_the_others(tmp_path):
    spec = write_spec(tmp_path, seeds=[0, 1],
                      methods={"two_stage": {"overrides": {"FAKE.CRASH": True}}, "zegclip": {}})
    summary, text = _sweep(spec, tmp_path / "out", jobs=2)
    states = {(r.run_id.split("-")[0], r.run_id.split("-")[3]): r.state for r in summary.runs}
    assert states == {("two_stage", "s0"): "failed", ("two_stage", "s1"): "failed",
                      ("zegclip", "s0"): "done", ("zegclip", "s1"): "done"}
    assert not summary.ok and text.count("      log: ") == 2
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["state"] for r in saved["runs"]] == [r.state for r in summary.runs]


def test_only_unfinished_stages_are_redone(tmp_path):
    counter = tmp_path / "calls.txt"
    spec = write_spec(tmp_path, methods=["zegclip"], baseline=None,
                      overrides={"FAKE.COUNTER": str(counter)},
                      speed={"overrides": {"FAKE.CRASH_ONCE": str(tmp_path / "crashed")}})
    summary, _ = _sweep(spec, tmp_path / "out")
    assert summary.failed and "speed: exit code 3" in summary.failed[0].error
    summary, _ = _sweep(spec, tmp_path / "out")
    assert summary.ok
    assert [c[0] for c in _calls(counter)] == ["train", "speed", "speed"]


def test_exit_0_without_result_file_is_a_failure(tmp_path):
    spec = write_spec(tmp_path, methods=["zegclip"], baseline=None,
                      overrides={"FAKE.NO_RESULT": True})
    summary, _ = _sweep(spec, tmp_path / "out")
    assert "exited 0 but wrote no metrics.json" in summary.failed[0].error


def test_parallel_runs_overlap_but_speed_stages_run_alone(tmp_path):
    counter = tmp_path / "calls.txt"
    spec = write_spec(tmp_path, seeds=[0, 1],
                      overrides={"FAKE.COUNTER": str(counter), "FAKE.SLEEP": 0.4})
    summary, _ = _sweep(spec, tmp_path / "out", jobs=3)
    assert summary.ok
    spans = []
    for line in counter_lines(counter):
        stage, _, start, end = line.split()
        spans.append((stage, float(start), float(end)))
    assert len(spans) == 8

    def overlap(a, b):
        return a[1] < b[2] and b[1] < a[2]

    trains = [s for s in spans if s[0] == "train"]
    assert any(overlap(a, b) for i, a in enumerate(trains) for b in trains[i + 1:])
    for s in spans:
        if s[0] == "speed":
            assert not any(overlap(s, o) for o in spans if o is not s), spans


def test_runs_waiting_to_be_timed_leave_their_place_to_other_trainings(tmp_path):
    # 4 runs, 2 at a time: the last two train while the first two wait for their timing, so
    # every training starts before the first timing (which would otherwise hold a place).
    counter = tmp_path / "calls.txt"
    spec = write_spec(tmp_path, seeds=[0, 1],
                      overrides={"FAKE.COUNTER": str(counter), "FAKE.SLEEP": 0.3})
    summary, _ = _sweep(spec, tmp_path / "out", jobs=2)
    assert summary.ok and summary.count("done") == 4
    spans = [line.split() for line in counter_lines(counter)]
    first_speed = min(float(s[2]) for s in spans if s[0] == "speed")
    assert all(float(s[2]) < first_speed for s in spans if s[0] == "train"), spans


def test_the_local_launcher_starts_the_methods_named_first_first(tmp_path):
    # launcher.local.first: the longest runs start first, the others keep the spec's order.
    counter = tmp_path / "calls.txt"
    spec = write_spec(tmp_path, overrides={"FAKE.COUNTER": str(counter)},
                      launcher={"local": {"first": ["zegclip"]}})
    summary, _ = _sweep(spec, tmp_path / "out", jobs=1)
    assert summary.ok
    assert [m for stage, m in _calls(counter) if stage == "train"] == ["zegclip", "two_stage"]
    bad = write_spec(tmp_path, name="bad.yaml", launcher={"local": {"first": ["nope"]}})
    with pytest.raises(UserError, match=r"launcher.local.first must list methods of the spec"):
        _sweep(bad, tmp_path / "out2")


def test_dry_run_lists_runs_and_commands_and_writes_nothing(tmp_path):
    spec = write_spec(tmp_path, seeds=[0, 1])
    summary, text = _sweep(spec, tmp_path / "out", dry_run=True)
    assert summary.dry_run and len(summary.runs) == 4
    assert not (tmp_path / "out").exists()
    for r in summary.runs:
        assert r.run_id in text
    assert text.count("  train: ") == 4 and text.count("  speed: ") == 4
    assert "fake_stage.py train --config-file" in text and "SEED 1" in text


def test_a_second_sweep_in_the_same_directory_is_refused(tmp_path):
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with open(out / LOCK_FILE, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another sweep is running"):
            _sweep(spec, out)


def test_sigterm_stops_children_and_relaunch_redoes_only_unfinished(tmp_path):
    counter = tmp_path / "calls.txt"
    gate = tmp_path / "gate"
    gate.touch()
    spec = write_spec(tmp_path, overrides={"FAKE.COUNTER": str(counter)},
                      methods={"two_stage": {}, "zegclip": {"overrides": {
                          "FAKE.WAIT_WHILE": str(gate)}}})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "zsseg_bench", "sweep", str(spec), "--output-dir", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO)
    runs = out / RUNS_DIRNAME
    child = _wait_for_pid(runs)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, output
    assert "received SIGTERM" in output and "interrupted" in output
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    (zeg,) = runs.glob("zegclip-*")
    assert _status(zeg)["state"] == "interrupted"
    assert _calls(counter) == [("train", "two_stage"), ("speed", "two_stage")]

    gate.unlink()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 already finished, 1 to run (1 retried)" in res.stdout
    assert _calls(counter)[2:] == [("train", "zegclip"), ("speed", "zegclip")]
    assert "stage train attempt 2" in (zeg / STDOUT_FILE).read_text()


def test_relaunch_after_sigkill_stops_the_orphaned_stage_first(tmp_path):
    gate = tmp_path / "gate"
    gate.touch()
    spec = write_spec(tmp_path, methods=["zegclip"], baseline=None,
                      overrides={"FAKE.WAIT_WHILE": str(gate)})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "zsseg_bench", "sweep", str(spec), "--output-dir", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=REPO)
    orphan = _wait_for_pid(out / RUNS_DIRNAME)
    first.kill()  # SIGKILL: no handler runs, the stage process survives
    first.wait(timeout=30)
    os.kill(orphan, 0)  # still alive
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=REPO)
    deadline = time.time() + 30
    while time.time() < deadline and Path(f"/proc/{orphan}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{orphan}").exists(), "the orphaned stage was not stopped"
    gate.unlink()
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output
    assert f"stopped process {orphan} of zegclip-" in output


def _wait_for_pid(runs, pattern="zegclip-*", timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.1)
        for d in runs.glob(pattern) if runs.exists() else []:
            with contextlib.suppress(FileNotFoundError, KeyError, ValueError):
                pid = _status(d)["stages"]["train"].get("pid")
                if pid:
                    return pid
    raise AssertionError("the run never started")


def test_cli_exit_codes_and_one_line_errors(tmp_path):
    spec = write_spec(tmp_path, methods={"two_stage": {"overrides": {"FAKE.CRASH": True}},
                                         "zegclip": {}})
    run = [sys.executable, "-m", "zsseg_bench", "sweep"]
    res = subprocess.run([*run, str(spec), "--output-dir", str(tmp_path / "o")],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 1 and "failed runs:" in res.stdout
    res = subprocess.run([*run, str(tmp_path / "nope.yaml"), "--output-dir", "x"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "nope.yaml" in res.stderr


@pytest.mark.parametrize("cluster", ["debug", "local"])
def test_submitit_launcher_isolates_failures(tmp_path, cluster):
    spec = write_spec(
        tmp_path, methods={"two_stage": {"overrides": {"FAKE.CRASH": True}}, "zegclip": {}},
        launcher={"slurm": {"cluster": cluster, "timeout_min": 5}})
    summary, text = _sweep(spec, tmp_path / "out", launcher="slurm")
    assert [r.state for r in summary.runs] == ["failed", "done"]
    assert summary.runs[1].job_log and "log: " in text
    assert (Path(summary.runs[1].run_dir) / "speed" / "speed.json").is_file()
    summary, _ = _sweep(spec, tmp_path / "out", launcher="slurm")  # resumes: only the failure
    assert summary.runs[1].skipped and not summary.runs[0].skipped


def test_stop_orphans_never_touches_an_unrelated_process(tmp_path):
    """A recycled pid in a stale status.json belongs to someone else: it is left alone."""
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        (run_dir / STATUS_FILE).write_text(json.dumps({"state": "running", "stages": {
            "train": {"state": "running", "pid": other.pid, "host": socket.gethostname()}}}))
        assert stop_orphans(run_dir, grace_s=1) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
