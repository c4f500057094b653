"""Discovery of method projects through the ``zsseg_bench.projects`` entry-point group.

Every method is an entry point ``<name> = <module>:add_<name>_config`` of that group: the
projects of this repository (``projects/<name>`` -> ``zsseg_bench.projects.<name>``, declared
by setup.py from the packages themselves) and any method in its own pip package. Loading the
entry point imports the method, which registers its head. The core never imports a project by
name. A method's package may ship its own configs, ``<package>/configs/<dataset>/<name>.yaml``,
found by :func:`project_config_dirs` (``methods: "*"`` of a sweep spec picks them up).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from zsseg_bench.utils.errors import UserError

GROUP = "zsseg_bench.projects"


@cache
def load_projects() -> dict[str, Callable[[Any], None]]:
    """Imports every installed project; returns ``name -> add_<method>_config``."""
    found: dict[str, Callable[[Any], None]] = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()
        except ImportError as e:
            raise UserError(f"method project '{ep.name}' ({ep.value}) failed to import: {e}; "
                            "reinstall the suite with `pip install -e .`") from e
    return found


def add_project_configs(cfg: Any) -> Any:
    """Adds the config keys of every installed project to ``cfg`` (in place) and returns it."""
    for add_config in load_projects().values():
        add_config(cfg)
    return cfg


def project_config_dirs() -> dict[str, Path]:
    """``name -> <package>/configs`` of every installed method whose package ships one.

    The package of the entry point's module is located without importing it
    (``importlib.util.find_spec``), so listing configs stays cheap.
    """
    found: dict[str, Path] = {}
    for ep in entry_points(group=GROUP):
        try:
            spec = find_spec(ep.module)
        except (ImportError, ValueError):
            continue  # reported by load_projects() when the method is used
        if spec is None or not spec.submodule_search_locations:
            continue  # a single-module method ships no configs
        for root in map(Path, spec.submodule_search_locations):
            if (root / "configs").is_dir():
                found[ep.name] = root / "configs"
                break
    return found
