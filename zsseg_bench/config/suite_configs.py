"""The configs that ship with the suite, found as detectron2's ``model_zoo.get_config_file``.

The repository keeps them in its top-level ``configs/`` (``Base-*.yaml``,
``<dataset>/<method>.yaml``, ``sweeps/*.yaml``); setup.py installs that folder as package data
of ``zsseg_bench.configs`` (the way it maps ``projects/`` into ``zsseg_bench.projects``), so a
wheel or a non-editable install has them under ``<site-packages>/zsseg_bench/configs``. One
resolver serves both layouts: the installed copy first, else the checkout's folder beside the
package (an editable install, or the source tree on ``PYTHONPATH``).
"""

from __future__ import annotations

from pathlib import Path

from zsseg_bench.utils.errors import UserError

#: The ``zsseg_bench`` package directory.
_PACKAGE = Path(__file__).resolve().parents[1]
#: Where the configs are: installed as package data, then the checkout's top-level folder.
_CANDIDATES = (_PACKAGE / "configs", _PACKAGE.parent / "configs")


def configs_root() -> Path:
    """The folder of the suite's configs (installed package data, else the checkout's).

    Raises:
        UserError: neither exists (an install built without its package data).
    """
    for root in _CANDIDATES:
        if (root / "sweeps").is_dir():
            return root
    raise UserError(f"the suite's configs are missing: none of {', '.join(map(str, _CANDIDATES))} "
                    "exists; reinstall zsseg-bench (`pip install .` ships configs/ as package "
                    "data)")


def get_config_file(relative: str | Path) -> Path:
    """The absolute path of a config that ships with the suite.

    Args:
        relative: its path under ``configs/``, e.g. ``"synthetic/zegclip.yaml"`` or
            ``"sweeps/paper_voc.yaml"``.

    Raises:
        UserError: the suite has no such config.
    """
    path = configs_root() / relative
    if not path.is_file():
        raise UserError(f"the suite ships no config {relative} (looked in {path.parent})")
    return path
