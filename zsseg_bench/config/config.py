"""``get_cfg()`` and a ``CfgNode`` whose unknown keys are errors that suggest the right ones."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fvcore.common.config import CfgNode as _FvcoreCfgNode

from zsseg_bench.config.allowed import check_allowed_values
from zsseg_bench.utils.errors import UserError, config_file_not_found

logger = logging.getLogger(__name__)

#: Keys whose value may be a string or a list of strings (yacs otherwise requires a merged
#: value to have the default's type), with what the value means.
STR_OR_LIST_KEYS = {
    "MODEL.CLIP.TEMPLATES": "a template-set name (e.g. single, vild_14) or a list of templates "
                            "with one {} each, e.g. [\"a sculpture of a {}.\"]",
}


class CfgNode(_FvcoreCfgNode):
    """fvcore's ``CfgNode`` (YAML with ``_BASE_``) that rejects unknown keys helpfully.

    A key that does not exist, in a YAML file or on the command line, raises
    :class:`~zsseg_bench.utils.errors.UserError` naming the key, where it came from, and the
    closest valid keys. The keys of :data:`STR_OR_LIST_KEYS` take a string or a list of strings.
    """

    def merge_from_other_cfg(self, cfg_other: Any) -> None:
        """Merges another config into this one (the keys of :data:`STR_OR_LIST_KEYS` may change
        between a string and a list)."""
        with self._str_or_list(_iter_keys(cfg_other)):
            super().merge_from_other_cfg(cfg_other)

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = True) -> None:
        """Merges a YAML file (following its ``_BASE_`` chain) into this config."""
        if not os.path.isfile(cfg_filename):
            raise config_file_not_found(cfg_filename)
        try:
            loaded = self.load_yaml_with_base(cfg_filename, allow_unsafe=allow_unsafe)
        except Exception as e:  # yaml errors, bad _BASE_ paths
            raise UserError(f"cannot read config file {cfg_filename}: {e}") from e
        loaded = type(self)(loaded)
        for note in migrate_removed_keys(loaded):
            logger.warning("%s: %s", cfg_filename, note)
        self._check_keys(_iter_keys(loaded), source=cfg_filename)
        try:
            self.merge_from_other_cfg(loaded)
        except ValueError as e:  # yacs type mismatch
            raise UserError(f"{cfg_filename}: {e}") from e

    def merge_from_list(self, cfg_list: Sequence[Any]) -> None:
        """Merges ``KEY VALUE`` pairs (command-line overrides) into this config."""
        if len(cfg_list) % 2:
            raise UserError(f"overrides must be KEY VALUE pairs, got an odd list: {cfg_list}")
        self._check_keys(cfg_list[0::2], source="the command line")
        try:
            with self._str_or_list(cfg_list[0::2]):
                super().merge_from_list(list(cfg_list))
        except ValueError as e:
            raise UserError(f"command-line override: {e}") from e

    @contextlib.contextmanager
    def _str_or_list(self, incoming: Iterable[str]) -> Iterator[None]:
        """While merging: the :data:`STR_OR_LIST_KEYS` among ``incoming`` are set to None (which
        yacs lets any value replace); afterwards each must hold a string or a list of strings."""
        flexible = [k for k in set(incoming) if k in STR_OR_LIST_KEYS and _has_key(self, k)]
        saved = {k: _get(self, k) for k in flexible}
        for k in flexible:
            _set(self, k, None)
        try:
            yield
        finally:
            bad = None
            for k in flexible:
                value = _get(self, k)
                if isinstance(value, tuple):
                    value = list(value)
                ok = isinstance(value, str) or (isinstance(value, list) and bool(value) and all(
                    isinstance(v, str) for v in value))
                _set(self, k, value if ok else saved[k])
                if not ok and value is not None and bad is None:
                    bad = (k, value)
            if bad is not None:
                raise UserError(f"config key {bad[0]} = {bad[1]!r}: expected "
                                f"{STR_OR_LIST_KEYS[bad[0]]}")

    def _check_keys(self, keys: Iterable[str], source: str) -> None:
        """Raises UserError on the first of ``keys`` (``A.B.C``) this config does not have."""
        valid = set(_iter_keys(self))
        for key in keys:
            if key not in valid:
                raise UserError(_unknown_key_message(key, source, valid))


def flat_items(cfg: Any) -> dict[str, Any]:
    """``{"A.B.C": value}`` for every leaf key of ``cfg``."""
    out = {}
    for key in _iter_keys(cfg):
        node: Any = cfg
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def changed_keys(cfg: Any, base: Any) -> dict[str, Any]:
    """The leaf keys of ``cfg`` whose value differs from ``base`` (or that ``base`` lacks)."""
    missing = object()
    ref = flat_items(base)
    return {k: v for k, v in flat_items(cfg).items() if ref.get(k, missing) != v}


def _has_key(node: Any, key: str) -> bool:
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _get(node: Any, key: str) -> Any:
    for part in key.split("."):
        node = node[part]
    return node


def _set(node: Any, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value


def _iter_keys(node: Any, prefix: str = "") -> Iterator[str]:
    for k, v in node.items():
        full = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _iter_keys(v, full + ".")
        else:
            yield full


def migrate_removed_keys(tree: dict[str, Any]) -> list[str]:
    """Rewrites, in place, the removed keys of a config read from a file (a run's own
    ``config.yaml`` written before they were removed, or an older config file) into the keys
    that replace them; returns one note per key rewritten.

    ``ZERO_SHOT.SELF_TRAIN_START`` (a fraction of ``SOLVER.MAX_ITER`` below 1, an iteration
    from 1 on) becomes ``ZERO_SHOT.SELF_TRAIN_START_FRACTION`` or ``..._START_ITER`` with the
    same meaning. On the command line the removed key stays an error (:data:`REMOVED_KEYS`).
    """
    zero_shot = tree.get("ZERO_SHOT")
    if not isinstance(zero_shot, dict) or "SELF_TRAIN_START" not in zero_shot:
        return []
    value = float(zero_shot.pop("SELF_TRAIN_START"))
    if value < 1:
        zero_shot["SELF_TRAIN_START_FRACTION"], zero_shot["SELF_TRAIN_START_ITER"] = value, -1
        new = f"ZERO_SHOT.SELF_TRAIN_START_FRACTION {value}"
    else:
        from zsseg_bench.config.defaults import _C  # (imports this module: not at the top)

        zero_shot["SELF_TRAIN_START_ITER"] = int(value)
        zero_shot.setdefault("SELF_TRAIN_START_FRACTION", _C.ZERO_SHOT.SELF_TRAIN_START_FRACTION)
        new = f"ZERO_SHOT.SELF_TRAIN_START_ITER {int(value)}"
    return [f"the removed key ZERO_SHOT.SELF_TRAIN_START {value:g} is read as {new} (rename "
            "it in the file)"]


#: Keys that were removed, with the one line that says what replaces them.
REMOVED_KEYS = {
    "ZERO_SHOT.SELF_TRAIN_START": (
        "ZERO_SHOT.SELF_TRAIN_START (a fraction below 1, an iteration above) was split: use "
        "ZERO_SHOT.SELF_TRAIN_START_FRACTION (of SOLVER.MAX_ITER, e.g. 0.5) or "
        "ZERO_SHOT.SELF_TRAIN_START_ITER (an iteration, e.g. 1500)"),
}


def _unknown_key_message(key: str, source: str, valid: set[str]) -> str:
    if key in REMOVED_KEYS:
        return f"{source}: {REMOVED_KEYS[key]}"
    close = difflib.get_close_matches(key, sorted(valid), n=3, cutoff=0.5)
    if not close:  # compare the last component, e.g. a typo in a leaf name
        leaf = key.rsplit(".", 1)[-1]
        close = [v for v in sorted(valid) if difflib.SequenceMatcher(
            None, v.rsplit(".", 1)[-1], leaf).ratio() > 0.75][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (f"unknown config key {key} in {source}{hint} (a method's keys exist only once its "
            "project is installed; see `zsseg-bench train --help`)")


def validate_cfg(cfg: CfgNode) -> None:
    """Checks the values with a fixed set of choices (:mod:`zsseg_bench.config.allowed`, the
    core's and every method's); raises UserError naming the key and its choices."""
    check_allowed_values(cfg)


def get_cfg(methods: bool = True) -> CfgNode:
    """A fresh copy of the defaults, as detectron2's ``get_cfg()``.

    With ``methods`` (the default), every installed method's keys (``MODEL.ZEGCLIP.*``,
    ``MODEL.TWO_STAGE.*``, ``MODEL.ALIGNZEG.*``: the ``zsseg_bench.projects`` entry points) are
    added to the core's (``zsseg_bench/config/defaults.py``), so that the detectron2 idiom
    works for any method's config::

        cfg = get_cfg()
        cfg.merge_from_file("configs/synthetic/alignzeg.yaml")

    Loading the methods imports them (and torch); ``methods=False`` gives the core's keys only.
    """
    from zsseg_bench.config.defaults import _C

    cfg = _C.clone()
    if methods:
        from zsseg_bench.config.projects import add_project_configs

        add_project_configs(cfg)
    return cfg
