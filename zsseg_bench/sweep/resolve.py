"""Resolved configs of sweep cells, from which run ids are hashed.

A run's id must change exactly when what it runs changes, so it hashes the *resolved* config
(defaults + every installed method's keys + the config file with its ``_BASE_`` chain + the
overrides), not the spelling of the spec: moving an override from the spec into a config file
keeps the id, changing a value anywhere changes it.
"""

from __future__ import annotations

from pathlib import Path

from zsseg_bench.utils.errors import UserError


def resolve_config_text(config_file: str, opts: list[str]) -> str:
    """The resolved config of ``config_file`` + ``opts`` as YAML text (``OUTPUT_DIR`` blank).

    The config :func:`zsseg_bench.config.command_line.setup_cfg` builds for the commands, with an
    empty ``OUTPUT_DIR`` (where a run is written does not change what it runs).

    Args:
        config_file: a zsseg-bench config file.
        opts: ``KEY VALUE ...`` overrides.

    Raises:
        UserError: the file is missing or a key/value is invalid.
    """
    from zsseg_bench.config.command_line import setup_cfg

    return setup_cfg(config_file, list(opts), output_dir="").dump()


def raw_config_text(config_file: str, opts: list[str]) -> str:
    """For sweeps whose commands are not zsseg-bench's (``resolve_configs: false``): the config
    file's own text followed by the overrides, without interpreting either."""
    path = Path(config_file)
    if not path.is_file():
        raise UserError(f"config file not found: {config_file}")
    return path.read_text(encoding="utf-8") + "\n#opts: " + " ".join(opts)
