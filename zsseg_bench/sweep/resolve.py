"""What defines a sweep cell's config, from which its run id is hashed.

A run's id must change exactly when what it runs changes, and nothing else: it hashes the
*resolved* config (the config file with its ``_BASE_`` chain + the overrides) as it differs from
the defaults (the core's + every installed method's), not the spelling of the spec. Moving an
override from the spec into a config file keeps the id; changing a value anywhere changes it;
installing another method (new keys at their defaults) or adding a default key changes no id.
Changing a default's *value* keeps the ids of runs that do not set the key: a run directory's
``config.yaml`` records the full config it ran with.

A run that trains also depends on its data: :func:`data_fingerprints` gives the fingerprint of
each dataset of ``DATASETS.TRAIN`` and ``DATASETS.TEST`` (:mod:`zsseg_bench.data.identity`:
file list and sizes), so a sweep relaunched on other data (another datasets root, a
re-rendered toy world) runs again instead of skipping "finished" runs, while the same data
under another root keeps the ids.
"""

from __future__ import annotations

import contextlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from zsseg_bench.utils.errors import UserError


@cache
def _defaults() -> Any:
    """The defaults every config starts from: the core's and every installed method's keys."""
    from zsseg_bench.config import get_cfg

    cfg = get_cfg()
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


def data_fingerprints(config_file: str, opts: list[str],
                      cache: dict[str, dict[str, Any]] | None = None,
                      missing: set[str] | None = None) -> dict[str, str]:
    """``{dataset: fingerprint}`` of the training and test datasets of ``config_file`` +
    ``opts`` (``cache``: identities computed already, by dataset name).

    Args:
        config_file, opts: the run's config file and overrides.
        cache: identities computed already, by dataset name (filled in).
        missing: when given, a dataset that is not prepared is added to it and fingerprinted
            as ``"not prepared"`` (nothing is rendered: a dry run); else it is an error.

    Raises:
        UserError: a dataset is not registered or not prepared (the message says how).
    """
    import zsseg_bench.data  # noqa: F401  (registers the built-in datasets)
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.data.datasets.synthetic import no_rendering
    from zsseg_bench.data.identity import dataset_identity

    cfg = setup_cfg(config_file, list(opts), output_dir="")
    cache = {} if cache is None else cache
    out = {}
    for name in [*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]:
        if name not in cache:
            try:
                with no_rendering() if missing is not None else contextlib.nullcontext():
                    cache[name] = dataset_identity(name)
            except UserError:
                if missing is None:
                    raise
                missing.add(name)
                cache[name] = {"fingerprint": "not prepared"}
        out[name] = cache[name]["fingerprint"]
    return out
