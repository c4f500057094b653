"""What defines a sweep cell's config, from which its run id is hashed.

A run's id must change exactly when what it runs changes, and nothing else: it hashes the
*resolved* config (the config file with its ``_BASE_`` chain + the overrides) as it differs from
the defaults (the core's + every installed method's), not the spelling of the spec. Moving an
override from the spec into a config file keeps the id; changing a value anywhere changes it;
installing another method (new keys at their defaults) or adding a default key changes no id.
Changing a default's *value* keeps the ids of runs that do not set the key: a run directory's
``config.yaml`` records the full config it ran with.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from zsseg_bench.utils.errors import UserError


@cache
def _defaults() -> Any:
    """The defaults every config starts from: the core's and every installed method's keys."""
    from zsseg_bench.config import get_cfg
    from zsseg_bench.config.projects import add_project_configs

    cfg = add_project_configs(get_cfg())
    cfg.OUTPUT_DIR = ""
    cfg.freeze()
    return cfg


def resolve_config_text(config_file: str, opts: list[str]) -> str:
    """The keys where ``config_file`` + ``opts`` differ from the defaults, as canonical JSON.

    The config is the one :func:`zsseg_bench.config.command_line.setup_cfg` builds for the
    commands, with an empty ``OUTPUT_DIR`` (where a run is written does not change what it runs).

    Args:
        config_file: a zsseg-bench config file.
        opts: ``KEY VALUE ...`` overrides.

    Raises:
        UserError: the file is missing or a key/value is invalid.
    """
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.config.config import changed_keys

    cfg = setup_cfg(config_file, list(opts), output_dir="")
    return json.dumps(changed_keys(cfg, _defaults()), sort_keys=True)


def raw_config_text(config_file: str, opts: list[str]) -> str:
    """For sweeps whose commands are not zsseg-bench's (``resolve_configs: false``): the config
    file's own text followed by the overrides, without interpreting either."""
    path = Path(config_file)
    if not path.is_file():
        raise UserError(f"config file not found: {config_file}")
    return path.read_text(encoding="utf-8") + "\n#opts: " + " ".join(opts)
