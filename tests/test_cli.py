"""The command line: help on every command and the one-line error for a missing config file."""

import subprocess
import sys

import pytest

from zsseg_bench.cli import COMMANDS


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zsseg_bench", *args], capture_output=True,
                          text=True, timeout=120)


def test_top_level_help_lists_every_command():
    res = _run("--help")
    assert res.returncode == 0
    for name in COMMANDS:
        assert name in res.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name):
    res = _run(name, "--help")
    assert res.returncode == 0, res.stderr
    assert "usage: zsseg-bench " + name in res.stdout


@pytest.mark.parametrize("name", ["train", "eval", "speed"])
def test_missing_config_file_is_one_line_exit_2(name, tmp_path):
    extra = ["--weights", str(tmp_path / "w.pth")] if name == "eval" else []
    res = _run(name, "--config-file", str(tmp_path / "missing.yaml"), *extra)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert "missing.yaml" in res.stderr and "Traceback" not in res.stderr
