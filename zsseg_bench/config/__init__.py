"""Config system: fvcore ``CfgNode`` with ``_BASE_`` inheritance and strict keys."""

from zsseg_bench.config.config import CfgNode, get_cfg, validate_cfg
from zsseg_bench.config.configurable import configurable
from zsseg_bench.config.setting import Setting

__all__ = ["CfgNode", "Setting", "configurable", "get_cfg", "validate_cfg"]
