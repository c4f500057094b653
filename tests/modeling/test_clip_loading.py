"""CLIP layer: building from config, weight formats, clear errors, the zsseg_bench:// handler."""

from __future__ import annotations

import os

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from tests.modeling.clip_testing import TINY, TINY_OTHER, register_tiny_configs
from zsseg_bench.config import get_cfg
from zsseg_bench.modeling.clip import MODEL_ZOO_DIR, build_clip, build_open_clip
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import PathManager


@pytest.fixture(scope="module")
def reference():
    """A tiny open_clip model with random weights, and a batch to compare outputs on."""
    register_tiny_configs()
    torch.manual_seed(1)
    model = open_clip.create_model(TINY).eval()
    return model, torch.randn(2, 3, 32, 32)


def _cfg(weights: str, name: str = TINY, random_init: bool = False):
    cfg = get_cfg()
    cfg.MODEL.CLIP.NAME = name
    cfg.MODEL.CLIP.WEIGHTS = weights
    cfg.MODEL.CLIP.RANDOM_INIT = random_init
    return cfg


def _same_output(clip, reference):
    model, x = reference
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model.encode_image(x), dim=-1)
        ref_t = torch.nn.functional.normalize(
            model.encode_text(open_clip.get_tokenizer(TINY)(["a photo of a cat."])), dim=-1)
        torch.testing.assert_close(clip.encode_image(x), ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(clip.embed_texts(["cat"], "single"), ref_t, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt", ["pt", "bin_wrapped", "safetensors"])
def test_open_clip_checkpoint_formats(tmp_path, reference, fmt):
    sd = reference[0].state_dict()
    if fmt == "pt":
        path = tmp_path / "model.pt"
        torch.save(sd, path)
    elif fmt == "bin_wrapped":  # training checkpoint: {"state_dict": ...} with a DDP prefix
        path = tmp_path / "open_clip_pytorch_model.bin"
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    else:
        path = tmp_path / "open_clip_model.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    clip = build_clip(_cfg(str(path)))
    assert not any(p.requires_grad for p in clip.parameters())  # frozen by default
    _same_output(clip, reference)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_openai_torchscript_archive(tmp_path, reference):
    """An OpenAI-style TorchScript archive (weights + int attributes) loads, with QuickGELU."""
    from zsseg_bench.modeling.clip.loading import read_checkpoint

    model, _ = reference
    path = tmp_path / "ViT-tiny.pt"
    torch.jit.script(_KeyHolder(model.state_dict())).save(str(path))
    sd, fmt = read_checkpoint(str(path))
    assert fmt == "openai-torchscript" and "input_resolution" not in sd
    clip = build_clip(_cfg(str(path)))
    assert any(isinstance(m, open_clip.model.QuickGELU) for m in clip.modules())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(clip.model.state_dict()[k], v)


class _KeyHolder(torch.nn.Module):
    """A scriptable module whose state dict has exactly the given (dotted) keys."""

    def __init__(self, sd):
        super().__init__()
        for k, v in sd.items():
            parts = k.split(".")
            mod = self
            for p in parts[:-1]:
                if not hasattr(mod, p):
                    mod.add_module(p, torch.nn.Module())
                mod = getattr(mod, p)
            mod.register_buffer(parts[-1], v.clone())
        self.register_buffer("input_resolution", torch.tensor(32))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t


def test_missing_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="not found.*MODEL.CLIP.WEIGHTS"):
        build_clip(_cfg(str(tmp_path / "nope.pt")))


def test_empty_weights_without_random_init_is_user_error():
    with pytest.raises(UserError, match="RANDOM_INIT"):
        build_clip(_cfg(""))


def test_mismatched_file_names_keys_and_source(tmp_path, reference):
    register_tiny_configs()
    other = open_clip.create_model(TINY_OTHER)
    path = tmp_path / "other.pt"
    torch.save(other.state_dict(), path)
    with pytest.raises(UserError, match=r"shape mismatch.*visual\.") as e:
        build_clip(_cfg(str(path)))
    assert "MODEL.CLIP.NAME" in str(e.value)
    sd = reference[0].state_dict()
    sd.pop("visual.proj")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, path)
    with pytest.raises(UserError, match=r"missing keys 1 \(visual\.proj\).*unexpected keys"):
        build_clip(_cfg(str(path)))
    with pytest.raises(UserError, match="openaipublic.*ViT-B-16.pt"):
        build_open_clip("ViT-B-16", str(path), False, False)


def test_garbage_file_and_unknown_name(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read CLIP weights"):
        build_clip(_cfg(str(path)))
    with pytest.raises(UserError, match="unknown CLIP architecture.*ViT-B-16"):
        build_clip(_cfg("", name="ViT-B-61", random_init=True))


def test_random_init_only_when_asked():
    clip = build_clip(_cfg("", random_init=True))
    assert clip.embed_dim == 32 and clip.width == 64 and clip.num_layers == 3
    assert clip.patch_size == 8 and clip.grid_size == (4, 4)
    assert len(clip.image_mean) == 3 and len(clip.image_std) == 3


def test_package_path_handler():
    local = PathManager.get_local_path("zsseg_bench://toy_clip/ToyCLIP-ViT-P8.json")
    assert local == os.path.join(MODEL_ZOO_DIR, "toy_clip", "ToyCLIP-ViT-P8.json")
    assert PathManager.exists("zsseg_bench://toy_clip/ToyCLIP-ViT-P8.json")
    assert "ToyCLIP-ViT-P8.json" in PathManager.ls("zsseg_bench://toy_clip")
    with PathManager.open("zsseg_bench://toy_clip/ToyCLIP-ViT-P8.json") as f:
        assert "vision_cfg" in f.read()
    assert "ToyCLIP-ViT-P8" in open_clip.list_models()


def test_open_clip_random_init_warning_is_silenced(caplog):
    """The suite creates every CLIP at random and loads its own weights after: open_clip's
    "No pretrained weights loaded ... initialized randomly" must not reach the log."""
    import logging

    from zsseg_bench.modeling.clip.loading import create_open_clip_model

    register_tiny_configs()
    with caplog.at_level(logging.WARNING):
        create_open_clip_model(TINY)
        logging.getLogger().warning("another warning")
    messages = [r.getMessage() for r in caplog.records]
    assert "another warning" in messages
    assert not any(m.startswith("No pretrained weights loaded") for m in messages)
