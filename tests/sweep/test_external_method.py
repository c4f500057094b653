"""A method from outside the repository, registered by entry point only, joins the toy sweep.

The plug-in is what a third party's pip package installs: ``<pkg>/__init__.py`` (its config
function and head), ``<pkg>/configs/synthetic/<name>.yaml`` (its toy config) and a
``*.dist-info/entry_points.txt`` in the ``zsseg_bench.projects`` group, here put on
``PYTHONPATH`` for a subprocess instead of ``pip install``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOY_SPEC = REPO / "configs" / "sweeps" / "toy_comparison.yaml"

PLUGIN_INIT = '''
from torch import nn

from zsseg_bench.config.config import CfgNode as CN
from zsseg_bench.modeling import HEAD_REGISTRY


def add_dummy_config(cfg):
    if "DUMMY" not in cfg.MODEL:
        cfg.MODEL.DUMMY = CN()
        cfg.MODEL.DUMMY.SCALE = 1.0


@HEAD_REGISTRY.register()
class DummyHead(nn.Module):
    pass
'''
PLUGIN_TOY_CONFIG = "MODEL:\n  HEAD:\n    NAME: DummyHead\n  DUMMY:\n    SCALE: 2.0\n"


def write_plugin(root: Path) -> Path:
    """The files a pip package ``dummy-method`` would install into site-packages."""
    pkg = root / "dummy_method"
    (pkg / "configs" / "synthetic").mkdir(parents=True)
    (pkg / "__init__.py").write_text(PLUGIN_INIT)
    (pkg / "configs" / "synthetic" / "dummy.yaml").write_text(PLUGIN_TOY_CONFIG)
    info = root / "dummy_method-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dummy-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[zsseg_bench.projects]\ndummy = dummy_method:add_dummy_config\n")
    return root


def dry_run_ids(tmp_path: Path, pythonpath: str | None) -> dict[str, str]:
    """``method -> run id`` of the toy comparison's dry run."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "zsseg_bench", "sweep", str(TOY_SPEC), "--dry-run",
         "--output-dir", str(tmp_path / "sweep")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    ids = re.findall(r"^(\S+)\s+\[[^]]+\]\n\s+method=(\S+)", out.stdout, flags=re.M)
    return {method: run_id for run_id, method in ids}


def test_an_external_method_joins_the_toy_sweep_and_changes_no_id(tmp_path):
    without = dry_run_ids(tmp_path, None)
    with_plugin = dry_run_ids(tmp_path, str(write_plugin(tmp_path / "site")))
    assert {"two_stage", "zegclip"} <= set(without)
    assert set(with_plugin) == set(without) | {"dummy"}
    assert with_plugin["dummy"].startswith("dummy-synthetic-inductive-s0-")
    assert {m: with_plugin[m] for m in without} == without
