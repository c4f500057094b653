"""The command line: help on every command and the one-line error for a missing config file
(in-process: ``main`` is what the ``zsseg-bench`` script and ``python -m zsseg_bench`` call)."""

import subprocess
import sys

import pytest

from zsseg_bench.cli import COMMANDS, main


def _help(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as e:
        main([*args, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    out = _help(capsys)
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name, capsys):
    assert "usage: zsseg-bench " + name in _help(capsys, name)


@pytest.mark.parametrize("name", ["train", "eval", "speed"])
def test_missing_config_file_is_one_line_exit_2(name, tmp_path, capsys):
    extra = ["--weights", str(tmp_path / "w.pth")] if name == "eval" else []
    assert main([name, "--config-file", str(tmp_path / "missing.yaml"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0, err
    assert "missing.yaml" in err and "Traceback" not in err


def test_python_dash_m_is_the_command_line():
    """One interpreter checks the module entry point itself."""
    res = subprocess.run([sys.executable, "-m", "zsseg_bench", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "usage: zsseg-bench" in res.stdout


def test_closed_stdout_ends_quietly(tmp_path):
    """`zsseg-bench sweep SPEC --dry-run | head -1`: no traceback when the reader goes away."""
    spec = "configs/sweeps/toy_comparison.yaml"
    cmd = (f"{sys.executable} -m zsseg_bench sweep {spec} --output-dir {tmp_path / 'out'} "
           f"--dry-run | head -c 10")
    res = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True,
                         text=True, timeout=120)
    assert len(res.stdout) == 10
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
