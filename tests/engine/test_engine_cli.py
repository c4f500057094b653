"""``train`` / ``eval`` through the command line: SIGTERM stops cleanly with a checkpoint and
``--resume`` continues; SIGKILL leaves only complete checkpoints; a 2-process gloo DDP run
through torchrun completes and its evaluation equals a single-process ``eval`` of the same
weights."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest
import torch

from tests.cli_helpers import REPO, cli_command, cli_env, run_cli, wait_until
from tests.engine.helpers import PREFIX, trainable_weights, write_config
from zsseg_bench.cli import main
from zsseg_bench.engine.signals import EXIT_CODE_SIGTERM

#: The in-process registration of the same files as the subprocesses' ``synthetic_*``.
IN_PROCESS_DATASETS = ["DATASETS.TRAIN", f"('{PREFIX}_train',)",
                       "DATASETS.TEST", f"('{PREFIX}_val',)"]


def _records(path, kind):
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["type"] == kind]


def _signal_when_started(log_path, sig=signal.SIGTERM, timeout=120.0):
    """Sends ``sig`` to this process once the run logged its start (from a helper thread; the
    handler runs in the main thread, inside ``main()``)."""

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log_path.exists() and '"event": "start"' in log_path.read_text():
                if callable(signal.getsignal(sig)):  # the engine's handler is installed
                    os.kill(os.getpid(), sig)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_sigterm_saves_a_checkpoint_exits_143_and_resume_continues(toy_root, tmp_path, capsys):
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=500,
                          SOLVER__CHECKPOINT_PERIOD=1000)
    out = tmp_path / "run"
    args = ["train", "--no-progress", "--config-file", str(config), "--output-dir", str(out),
            *IN_PROCESS_DATASETS]
    watcher = _signal_when_started(out / "log.jsonl")
    assert main(args) == EXIT_CODE_SIGTERM
    watcher.join()
    assert "stopped by SIGTERM" in capsys.readouterr().err
    name = (out / "last_checkpoint").read_text()
    stopped_at = torch.load(out / name, map_location="cpu", weights_only=True)["iteration"]
    assert name == f"model_{stopped_at:07d}.pth" and stopped_at < 499
    assert _records(out / "log.jsonl", "event")[-1]["event"] == "stopped"
    assert not (out / "metrics.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files

    # --resume continues at the next iteration (here with a shorter schedule, to finish fast:
    # a change of the config that --allow-config-change accepts).
    assert main([*args[:1], "--resume", "--allow-config-change", *args[1:], "SOLVER.MAX_ITER",
                 str(stopped_at + 3)]) == 0
    resume = _records(out / "log.jsonl", "event")[-1]
    assert resume["event"] == "resume" and resume["start_iter"] == stopped_at + 1
    assert json.loads((out / "metrics.json").read_text())["iteration"] == stopped_at + 3


def test_sigkill_never_leaves_a_truncated_checkpoint(toy_root, tmp_path):
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=500,
                          SOLVER__CHECKPOINT_PERIOD=1, SOLVER__MAX_TO_KEEP=2)
    out = tmp_path / "run"
    proc = subprocess.Popen(cli_command("train", "--config-file", str(config), "--output-dir",
                                        str(out)), cwd=REPO, env=cli_env(toy_root),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Killed while it writes a checkpoint every iteration.
    log = out / "log.jsonl"
    wait_until(lambda: log.exists() and log.read_text().count('"type": "train"') >= 4, proc,
               timeout=90, what=str(log))
    proc.kill()
    proc.communicate(timeout=60)
    logged = max(r["iteration"] for r in _records(out / "log.jsonl", "train"))
    name = (out / "last_checkpoint").read_text()
    for path in out.glob("model_*.pth"):  # every checkpoint on disk is complete
        torch.load(path, map_location="cpu", weights_only=True)
    resumed_from = torch.load(out / name, map_location="cpu", weights_only=True)["iteration"]
    assert resumed_from + 1 >= logged - 1  # at most one checkpoint period (1 iteration) lost


@pytest.mark.slow
def test_ddp_gloo_two_processes_evaluation_equals_single_process_eval(toy_root, tmp_path,
                                                                     one_thread):
    # Equal confusion matrices need equal computations: one image per batch (TEST.IMS_PER_BATCH
    # 1) and one thread here as in the ranks (another thread count may flip an argmax).
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=4,
                          SOLVER__CHECKPOINT_PERIOD=2, TEST__EVAL_PERIOD=2)
    out = tmp_path / "ddp"
    proc = run_cli("train", "--config-file", str(config), "--output-dir", str(out),
                   datasets_root=toy_root, nproc=2, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((out / "metrics.json").read_text())
    assert ddp["iteration"] == 4
    events = _records(out / "log.jsonl", "event")
    assert [e["event"] for e in events] == ["start"] and events[0]["world_size"] == 2
    assert [r["iteration"] for r in _records(out / "log.jsonl", "eval")] == [2, 4]
    final = torch.load(out / "model_final.pth", map_location="cpu", weights_only=True)
    assert len(final["rng"]) == 2 and final["meta"]["world_size"] == 2

    single = tmp_path / "single"
    assert main(["eval", "--config-file", str(config), "--weights", str(out / "model_final.pth"),
                 "--output-dir", str(single), "--vis", "2", *IN_PROCESS_DATASETS]) == 0
    evaluated = json.loads((single / "metrics.json").read_text())
    assert json.dumps(evaluated["metrics"]) == json.dumps(ddp["metrics"])  # NaN-safe equality
    assert evaluated["iteration"] == 4 and len(list((single / "vis").glob("*.png"))) == 2
    conf_ddp = json.loads((out / "sem_seg_confusion.json").read_text())["confusion"]
    conf_one = json.loads((single / "sem_seg_confusion.json").read_text())["confusion"]
    assert conf_ddp == conf_one and sum(map(sum, conf_one)) > 0
    assert trainable_weights(out / "model_final.pth").keys() == {"head.proj.weight",
                                                                 "head.proj.bias",
                                                                 "head.logit_scale"}
