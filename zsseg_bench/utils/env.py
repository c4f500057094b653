"""What a result was produced with: versions, device and git commit (written to ``env.json``)."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("torch", "torchvision", "open_clip_torch", "fvcore", "numpy", "zsseg-bench")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """Returns the commit hash of the suite's checkout (with ``-dirty`` if modified), or None."""
    repo = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def device_name(device: str | None = None) -> str:
    """A human-readable name of the compute device (GPU model or CPU model + core count)."""
    import torch

    if (device is None or str(device).startswith("cuda")) and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device or "cuda"))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({torch.get_num_threads()} threads)"


def collect_env(device: str | None = None) -> dict[str, Any]:
    """Returns the environment facts recorded with every run."""
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device": device_name(device),
        "torch_num_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "argv": sys.argv,
    }
