"""``add_zsseg_config(cfg)``: the suite's and every installed method's keys on a detectron2
``CfgNode`` (as Mask2Former's ``add_maskformer2_config``)."""

from __future__ import annotations

import copy
from typing import Any

from detectron2.config import CfgNode

from zsseg_bench.config import get_cfg, validate_cfg
from zsseg_bench.modeling.build import resolve_device


def _overlay(dst: CfgNode, src: Any) -> None:
    """Sets every key of ``src`` on ``dst``, creating the sub-nodes ``dst`` lacks."""
    for key, value in src.items():
        if isinstance(value, dict):
            if not isinstance(dst.get(key), dict):
                dst[key] = CfgNode()
            _overlay(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def add_zsseg_config(cfg: CfgNode) -> CfgNode:
    """Adds the suite's defaults and every installed method's keys to ``cfg`` (in place).

    Keys detectron2 already has and the suite defines too (``MODEL.PIXEL_MEAN``,
    ``INPUT.FORMAT``, ``SOLVER.*``, ``SEED``, ...) take the suite's defaults, so that a YAML
    config means the same model and recipe in both engines; detectron2's other keys stay (its
    data sampler, writers, ``TEST.EXPECTED_RESULTS``, ...). ``MODEL.DEVICE`` becomes a device
    detectron2 accepts: the suite's ``auto`` resolved now (``cuda`` when available, else
    ``cpu``); :func:`finalize_cfg` resolves an ``auto`` set later by a file or override.

    Returns:
        ``cfg``.
    """
    _overlay(cfg, get_cfg())
    cfg.MODEL.DEVICE = resolve_device(cfg.MODEL.DEVICE)
    return cfg


def finalize_cfg(cfg: CfgNode) -> CfgNode:
    """After the file and overrides are merged: ``MODEL.DEVICE auto`` resolved and the keys
    with fixed choices checked (as ``zsseg-bench`` checks them). Returns ``cfg``."""
    cfg.MODEL.DEVICE = resolve_device(cfg.MODEL.DEVICE)
    validate_cfg(cfg)
    return cfg
