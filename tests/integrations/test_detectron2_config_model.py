"""The suite's configs in a detectron2 ``CfgNode`` and its model from detectron2's
``build_model``: the same YAML gives the same keys and the same model in both engines, for
every toy config and every installed method."""

from pathlib import Path

import pytest

from tests.integrations.helpers import TOY_CONFIGS, require_detectron2

require_detectron2()

from detectron2.config import get_cfg as d2_get_cfg  # noqa: E402
from detectron2.modeling import build_model as d2_build_model  # noqa: E402

from zsseg_bench.config.command_line import setup_cfg  # noqa: E402
from zsseg_bench.config.projects import load_projects  # noqa: E402
from zsseg_bench.engine.rng import seed_all  # noqa: E402
from zsseg_bench.integrations.detectron2 import add_zsseg_config, finalize_cfg  # noqa: E402
from zsseg_bench.modeling import HEAD_REGISTRY, build_model  # noqa: E402
from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor  # noqa: E402

CPU = ["MODEL.DEVICE", "cpu"]


def d2_cfg(config: Path):
    cfg = add_zsseg_config(d2_get_cfg())
    cfg.merge_from_file(str(config))
    cfg.merge_from_list(CPU)
    return finalize_cfg(cfg)


def _keys(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _value(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return list(node) if isinstance(node, tuple) else node


def test_every_installed_method_has_a_toy_config():
    heads = {setup_cfg(str(config)).MODEL.HEAD.NAME for config in TOY_CONFIGS}
    for project in load_projects():
        own = {name for name, cls in HEAD_REGISTRY
               if cls.__module__.startswith(f"zsseg_bench.projects.{project}.")}
        assert own & heads, f"no configs/synthetic/*.yaml builds a head of project {project}"


@pytest.mark.parametrize("config", TOY_CONFIGS, ids=lambda p: p.stem)
def test_same_keys_and_values_in_both_engines(config):
    ours = setup_cfg(str(config), CPU)
    theirs = d2_cfg(config)
    for key in _keys(ours):
        assert _value(theirs, key) == _value(ours, key), key
    assert "VERSION" in theirs and "ROI_HEADS" in theirs.MODEL  # detectron2's keys stay


@pytest.mark.parametrize("config", TOY_CONFIGS, ids=lambda p: p.stem)
def test_detectron2_build_model_builds_the_same_model(config):
    cfg = d2_cfg(config)
    seed_all(int(cfg.SEED))
    model = d2_build_model(cfg)
    assert isinstance(model, ZeroShotSegmentor)
    assert type(model.head) is HEAD_REGISTRY.get(cfg.MODEL.HEAD.NAME)
    ours_cfg = setup_cfg(str(config), CPU)
    seed_all(int(ours_cfg.SEED))
    reference = build_model(ours_cfg).state_dict()
    state = model.state_dict()
    assert state.keys() == reference.keys()
    assert all(state[k].equal(reference[k]) for k in state)
