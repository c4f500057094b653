"""Config fragments: a block's keys mounted below a prefix that the method chooses.

A shared block (backbone, pixel decoder, set criterion) declares its keys once, in an
``add_<block>_config(cfg, prefix, ...)`` that creates them below ``prefix`` (e.g.
``MODEL.TWO_STAGE.BACKBONE``); its builder reads them back given the same prefix, and its errors
name the keys under that prefix. These two helpers walk a dotted prefix.
"""

from __future__ import annotations

from typing import Any

from zsseg_bench.config.config import CfgNode as CN


def node_at(cfg: Any, prefix: str) -> Any:
    """The config node at the dotted ``prefix`` (``KeyError`` naming it if absent)."""
    node = cfg
    for part in prefix.split("."):
        if part not in node:
            raise KeyError(f"config has no node {prefix}")
        node = node[part]
    return node


def mount(cfg: Any, prefix: str) -> tuple[Any, bool]:
    """``(node at prefix, created)``: an empty node created at ``prefix`` (parents must exist)
    unless one is there already (``created`` False; a fragment then leaves it as it is)."""
    parent_prefix, _, name = prefix.rpartition(".")
    parent = node_at(cfg, parent_prefix) if parent_prefix else cfg
    if name in parent:
        return parent[name], False
    setattr(parent, name, CN())
    return parent[name], True
