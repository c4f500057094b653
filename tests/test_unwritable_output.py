"""An output directory that cannot be written is a one-line error of every command that writes
one (train, eval, predict, speed, sweep, report), never a traceback.

The directory is really unwritable: a read-only file system mounted in a private mount
namespace (``unshare``) when the tests run as root (root writes through permissions), else a
directory without write permission."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import REPO, cli_env
from tests.engine.helpers import PREFIX, write_config
from tests.sweep.helpers import write_spec
from zsseg_bench.cli import main

TIMEOUT = 300


def _in_readonly(folder: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Runs ``argv`` where ``folder`` cannot be written."""
    if os.geteuid() == 0:
        script = (f"mount -t tmpfs -o ro tmpfs {shlex.quote(str(folder))} && exec "
                  + shlex.join(argv))
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    else:
        folder.chmod(0o555)
        cmd = argv
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env,
                              timeout=TIMEOUT)
    finally:
        folder.chmod(0o755)


@pytest.fixture(scope="module")
def trained(toy_root_module, tmp_path_factory):
    """A tiny trained run and a finished fake sweep (what eval, predict and report read)."""
    tmp = tmp_path_factory.mktemp("unwritable")
    config = write_config(tmp / "config.yaml", SOLVER__MAX_ITER=1)
    run = tmp / "run"
    assert main(["train", "--no-progress", "--config-file", str(config), "--output-dir",
                 str(run), "DATASETS.TRAIN", f"('{PREFIX}_train',)", "DATASETS.TEST",
                 f"('{PREFIX}_val',)"]) == 0
    spec = write_spec(tmp / "fake")
    assert main(["sweep", str(spec), "--output-dir", str(tmp / "sweep")]) == 0
    return {"config": config, "weights": run / "model_final.pth", "spec": spec,
            "sweep": tmp / "sweep", "image": next((toy_root_module / "synthetic" / "images" /
                                                   "val").iterdir())}


@pytest.fixture(scope="module")
def toy_root_module(tmp_path_factory):
    import zsseg_bench.data.datasets  # noqa: F401
    from zsseg_bench.data.catalog import DatasetCatalog
    from zsseg_bench.data.datasets.synthetic import register_all_synthetic
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path_factory.mktemp("datasets")
    prepare_synthetic(str(root), num_train=4, num_val=2)
    if f"{PREFIX}_train" not in DatasetCatalog.list():
        register_all_synthetic(str(root), prefix=PREFIX, num_train=4, num_val=2)
    return root


def _commands(t: dict, out: Path) -> dict[str, list[str]]:
    c = str(t["config"])
    return {
        "train": ["train", "--config-file", c, "--output-dir", str(out)],
        "eval": ["eval", "--config-file", c, "--weights", str(t["weights"]), "--output-dir",
                 str(out)],
        "predict": ["predict", "--config-file", c, "--weights", str(t["weights"]), "--input",
                    str(t["image"]), "--classes", "red circle,background", "--output-dir",
                    str(out)],
        "speed": ["speed", "--config-file", c, "--random-init", "--device", "cpu",
                  "--output-dir", str(out)],
        "sweep": ["sweep", str(t["spec"]), "--output-dir", str(out)],
        "report": ["report", str(t["sweep"]), "--output", str(out)],
    }


#: Runs each command line of a JSON file with the CLI's main() in this one process (the test-only
#: head registered) and prints, per command, its exit code and what it wrote to stderr.
_DRIVER = """
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[2])
import tests.contract_head
from zsseg_bench.cli import main
out = []
for argv in json.load(open(sys.argv[1])):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""
COMMANDS = ("train", "eval", "predict", "speed", "sweep", "report")


def test_an_unwritable_output_directory_is_a_one_line_error(trained, toy_root_module, tmp_path):
    if os.geteuid() == 0 and shutil.which("unshare") is None:
        pytest.skip("root needs unshare to make a directory unwritable")
    folder = tmp_path / "readonly"
    folder.mkdir()
    out = folder / "out"
    commands = _commands(trained, out)
    argv = tmp_path / "commands.json"
    argv.write_text(json.dumps([commands[c] for c in COMMANDS]))
    # One process for all six commands (each would import torch again).
    res = _in_readonly(folder, [sys.executable, "-c", _DRIVER, str(argv), str(REPO)],
                       cli_env(toy_root_module))
    if os.geteuid() == 0 and "mount" in res.stderr and "permission denied" in res.stderr.lower():
        pytest.skip(f"cannot mount a read-only file system here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr[-3000:]
    for command, (code, err) in zip(COMMANDS, json.loads(res.stdout.strip().splitlines()[-1])):
        lines = err.strip().splitlines()
        assert code == 2, (command, err[-3000:])
        assert "Traceback" not in err, (command, err[-3000:])
        assert lines[-1].startswith(f"zsseg-bench {command}: error: cannot write to the output "
                                    f"directory {out} ("), lines[-1]
        assert "choose a writable --output" in lines[-1]
