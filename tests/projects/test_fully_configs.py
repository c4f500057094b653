"""The fully supervised configs (ZERO_SHOT.SETTING fully) of every method: each is its inductive
config with the setting and the setting-dependent keys its comment names changed, nothing else;
the VOC ones build with random weights and train on every class as a seen class."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zsseg_bench.config import get_cfg
from zsseg_bench.config.command_line import setup_cfg
from zsseg_bench.config.projects import add_project_configs
from zsseg_bench.modeling import build_model
from zsseg_bench.speed.request import random_init_overrides

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER = {"voc": "20k", "coco_stuff": "80k", "pcontext": "40k"}

#: (fully config, inductive config) of every method on every dataset, paths under configs/.
PAIRS = [(f"{d}/{m}_vitb16_512x512_{it}_fully.yaml", f"{d}/{m}_vitb16_512x512_{it}_inductive.yaml")
         for m in ("zegclip", "alignzeg") for d, it in PAPER.items()]
PAIRS += [(f"{d}/two_stage_fully.yaml", f"{d}/two_stage.yaml") for d in PAPER]
PAIRS += [(f"synthetic/fully/{m}.yaml", f"synthetic/{m}.yaml")
          for m in ("two_stage", "zegclip", "alignzeg")]

#: Keys besides ZERO_SHOT.SETTING a method's fully configs change (the configs say why).
SETTING_KEYS = {
    "TwoStageHead": {},
    "ZegCLIPHead": {"MODEL.ZEGCLIP.SEEN_SCORE_CALIBRATION": 0.0},
    "AlignZegHead": {"MODEL.ALIGNZEG.PBC.ENABLED": False, "MODEL.ALIGNZEG.PBC.TRAIN": False},
}


def _flat(node, prefix=""):  # noqa: ANN001, ANN202
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_method_has_a_fully_config_per_dataset():
    fully = {str(p.relative_to(CONFIGS)) for p in CONFIGS.glob("**/*.yaml")
             if "fully" in p.name or p.parent.name == "fully"}
    assert fully == {f for f, _ in PAIRS} | {"sweeps/toy_fully.yaml"}


@pytest.mark.parametrize("fully,inductive", PAIRS, ids=[f for f, _ in PAIRS])
def test_fully_config_is_the_inductive_one_in_the_fully_setting(fully, inductive):
    cfg, base = (_flat(setup_cfg(str(CONFIGS / p))) for p in (fully, inductive))
    assert (cfg["ZERO_SHOT.SETTING"], base["ZERO_SHOT.SETTING"]) == ("fully", "inductive")
    changed = {k: v for k, v in cfg.items() if v != base[k]}
    assert changed == {"ZERO_SHOT.SETTING": "fully", **SETTING_KEYS[cfg["MODEL.HEAD.NAME"]]}


@pytest.mark.parametrize("method", ["two_stage_fully", "zegclip_vitb16_512x512_20k_fully",
                                    "alignzeg_vitb16_512x512_20k_fully"])
def test_voc_fully_config_builds_with_random_weights(method, one_thread):
    opts = random_init_overrides(add_project_configs(get_cfg()))
    cfg = setup_cfg(str(CONFIGS / "voc" / f"{method}.yaml"), opts + ["MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    model = build_model(cfg)
    vocab = model.vocabulary(cfg.DATASETS.TRAIN[0], trainable_only=True)
    assert len(vocab) == 20 and bool(vocab.is_seen.all())  # every VOC class, all seen
