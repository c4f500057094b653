"""``scripts/pretrain_toy_backbone.py``: a two-step run writes a backbone that the two-stage
head's ``BACKBONE.WEIGHTS`` loads as is (the "Seed stability" ablation's pretrained start)."""

from __future__ import annotations

import importlib.util
import json

import torch

from tests.cli_helpers import REPO
from zsseg_bench.modeling.backbone import ResNetBackbone

SCRIPT = REPO / "scripts" / "pretrain_toy_backbone.py"


def _script():
    spec = importlib.util.spec_from_file_location("pretrain_toy_backbone", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_steps_write_a_loadable_backbone(tmp_path):
    script = _script()
    torch_threads = torch.get_num_threads()
    try:
        script.main(["--out-dir", str(tmp_path), "--steps", "2", "--batch-size", "4",
                     "--threads", "1"])
    finally:
        torch.set_num_threads(torch_threads)
    figures = json.loads((tmp_path / script.FIGURES_NAME).read_text())
    assert figures["config"]["steps"] == 2 and 0.0 <= figures["heldout_top1"] <= 1.0
    path = tmp_path / script.CKPT_NAME
    saved = torch.load(path, weights_only=True)
    assert not any(k.startswith("fc.") for k in saved)
    backbone = ResNetBackbone(depth=script.DEPTH, width=script.WIDTH, weights=str(path),
                              norm="FrozenBN")
    loaded = backbone.state_dict()
    assert torch.equal(loaded["layer4.1.conv2.weight"], saved["layer4.1.conv2.weight"].float())
    assert torch.equal(loaded["bn1.running_var"], saved["bn1.running_var"].float())
