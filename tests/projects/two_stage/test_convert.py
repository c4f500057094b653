"""The zsseg checkpoint converter: official names -> the head's, strict about what it gets.
(Outputs equal to the official code's after conversion: tests/oracle/test_zsseg_equal.py.)"""

from __future__ import annotations

import re

import pytest
import torch

from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor
from zsseg_bench.projects.two_stage.convert import converted_state
from zsseg_bench.projects.two_stage.head import TwoStageHead
from zsseg_bench.utils.errors import UserError

from .conftest import tiny_cfg


def _model(clip) -> ZeroShotSegmentor:
    cfg = tiny_cfg()
    b = cfg.MODEL.TWO_STAGE.BACKBONE
    b.NAME, b.DEPTH, b.NORM = "detectron2", 50, "FrozenBN"  # zsseg's layout (R-50c: faster)
    torch.manual_seed(0)
    return ZeroShotSegmentor(head=TwoStageHead(cfg, clip), clip=clip, train_dataset=None,
                             test_dataset=None, setting="inductive", templates="single",
                             pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3, size_divisibility=32)


def _official_name(key: str) -> str:
    """The name zsseg.baseline's ZeroShotMaskFormer gives the suite's tensor ``key`` (written
    from the official modules, independently of the converter's rules)."""
    key = key.removeprefix("head.")
    m = re.match(r"pixel_decoder\.(lateral|output)\.res(\d)\.(\d)\.(.+)", key)
    if m:
        part, level, idx, rest = m.groups()
        name = f"{'adapter' if part == 'lateral' else 'layer'}_{int(level) - 1}"
        return f"sem_seg_head.pixel_decoder.{name}.{'norm.' if idx == '1' else ''}{rest}"
    layer = {"self.body": "self_attn", "self.norm": "norm1", "cross.body": "multihead_attn",
             "cross.norm": "norm2", "ffn.body.0": "linear1", "ffn.body.3": "linear2",
             "ffn.norm": "norm3"}
    m = re.match(r"decoder\.layers\.(\d+)\.(\w+\.\w+(?:\.\d)?)\.(.+)", key)
    if m and m.group(2) in layer:
        return (f"sem_seg_head.predictor.transformer.decoder.layers.{m.group(1)}."
                f"{layer[m.group(2)]}.{m.group(3)}")
    predictor = "sem_seg_head.predictor."
    fixed = {"decoder.query_pos.weight": predictor + "query_embed.weight",
             "decoder.decoder_norm.weight": predictor + "transformer.decoder.norm.weight",
             "decoder.decoder_norm.bias": predictor + "transformer.decoder.norm.bias",
             "void_embedding.weight": "clip_adapter.non_object_embedding",
             "decoder.input_proj.0.weight": predictor + "input_proj.weight",
             "decoder.input_proj.0.bias": predictor + "input_proj.bias"}
    if key in fixed:
        return fixed[key]
    if key.startswith(("decoder.class_embed.", "decoder.mask_embed.")):
        return "sem_seg_head.predictor." + key.removeprefix("decoder.")
    if key.startswith("pixel_decoder.mask_features."):
        return "sem_seg_head." + key
    assert key.startswith("backbone."), key
    return key


def _official(model: ZeroShotSegmentor) -> dict:
    """An official checkpoint of ``model``'s weights: every tensor a distinct random value."""
    g = torch.Generator().manual_seed(1)
    weights = {_official_name(k): torch.randn(v.shape, generator=g)
               for k, v in model.state_dict().items() if not k.startswith("clip.")}
    weights.update({f"clip_adapter.clip_model.{k}": v.clone()
                    for k, v in model.clip.model.state_dict().items()})
    weights.update({"clip_adapter.pixel_mean": torch.ones(1, 3, 1, 1),
                    "clip_adapter.pixel_std": torch.ones(1, 3, 1, 1),
                    "criterion.empty_weight": torch.ones(4)})
    return {"model": weights, "iteration": 0}


def test_every_official_tensor_lands_in_the_head(clip):
    model = _model(clip)
    official = _official(model)
    state = converted_state(official, model)
    assert set(state) == {k for k in model.state_dict() if k.startswith("head.")}
    for key, value in state.items():
        assert torch.equal(value, official["model"][_official_name(key)]), key
    model.load_state_dict(state, strict=False)


def test_unknown_missing_and_misshapen_keys_are_one_line_errors(clip):
    model = _model(clip)
    official = _official(model)
    extra = {"model": {**official["model"], "sem_seg_head.predictor.aux_embed.weight":
                       torch.zeros(1, 32)}}
    with pytest.raises(UserError, match=r"unknown keys .* 1 \(sem_seg_head\.predictor\.aux"):
        converted_state(extra, model)
    separate = {"model": {**official["model"], "_region_clip_adapter.non_object_embedding":
                          torch.zeros(1, 32)}}
    with pytest.raises(UserError, match="separate CLIP-crop adapter with templates"):
        converted_state(separate, model)
    learned = {"model": {**official["model"], "clip_adapter.prompt_learner.prefix_prompt":
                         torch.zeros(16, 32)}}
    with pytest.raises(UserError, match="PROMPT_LEARNER.ENABLED True"):
        converted_state(learned, model)
    missing = {"model": {k: v for k, v in official["model"].items()
                         if k != "sem_seg_head.pixel_decoder.layer_4.norm.bias"}}
    with pytest.raises(UserError, match=r"missing keys 1 \(head\.pixel_decoder\.output\.res5\.1"):
        converted_state(missing, model)
    wrong = {"model": {**official["model"], "clip_adapter.non_object_embedding":
                       torch.zeros(1, 7)}}
    with pytest.raises(UserError, match=r"shape mismatch .*void_embedding\.weight \(1, 7\)"):
        converted_state(wrong, model)
    other_clip = {"model": {**official["model"], "clip_adapter.clip_model.logit_scale":
                            torch.tensor(1.0)}}
    with pytest.raises(UserError, match="MODEL.CLIP.WEIGHTS .*logit_scale"):
        converted_state(other_clip, model)
    with pytest.raises(UserError, match="not a zsseg checkpoint: --from zsseg reads .* 'model'"):
        converted_state({"state_dict": {}}, model)
    with pytest.raises(UserError, match="holds a list, not a checkpoint dict"):
        converted_state(["not", "a", "dict"], model)


def test_the_cli_converts_a_zsseg_file_that_eval_then_loads(toy_root, tmp_path):
    """``zsseg-bench convert --from zsseg`` (the registry) on a detectron2-layout file of the
    toy model (zsseg's R-50c layout), then ``eval --weights`` on the result."""
    from tests.cli_helpers import REPO
    from tests.engine.helpers import PREFIX
    from zsseg_bench.cli import main
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.modeling import build_model

    config = str(REPO / "configs" / "synthetic" / "two_stage.yaml")
    opts = ["DATASETS.TRAIN", f"('{PREFIX}_train',)", "DATASETS.TEST", f"('{PREFIX}_val',)",
            "MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", "0",
            "MODEL.TWO_STAGE.BACKBONE.NAME", "detectron2", "MODEL.TWO_STAGE.BACKBONE.NORM",
            "FrozenBN", "MODEL.TWO_STAGE.BACKBONE.DEPTH", "50"]
    torch.manual_seed(0)
    model = build_model(setup_cfg(config, opts))
    official = _official(model)
    torch.save(official, tmp_path / "model_final.pth")
    out = tmp_path / "suite.pth"
    assert main(["convert", "--from", "zsseg", str(tmp_path / "model_final.pth"), "--output",
                 str(out), "--config-file", config, *opts]) == 0
    saved = torch.load(out, weights_only=True)
    assert saved["meta"]["converted_from"]["format"] == "zsseg"
    for key, value in saved["model"].items():
        assert torch.equal(value, official["model"][_official_name(key)]), key
    assert main(["eval", "--config-file", config, "--weights", str(out),
                 "--output-dir", str(tmp_path / "eval"), *opts]) == 0
