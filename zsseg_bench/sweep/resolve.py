"""Resolved configs of sweep cells, from which run ids are hashed.

A run's id must change exactly when what it runs changes, so it hashes the *resolved* config
(defaults + every installed method's keys + the config file with its ``_BASE_`` chain + the
overrides), not the spelling of the spec: moving an override from the spec into a config file
keeps the id, changing a value anywhere changes it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from zsseg_bench.utils.errors import UserError


@functools.lru_cache(maxsize=1)
def _base_cfg() -> Any:
    """Defaults + the keys of every installed method, as ``setup_cfg`` of the engine builds."""
    from zsseg_bench.config import get_cfg
    from zsseg_bench.config.projects import add_project_configs

    return add_project_configs(get_cfg())


def resolve_config_text(config_file: str, opts: list[str]) -> str:
    """The resolved config of ``config_file`` + ``opts`` as YAML text (``OUTPUT_DIR`` excluded).

    Mirrors :func:`zsseg_bench.engine.defaults.setup_cfg` (without importing torch for it).

    Args:
        config_file: a zsseg-bench config file.
        opts: ``KEY VALUE ...`` overrides.

    Raises:
        UserError: the file is missing or a key/value is invalid.
    """
    from zsseg_bench.config import validate_cfg

    cfg = _base_cfg().clone()
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    validate_cfg(cfg)
    cfg.OUTPUT_DIR = ""
    return cfg.dump()


def raw_config_text(config_file: str, opts: list[str]) -> str:
    """For sweeps whose commands are not zsseg-bench's (``resolve_configs: false``): the config
    file's own text followed by the overrides, without interpreting either."""
    path = Path(config_file)
    if not path.is_file():
        raise UserError(f"config file not found: {config_file}")
    return path.read_text(encoding="utf-8") + "\n#opts: " + " ".join(opts)
