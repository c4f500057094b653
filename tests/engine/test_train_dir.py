"""A run directory belongs to one process at a time (a second real process is refused in one
line naming the holder; the lock of a killed process is taken over); ``--resume`` with another
config is refused with the differences shown unless ``--allow-config-change``; a finished run is
never overwritten without ``--overwrite-output-dir``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import yaml

from tests.cli_helpers import REPO, cli_command, cli_env
from tests.engine.helpers import PREFIX, write_config
from zsseg_bench.cli import main

IN_PROCESS_DATASETS = ["DATASETS.TRAIN", f"('{PREFIX}_train',)",
                       "DATASETS.TEST", f"('{PREFIX}_val',)"]


def _train(config, out, *extra):
    return main(["train", "--no-progress", "--config-file", str(config), "--output-dir",
                 str(out), *extra, *IN_PROCESS_DATASETS])


def _events(out):
    lines = (out / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "event"]


def test_a_second_process_is_refused_and_a_killed_holders_lock_is_taken_over(toy_root,
                                                                            tmp_path, capsys):
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=100000,
                          SOLVER__CHECKPOINT_PERIOD=1000000)
    out = tmp_path / "run"
    first = subprocess.Popen(cli_command("train", "--config-file", str(config), "--output-dir",
                                         str(out)), cwd=REPO, env=cli_env(toy_root),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not ((out / "log.jsonl").exists() and '"start"' in (out / "log.jsonl").read_text()):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        capsys.readouterr()
        # This (test) process is the second one (a short run: without the lock it would finish).
        assert _train(config, out, "SOLVER.MAX_ITER", "2") == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1, error
        assert f"pid {first.pid} on {socket.gethostname()}" in error[0]
        assert "in use by `train`" in error[0]
        started = (out / "log.jsonl").read_text().count('"event": "start"')
        assert started == 1  # the second one wrote nothing into the run
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    # The killed process left its lock file behind; the next run takes it over.
    assert json.loads((out / "run.lock").read_text())["pid"] == first.pid
    assert _train(config, out, "--overwrite-output-dir", "SOLVER.MAX_ITER", "2") == 0
    assert not (out / "run.lock").exists()


def test_resume_with_another_config_is_refused_unless_allowed(toy_root, tmp_path, capsys):
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=2, SOLVER__BASE_LR=0.01)
    out = tmp_path / "run"
    assert _train(config, out) == 0
    before = (out / "config.yaml").read_text()
    capsys.readouterr()

    assert _train(config, out, "--resume", "SOLVER.MAX_ITER", "4", "SOLVER.BASE_LR",
                  "0.02") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "SOLVER.BASE_LR: 0.01 -> 0.02" in err and "SOLVER.MAX_ITER: 2 -> 4" in err
    assert "--allow-config-change" in err
    assert (out / "config.yaml").read_text() == before  # nothing rewritten

    # The same config (the number of loader workers may differ) resumes; the flag accepts more.
    assert _train(config, out, "--resume", "DATALOADER.NUM_WORKERS", "1") == 0
    assert _train(config, out, "--resume", "--allow-config-change", "SOLVER.MAX_ITER",
                  "4") == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["SOLVER"]["MAX_ITER"] == 4
    changed = [e for e in _events(out) if e["event"] == "config_changed"]
    assert changed[-1]["changes"] == {"SOLVER.MAX_ITER": [2, 4]}
    assert json.loads((out / "metrics.json").read_text())["iteration"] == 4


def test_a_finished_run_is_not_overwritten_without_the_flag(toy_root, tmp_path, capsys):
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=2)
    out = tmp_path / "run"
    assert _train(config, out) == 0
    final = (out / "model_final.pth").stat().st_mtime_ns
    capsys.readouterr()
    assert _train(config, out) == 2
    err = capsys.readouterr().err
    assert "holds a finished run (model_final.pth)" in err and "--overwrite-output-dir" in err
    assert (out / "model_final.pth").stat().st_mtime_ns == final
    assert _train(config, out, "--resume", "--overwrite-output-dir") == 2  # contradictory

    (out / "model_0000000.pth").write_bytes(b"an older checkpoint")
    assert _train(config, out, "--overwrite-output-dir") == 0
    assert not (out / "model_0000000.pth").exists()
    assert (out / "model_final.pth").stat().st_mtime_ns != final
    assert [e["event"] for e in _events(out)].count("start") == 2


def test_runs_record_their_data(toy_root, tmp_path):
    config = write_config(tmp_path / "config.yaml", SOLVER__MAX_ITER=1)
    out = tmp_path / "run"
    assert _train(config, out) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    env = json.loads((out / "env.json").read_text())
    train, test = metrics["data"]["train"], metrics["data"]["test"]
    assert env["data"] == metrics["data"]
    assert [d["name"] for d in train] == [f"{PREFIX}_train"]
    assert train[0]["images"] == 8 and test[0]["images"] == 4
    assert train[0]["root"] == str(toy_root / "synthetic")
    assert len(train[0]["fingerprint"]) == 16 and train[0]["fingerprint"] != \
        test[0]["fingerprint"]

    evaluated = tmp_path / "eval"
    assert main(["eval", "--config-file", str(config), "--weights", str(out / "model_final.pth"),
                 "--output-dir", str(evaluated), *IN_PROCESS_DATASETS]) == 0
    assert json.loads((evaluated / "metrics.json").read_text())["data"] == {"train": [],
                                                                            "test": test}
