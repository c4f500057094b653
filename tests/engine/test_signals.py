"""Ctrl-C and SIGTERM on ``zsseg-bench train`` as a terminal and a scheduler send them: real
signals to a real process (its whole process group, and its data-loader workers too), during a
training step, a periodic evaluation and the final evaluation. Each stops within seconds with a
checkpoint, exits 130 (SIGINT) or 143 (SIGTERM), prints no traceback, and ``--resume``
continues (re-running an evaluation that was stopped)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from tests.cli_helpers import REPO, cli_command, cli_env, wait_until
from tests.contract_head import SLOW_INFERENCE_ENV
from tests.engine.helpers import write_config
from zsseg_bench.engine.signals import EXIT_CODE_SIGINT, EXIT_CODE_SIGTERM

#: The most a stop may take, from the signal to the process's exit (a loaded 2-core machine:
#: the step in progress, a checkpoint, the workers' shutdown).
STOP_WITHIN_S = 20.0


def _start(toy_root, config, out, *extra, env=None) -> subprocess.Popen:
    """``train`` in a session (process group) of its own, as a terminal's job."""
    return subprocess.Popen(
        cli_command("train", "--no-progress", "--config-file", str(config), "--output-dir",
                    str(out), *extra),
        cwd=REPO, env={**cli_env(toy_root), **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)


def _resume_to_the_end(toy_root, config, out) -> None:
    proc = _start(toy_root, config, out, "--resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]


def _children(pid: int) -> list[int]:
    """Pids of the live children of ``pid`` (data-loader workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _stop(proc, sig, *, workers=False) -> tuple[int, str, float]:
    """Sends ``sig`` to the process group (and to each worker); returns (exit code, stderr,
    seconds from the signal to the exit)."""
    targets = _children(proc.pid) if workers else []
    tic = time.monotonic()
    os.killpg(proc.pid, sig)
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"{signal.Signals(sig).name}: still running after 120 s") from None
    return proc.returncode, err, time.monotonic() - tic


def _records(out, kind):
    lines = (out / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def _train_records(out):
    return lambda: (out / "log.jsonl").exists() and \
        (out / "log.jsonl").read_text().count('"type": "train"') >= 3


def test_ctrl_c_to_the_group_and_workers_checkpoints_exits_130_and_resumes(toy_root, tmp_path):
    # The toy configs checkpoint every 1,000,000 iterations: the stop must write one itself.
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=100000,
                          SOLVER__CHECKPOINT_PERIOD=1000000, DATALOADER__NUM_WORKERS=2)
    out = tmp_path / "run"
    proc = _start(toy_root, config, out)
    wait_until(_train_records(out), proc)
    assert len(_children(proc.pid)) >= 2  # the loader's workers are running
    code, err, took = _stop(proc, signal.SIGINT, workers=True)
    assert code == EXIT_CODE_SIGINT, err[-3000:]
    assert took < STOP_WITHIN_S, took
    assert "Traceback" not in err and "Error" not in err, err[-3000:]
    assert "stopped by Ctrl-C (SIGINT) after" in err
    name = (out / "last_checkpoint").read_text()
    stopped_at = torch.load(out / name, map_location="cpu", weights_only=True)["iteration"]
    stop = _records(out, "event")[-1]
    assert stop["event"] == "stopped" and stop["iteration"] == stopped_at + 1
    assert stop["signal"] == "Ctrl-C (SIGINT)" and stop["during"] == "training"

    # --resume continues after it; SIGTERM (also sent to the workers) stops it again, 143.
    proc = _start(toy_root, config, out, "--resume")
    wait_until(lambda: len(_records(out, "train")) >= stopped_at + 3, proc)
    code, err, took = _stop(proc, signal.SIGTERM, workers=True)
    assert code == EXIT_CODE_SIGTERM and took < STOP_WITHIN_S, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    resume = [e for e in _records(out, "event") if e["event"] == "resume"][-1]
    assert resume["start_iter"] == stopped_at + 1


def _stop_while_evaluating(toy_root, tmp_path, sig, evaluating, **overrides):
    """Trains the tiny config, each test image taking 10 s to evaluate (the 4 images: 40 s);
    sends ``sig`` once ``evaluating(out)`` holds; returns (config, out, exit code, stderr)."""
    config = write_config(tmp_path / "config.yaml", SOLVER__CHECKPOINT_PERIOD=1000000,
                          TEST__IMS_PER_BATCH=1, **overrides)
    out = tmp_path / "run"
    proc = _start(toy_root, config, out, env={SLOW_INFERENCE_ENV: "10"})
    wait_until(evaluating(out), proc)
    time.sleep(3.0)
    code, err, took = _stop(proc, sig)
    assert took < STOP_WITHIN_S, took
    assert "Traceback" not in err, err[-3000:]
    return config, out, code, err


def test_sigterm_during_the_final_evaluation_stops_it_and_resume_evaluates(toy_root, tmp_path):
    config, out, code, err = _stop_while_evaluating(
        toy_root, tmp_path, signal.SIGTERM, lambda out: (out / "model_final.pth").exists,
        SOLVER__MAX_ITER=3, DATALOADER__NUM_WORKERS=1)
    assert code == EXIT_CODE_SIGTERM, err[-3000:]
    assert "during the final evaluation" in err
    assert not (out / "metrics.json").exists()
    stop = _records(out, "event")[-1]
    assert stop["event"] == "stopped" and stop["during"] == "final evaluation"
    assert stop["checkpoint"].endswith("model_final.pth") and stop["iteration"] == 3

    # --resume trains no further and runs the evaluation (at full speed now).
    _resume_to_the_end(toy_root, config, out)
    assert json.loads((out / "metrics.json").read_text())["iteration"] == 3
    assert [r["iteration"] for r in _records(out, "eval")] == [3]


def test_ctrl_c_during_a_periodic_evaluation_is_run_again_on_resume(toy_root, tmp_path):
    # Iteration 1 logged: iteration 2 (a fraction of a second) and its evaluation (40 s) follow.
    config, out, code, err = _stop_while_evaluating(
        toy_root, tmp_path, signal.SIGINT, lambda out: lambda: (out / "log.jsonl").exists() and
        len(_records(out, "train")) >= 1, SOLVER__MAX_ITER=4, TEST__EVAL_PERIOD=2)
    assert code == EXIT_CODE_SIGINT, err[-3000:]
    assert "during the evaluation after iteration 2" in err, err[-3000:]
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
    assert _records(out, "eval") == []

    _resume_to_the_end(toy_root, config, out)
    assert [r["iteration"] for r in _records(out, "eval")] == [2, 4]
    assert [r["iteration"] for r in _records(out, "train")][-2:] == [3, 4]
