"""``zsseg-bench convert --from zegclip`` on a file laid out as the official code saves it
(mmseg ``{"meta", "state_dict", "optimizer"}``, the official key names, the frozen CLIP with its
positional embedding resized bilinearly, the 18 unused decoder tensors), written here from the
toy model; the suite checkpoint it gives loads into eval, predict, speed and train. Every bad
input is one line. (Equality with the official code itself: tests/oracle.)"""

from __future__ import annotations

import json
import re

import pytest
import torch

from tests.cli_helpers import REPO
from tests.engine.helpers import PREFIX
from zsseg_bench.cli import main

CONFIG = str(REPO / "configs" / "synthetic" / "zegclip.yaml")
DATASETS = ["DATASETS.TRAIN", f"('{PREFIX}_train',)", "DATASETS.TEST", f"('{PREFIX}_val',)",
            "MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", "0"]
#: The official backbone stores the positional embedding resized to its input grid
#: (512 px / 16 = 32 for ViT-B/16); the toy CLIP's is 8 x 8, resized here to 12 x 12.
GRID = 12


def _official_names(head_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The suite head's tensors under the official names (written independently of the
    converter: the names of models/backbone/img_encoder.py and decode_heads/decode_seg.py)."""
    out = {}
    for key, value in head_state.items():
        k = key[len("head."):]
        if k == "prompts.embeddings":
            out["backbone.prompt_embeddings"] = value[:1].clone()
            out["backbone.deep_prompt_embeddings"] = value[1:].clone()
            continue
        k = (k.replace("prompts.proj.", "backbone.prompt_proj.")
             .replace("prompts.norm.", "backbone.prompt_norm.")
             .replace("descriptor.proj.", "decode_head.q_proj.")
             .replace("decoder.layers.", "decode_head.decoder_1.layers.")
             .replace(".cross_attn.", ".multihead_attn.")
             .replace(".ffn.0.", ".linear1.").replace(".ffn.3.", ".linear2."))
        out[k] = value.clone()
    return out


def _write_official(model, path, **edits):
    """An official-layout checkpoint of ``model`` at ``path`` (``edits``: key -> tensor or
    None to delete)."""
    from zsseg_bench.engine.checkpoint import trainable_state_dict

    state = _official_names(trainable_state_dict(model))
    clip = model.clip
    for k, v in clip.model.visual.state_dict().items():
        state[f"backbone.{k}"] = v.clone()
    state["backbone.positional_embedding"] = clip.positional_embedding(GRID, GRID).clone()
    for k, v in clip.model.state_dict().items():
        if not k.startswith("visual.") and k != "logit_scale":
            state[f"text_encoder.{k}"] = v.clone()
    dim = state["decode_head.q_proj.weight"].shape[0]
    for i in range(len(model.head.decoder.layers)):  # registered, never used by the official
        prefix = f"decode_head.decoder_1.layers.{i}."
        state[prefix + "self_attn.in_proj_weight"] = torch.randn(3 * dim, dim)
        state[prefix + "self_attn.in_proj_bias"] = torch.randn(3 * dim)
        state[prefix + "self_attn.out_proj.weight"] = torch.randn(dim, dim)
        state[prefix + "self_attn.out_proj.bias"] = torch.randn(dim)
        state[prefix + "norm1.weight"] = torch.randn(dim)
        state[prefix + "norm1.bias"] = torch.randn(dim)
    state["decode_head.loss_decode.criterion.empty_weight"] = torch.ones(16)
    for k, v in edits.items():
        if v is None:
            del state[k]
        else:
            state[k] = v
    torch.save({"meta": {"iter": 20000, "mmcv_version": "1.4.4", "CLASSES": ("a", "b")},
                "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


@pytest.fixture(scope="module")
def toy_model(toy_root):
    """The toy ZegCLIP with its learned tensors moved off their initialisation."""
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.modeling import build_model

    torch.manual_seed(0)
    model = build_model(setup_cfg(CONFIG, DATASETS))
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def converted(toy_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("convert")
    source = _write_official(toy_model, tmp / "iter_20000.pth")
    assert main(["convert", "--from", "zegclip", str(source), "--output", str(tmp / "toy.pth"),
                 "--config-file", CONFIG, *DATASETS]) == 0
    return tmp / "toy.pth"


def test_the_learned_tensors_arrive_under_the_suites_names(toy_model, converted):
    from zsseg_bench.engine.checkpoint import trainable_state_dict

    data = torch.load(converted, weights_only=True)
    expected = trainable_state_dict(toy_model)
    assert set(data["model"]) == set(expected)  # trainable only: no CLIP, no unused tensors
    for k, v in expected.items():
        assert torch.equal(data["model"][k], v), k
    origin = data["meta"]["converted_from"]
    assert data["meta"]["head"] == "ZegCLIPHead" and data["meta"]["format"] == 1
    assert origin["format"] == "zegclip" and origin["file"] == "iter_20000.pth"
    assert origin["source"] == "ZiqinZhou66/ZegCLIP @ 9ba4bb5" and len(origin["sha256"]) == 64


def test_eval_predict_and_speed_load_the_converted_checkpoint(converted, toy_root,
                                                             tmp_path):
    assert main(["eval", "--config-file", CONFIG, "--weights", str(converted),
                 "--output-dir", str(tmp_path / "eval"), *DATASETS]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["weights"] == str(converted) and "hIoU" in metrics["metrics"]
    image = sorted((toy_root / "synthetic" / "images" / "val").glob("*.jpg"))[0]
    assert main(["predict", "--config-file", CONFIG, "--weights", str(converted), "--input",
                 str(image), "--classes", "background,red circle", "--output",
                 str(tmp_path / "pred"), *DATASETS]) == 0
    assert (tmp_path / "pred" / f"{image.stem}.png").is_file()
    assert main(["speed", "--config-file", CONFIG, "--weights", str(converted), "--iters", "1",
                 "--repeats", "1", "--warmup", "0", "--no-flops", "--output-dir",
                 str(tmp_path / "speed"), *DATASETS]) == 0
    speed = json.loads((tmp_path / "speed" / "speed.json").read_text())
    assert speed["weights"] == str(converted)


def test_train_starts_from_the_converted_weights(converted, tmp_path):
    """MODEL.WEIGHTS: training starts from the converted tensors (learning rate 0: the final
    checkpoint holds them unchanged)."""
    run = tmp_path / "run"
    assert main(["train", "--no-progress", "--config-file", CONFIG, "--output-dir", str(run),
                 "MODEL.WEIGHTS", str(converted), "SOLVER.MAX_ITER", "1",
                 "SOLVER.BASE_LR", "0.0", "SOLVER.IMS_PER_BATCH", "2",
                 "SOLVER.WARMUP_ITERS", "0", *DATASETS]) == 0
    final = torch.load(run / "model_final.pth", weights_only=True)["model"]
    start = torch.load(converted, weights_only=True)["model"]
    assert set(final) == set(start)
    for k in start:
        torch.testing.assert_close(final[k], start[k], rtol=0, atol=0, msg=k)


def _convert_error(capsys, source, *extra, config=CONFIG, output="out.pth"):
    code = main(["convert", "--from", "zegclip", str(source), "--output", str(output),
                 "--config-file", config, *DATASETS, *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("edits, message", [
    ({"decode_head.decoder_1.layers.0.extra.weight": torch.zeros(2)},
     r"unknown keys in the zegclip checkpoint: 1 \(decode_head.decoder_1.layers.0.extra.weight\)"),
    ({"decode_head.q_proj.bias": None}, r"missing keys 1 \(head.descriptor.proj.bias\)"),
    ({"backbone.prompt_embeddings": torch.zeros(1, 4, 128),
      "backbone.deep_prompt_embeddings": torch.zeros(3, 4, 128)},
     r"shape mismatch \(file vs model\) 1 \(head.prompts.embeddings \(4, 4, 128\) vs "
     r"\(4, 10, 128\)\)"),
    ({"backbone.deep_prompt_embeddings": torch.zeros(3, 4, 128)},
     r"backbone.prompt_embeddings \(1, 10, 128\) and backbone.deep_prompt_embeddings "
     r"\(3, 4, 128\) disagree"),
    ({"backbone.ln_post.weight": torch.full((128,), 2.0)},
     r"1 frozen tensor\(s\) of the checkpoint differ from the CLIP weights of the config "
     r"\(MODEL.CLIP.WEIGHTS zsseg_bench://toy_clip/toy_clip.pt\) \(backbone.ln_post.weight: max"),
])
def test_a_file_that_does_not_fit_is_one_line_naming_the_keys(toy_model, tmp_path, capsys,
                                                              edits, message):
    source = _write_official(toy_model, tmp_path / "bad.pth", **edits)
    err = _convert_error(capsys, source, output=tmp_path / "out.pth")
    assert re.search(message, err), err
    assert not (tmp_path / "out.pth").exists()


def test_files_of_other_layouts_and_configs_are_refused(toy_model, converted, tmp_path, capsys):
    d2 = tmp_path / "model_final_d2.pth"
    torch.save({"model": {"backbone.res2.conv1.weight": torch.zeros(1)}, "iteration": 5}, d2)
    err = _convert_error(capsys, d2)
    assert "is not a zegclip checkpoint: --from zegclip reads the tensors under 'state_dict', " \
           "the file's top-level keys are iteration, model" in err
    assert "a zsseg-bench checkpoint already" in _convert_error(capsys, converted)
    source = _write_official(toy_model, tmp_path / "iter.pth")
    err = _convert_error(capsys, source, config=str(REPO / "configs/synthetic/two_stage.yaml"))
    assert "--from zegclip converts weights of ZegCLIPHead, but the config builds" in err
    err = _convert_error(capsys, source, "MODEL.CLIP.POS_EMBED_INTERPOLATION", "bicubic")
    assert "resizes CLIP's positional embedding bilinearly" in err
    err = _convert_error(capsys, source, "MODEL.ZEGCLIP.DECODER.QUERY_SELF_ATTN", "True")
    assert "missing keys" in err and "self_attn" in err


def test_arguments_after_src_and_missing_ones(converted, tmp_path, capsys):
    assert main(["convert", str(tmp_path / "x.pth"), "--from", "zegclip"]) == 2
    assert "missing --output, --config-file" in capsys.readouterr().err
    assert main(["convert", "--from", "nope", str(converted), "--output", "o.pth",
                 "--config-file", CONFIG]) == 2
    assert "--from nope: unknown checkpoint format; known formats: " in capsys.readouterr().err
    assert main(["convert", "--from", "zegclip", str(tmp_path / "missing.pth"), "--output",
                 str(tmp_path / "o.pth"), "--config-file", CONFIG, *DATASETS]) == 2
    assert "official checkpoint not found" in capsys.readouterr().err
