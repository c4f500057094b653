"""Official SAN checkpoints -> SANHead weights: every key family mapped, frozen CLIP tensors
compared, anything else a one-line error. The official layout is written here from the suite's
model with the official names (san/model/san.py module names, MendelXu/SAN @ e19262d); the
oracle test (tests/oracle/test_san_equal.py) converts a checkpoint the official code saved."""

from __future__ import annotations

import pytest
import torch

from tests.cli_helpers import REPO
from zsseg_bench.engine.checkpoint import trainable_state_dict
from zsseg_bench.projects.san.convert import (
    convert_san_checkpoint,
    suite_key,
)
from zsseg_bench.utils.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.modeling import build_model

    cfg = setup_cfg(str(REPO / "configs" / "synthetic" / "san.yaml"), ["MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    return build_model(cfg)


def _official(model) -> dict[str, torch.Tensor]:
    """The model's weights under the official names, as the official SAN saves them."""
    first = model.head.first_rec_block
    v = model.clip.model.visual
    out: dict[str, torch.Tensor] = {"criterion.empty_weight": torch.ones(17)}
    renames = {"head.side_adapter.vit.": "side_adapter_network.vit_model.",
               "head.side_adapter.decoder.": "side_adapter_network.mask_decoder.",
               "head.side_adapter.query_embed": "side_adapter_network.query_embed",
               "head.side_adapter.query_pos_embed": "side_adapter_network.query_pos_embed",
               "head.clip_pos_embed": "clip_visual_extractor.positional_embedding",
               "head.bg_embed": "ov_classifier.bg_embed"}
    for key, value in trainable_state_dict(model).items():
        if key.startswith("head.side_adapter.fusion."):
            layer, part, leaf = key.split(".")[3:6]
            out[f"side_adapter_network.fusion_layers.{layer}.input_proj."
                f"{0 if part == 'norm' else 1}.{leaf}"] = value.clone()
            continue
        src = next(s for s in renames if key.startswith(s))
        out[renames[src] + key[len(src):]] = value.clone()
    for name in ("conv1.weight", "class_embedding", "ln_pre.weight", "ln_pre.bias"):
        out[f"clip_visual_extractor.{name}"] = v.state_dict()[name].clone()
    for name, value in v.transformer.resblocks.state_dict().items():
        block, rest = name.split(".", 1)
        prefix = (f"clip_visual_extractor.resblocks.{block}" if int(block) < first
                  else f"clip_rec_head.resblocks.{int(block) - first}")
        out[f"{prefix}.{rest}"] = value.clone()
    for name in ("ln_post.weight", "ln_post.bias", "proj"):
        out[f"clip_rec_head.{name}"] = v.state_dict()[name].clone()
    text = {k: t for k, t in model.clip.model.state_dict().items() if not k.startswith("visual.")}
    text["attn_mask"] = model.clip.model.attn_mask
    out.update({f"ov_classifier.{k}": t.clone() for k, t in text.items()})
    return out


def _save(tmp_path, weights, wrap=True):
    path = tmp_path / "san.pth"
    torch.save({"model": weights} if wrap else weights, path)
    return str(path)


def test_round_trip_of_every_key(model, tmp_path):
    official = _official(model)
    state = convert_san_checkpoint(_save(tmp_path, official), model)
    target = trainable_state_dict(model)
    assert set(state) == set(target)
    assert all(torch.equal(state[k], target[k]) for k in target)
    # a plain state dict (no "model" entry) is read the same way
    assert set(convert_san_checkpoint(_save(tmp_path, official, wrap=False), model)) == set(target)


def test_recognition_blocks_map_to_clip_blocks_after_the_side_network_s():
    assert suite_key("clip_rec_head.resblocks.2.ln_1.weight", 9) == (
        "clip.model.visual.transformer.resblocks.11.ln_1.weight", False)
    assert suite_key("clip_visual_extractor.resblocks.8.mlp.c_fc.bias", 9) == (
        "clip.model.visual.transformer.resblocks.8.mlp.c_fc.bias", False)
    assert suite_key("side_adapter_network.fusion_layers.layer_3.input_proj.1.weight", 9) == (
        "head.side_adapter.fusion.layer_3.proj.weight", True)
    assert suite_key("ov_classifier.bg_embed", 9) == ("head.bg_embed", True)
    assert suite_key("something.else", 9) is None


def test_loaded_weights_give_the_model_s_outputs(model, tmp_path):
    official = _official(model)
    for key in official:
        if key.startswith("side_adapter_network.") or key.endswith("bg_embed"):
            official[key] = official[key] + 0.01
    state = convert_san_checkpoint(_save(tmp_path, official), model)
    before = {k: v.clone() for k, v in trainable_state_dict(model).items()}
    model.load_state_dict(state, strict=False)
    try:
        assert torch.equal(model.head.bg_embed, official["ov_classifier.bg_embed"])
        name = "side_adapter_network.vit_model.blocks.0.attn.qkv.weight"
        assert torch.equal(model.head.side_adapter.vit.blocks[0].attn.qkv.weight, official[name])
    finally:
        model.load_state_dict(before, strict=False)


@pytest.mark.parametrize("change", ["unknown", "missing", "shape", "frozen", "not_tensors"])
def test_bad_checkpoints_are_one_line_errors(model, tmp_path, change):
    official = _official(model)
    if change == "unknown":
        official["side_adapter_network.extra.weight"] = torch.zeros(1)
        match = "unknown key"
    elif change == "missing":
        del official["ov_classifier.bg_embed"]
        match = r"missing keys 1 \(head.bg_embed"
    elif change == "shape":
        official["ov_classifier.bg_embed"] = torch.zeros(1, 7)
        match = r"shape mismatch \(file vs model\) 1 \(head.bg_embed"
    elif change == "frozen":
        official["clip_rec_head.proj"] = official["clip_rec_head.proj"] + 1.0
        match = "frozen CLIP tensor"
    else:
        torch.save({"model": {"a": 1}}, tmp_path / "san.pth")
        with pytest.raises(UserError, match="not a san checkpoint"):
            convert_san_checkpoint(str(tmp_path / "san.pth"), model)
        return
    with pytest.raises(UserError, match=match):
        convert_san_checkpoint(_save(tmp_path, official), model)


def test_missing_file_is_an_error(model, tmp_path):
    with pytest.raises(UserError, match="not found"):
        convert_san_checkpoint(str(tmp_path / "none.pth"), model)


def test_the_cli_converts_a_san_file(model, tmp_path, capsys):
    """``zsseg-bench convert --from san`` (the registry) writes the suite checkpoint; another
    method's config is refused in one line."""
    from zsseg_bench.cli import main

    config = str(REPO / "configs" / "synthetic" / "san.yaml")
    source = _save(tmp_path, _official(model))
    out = tmp_path / "suite.pth"
    assert main(["convert", "--from", "san", source, "--output", str(out), "--config-file",
                 config, "MODEL.DEVICE", "cpu"]) == 0
    saved = torch.load(out, weights_only=True)
    assert saved["meta"]["converted_from"]["format"] == "san"
    target = trainable_state_dict(model)
    assert set(saved["model"]) == set(target)
    assert all(torch.equal(saved["model"][k], target[k]) for k in target)
    capsys.readouterr()
    assert main(["convert", "--from", "san", source, "--output", str(out), "--config-file",
                 str(REPO / "configs" / "synthetic" / "zegclip.yaml")]) == 2
    assert "--from san converts weights of SANHead" in capsys.readouterr().err
