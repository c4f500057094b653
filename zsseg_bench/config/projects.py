"""Discovery of method projects through the ``zsseg_bench.projects`` entry-point group.

Each installed project (``projects/<name>`` -> ``zsseg_bench.projects.<name>``) declares its
``add_<method>_config(cfg)`` function as an entry point; loading it imports the project, which
registers its head. The core never imports a project by name.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
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
