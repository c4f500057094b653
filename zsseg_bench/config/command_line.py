"""Command-line plumbing shared by the commands that take a config (train, eval, speed)."""

from __future__ import annotations

import argparse

from zsseg_bench.config import CfgNode, get_cfg, validate_cfg


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config-file``, ``--output-dir`` and trailing ``KEY VALUE`` overrides (Detectron2)."""
    parser.add_argument("--config-file", required=True, metavar="FILE",
                        help="YAML config (may inherit with _BASE_), e.g. "
                             "configs/synthetic/<method>.yaml")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="run directory (overrides OUTPUT_DIR)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides, e.g. SOLVER.MAX_ITER 100 SEED 1")


def setup_cfg(config_file: str, opts: list[str] | None = None,
              output_dir: str | None = None) -> CfgNode:
    """Defaults + every project's keys + the YAML file + overrides, validated and frozen."""
    cfg = get_cfg()
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts or []))
    if output_dir is not None:
        cfg.OUTPUT_DIR = str(output_dir)
    validate_cfg(cfg)
    cfg.freeze()
    return cfg

