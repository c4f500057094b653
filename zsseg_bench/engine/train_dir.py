"""What ``train`` may do with a run directory that holds a run already.

- Without ``--resume``, a directory holding checkpoints (``last_checkpoint``, ``model_*.pth``)
  is refused: its run would be overwritten. ``--overwrite-output-dir`` (the name of
  Hugging Face's ``Trainer`` option) starts over: it deletes the checkpoints and
  ``metrics.json`` first (logs are appended to, as always).
- With ``--resume``, the config must be the run's own (``config.yaml``): a difference is
  refused with the differing keys shown, unless ``--allow-config-change`` accepts it (the run's
  ``config.yaml`` is then rewritten and the change logged). Keys that cannot change a result
  (:data:`FREE_KEYS`) may differ.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml

from zsseg_bench.config.config import flat_items, migrate_removed_keys
from zsseg_bench.engine.checkpoint import LAST_CHECKPOINT, PERIODIC_NAME
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.run_dir import CONFIG_FILE, METRICS_FILE

#: Keys a resumed run may change freely: where it writes and how many loader processes it uses
#: (the data stream is the same whatever their number, :mod:`zsseg_bench.data.build`).
FREE_KEYS = ("OUTPUT_DIR", "DATALOADER.NUM_WORKERS")
FINAL_CHECKPOINT = "model_final.pth"
#: Differences shown in an error message (the rest are counted).
MAX_SHOWN = 12


def checkpoint_files(output_dir: Path) -> list[Path]:
    """The checkpoints of a run (``model_final.pth``, ``model_XXXXXXX.pth``) and
    ``last_checkpoint``, sorted."""
    if not output_dir.is_dir():
        return []
    return sorted(p for p in output_dir.iterdir()
                  if p.name in (FINAL_CHECKPOINT, LAST_CHECKPOINT)
                  or PERIODIC_NAME.match(p.name))


def config_differences(new: Any, old_yaml: str) -> dict[str, tuple[Any, Any]]:
    """``{key: (old, new)}`` of the leaf keys whose values differ between a run's
    ``config.yaml`` text and the config ``new`` (both read back from YAML, so tuples and lists
    compare equal; a key one side lacks is ``"(absent)"`` there), :data:`FREE_KEYS` left out."""
    absent = "(absent)"
    stored = yaml.safe_load(old_yaml) or {}
    migrate_removed_keys(stored)  # a run written before a key was renamed resumes as it was
    old = flat_items(stored)
    cur = flat_items(yaml.safe_load(new.dump()) or {})
    return {k: (old.get(k, absent), cur.get(k, absent)) for k in sorted(set(old) | set(cur))
            if k not in FREE_KEYS and old.get(k, absent) != cur.get(k, absent)}


def _format(diff: dict[str, tuple[Any, Any]]) -> str:
    shown = [f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(diff.items())[:MAX_SHOWN]]
    more = len(diff) - MAX_SHOWN
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _describe(output_dir: Path, files: list[Path]) -> str:
    names = [p.name for p in files if p.name != LAST_CHECKPOINT]
    if FINAL_CHECKPOINT in names:
        return "a finished run (model_final.pth)"
    last = output_dir / LAST_CHECKPOINT
    name = last.read_text().strip() if last.is_file() else (names[-1] if names else "")
    return f"an unfinished run (last checkpoint {name})" if name else "checkpoints"


def check_train_dir(cfg: Any, output_dir: str | Path, *, resume: bool,
                    allow_config_change: bool = False,
                    overwrite: bool = False) -> dict[str, tuple[Any, Any]]:
    """Checks (and with ``overwrite``, clears) ``output_dir`` before ``train`` writes it.

    Args:
        cfg: the resolved config of the new session.
        output_dir: the run directory.
        resume: ``--resume``.
        allow_config_change: ``--allow-config-change``.
        overwrite: ``--overwrite-output-dir``.

    Returns:
        The config keys a resumed run changes (``{key: (old, new)}``; empty for a new run).

    Raises:
        UserError: a run would be overwritten, or resumed with another config.
    """
    out = Path(output_dir)
    files = checkpoint_files(out)
    if not files:
        return {}
    if not resume:
        if not overwrite:
            raise UserError(
                f"{out} holds {_describe(out, files)}: continue it with --resume, start over "
                "with --overwrite-output-dir (deletes its checkpoints and metrics.json), or "
                "choose another --output-dir")
        for path in [*files, out / METRICS_FILE]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return {}
    config = out / CONFIG_FILE
    try:
        old_yaml = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}  # checkpoints without a config: nothing to compare with
    except OSError as e:
        raise UserError(f"cannot read {config} ({e.strerror}), the config of the run to "
                        "resume") from None
    try:
        diff = config_differences(cfg, old_yaml)
    except yaml.YAMLError as e:
        if allow_config_change:
            return {CONFIG_FILE: ("(not valid YAML)", "(this config)")}
        raise UserError(f"{config} is not valid YAML ({str(e).splitlines()[0]}); it is the "
                        "config of the run to resume: restore it, or pass "
                        "--allow-config-change to replace it") from None
    if diff and not allow_config_change:
        raise UserError(
            f"--resume with a config that differs from the run's {config} in {len(diff)} "
            f"key(s): {_format(diff)}. Resume with the run's config (its file and KEY VALUE "
            "overrides), or pass --allow-config-change to continue with the new one")
    return diff
