"""The region-oracle tool: the toy CLIP on ground-truth crops, stretched or squared boxes."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import REPO

pytestmark = pytest.mark.usefixtures("one_thread")


def test_square_boxes_let_the_toy_clip_see_bars(tmp_path):
    from zsseg_bench.projects.two_stage.tools.region_oracle import main

    out = tmp_path / "oracle.json"
    assert main(["--config-file", str(REPO / "configs/synthetic/two_stage.yaml"),
                 "--holdout-root", str(tmp_path / "holdout"), "--holdout-images", "60",
                 "--square-box", "false", "true", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["dataset"] == "synthetic_holdout_val"
    stretched = record["results"]["crop=masked,square_box=False"]
    squared = record["results"]["crop=masked,square_box=True"]
    assert stretched["regions"] == squared["regions"] > 100
    bars = [c for c in squared["per_class"] if c.endswith(" bar")]
    assert sum(squared["class_regions"][c] for c in bars) >= 8
    # A 3:1 bar stretched to the square crop looks like a square or a circle to the toy CLIP;
    # kept at its aspect ratio it is recognised.
    def bar_accuracy(result: dict) -> float:
        n = {c: result["class_regions"][c] for c in bars}
        return sum(result["per_class"][c] * n[c] for c in bars) / sum(n.values())

    assert bar_accuracy(stretched) < 40
    assert bar_accuracy(squared) > 90
    assert squared["accuracy"] > stretched["accuracy"]
    others = [c for c in squared["per_class"] if c not in bars]
    assert min(squared["per_class"][c] for c in others) > 50
