"""The README's install command: one line, environment included, and the one .ci/run runs."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _install_line() -> str:
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        if "pip install -e" in line:
            return line.split("#", 1)[0].strip()
    raise AssertionError("README.md has no install command")


def test_install_line_creates_the_environment_first():
    line = _install_line()
    # PEP 668: a stock Debian/Ubuntu Python refuses pip into the system interpreter.
    assert line.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install")


def test_ci_runs_the_readme_install_line():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _install_line() in [c.strip() for c in ci]
