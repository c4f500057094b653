"""CLIP-layer options of ZegCLIP's image encoder: doubled [CLS] embedding, bilinear positional
interpolation, a norm before ``ln_post``; the defaults stay plain CLIP."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.modeling.clip_testing import TINY, tiny_clip
from zsseg_bench.config import get_cfg
from zsseg_bench.modeling.clip import CLIPModel, build_clip
from zsseg_bench.utils.errors import UserError


def _variant(clip: CLIPModel, **options) -> CLIPModel:
    """The same open_clip weights under other CLIP-layer options."""
    return CLIPModel(clip.model, clip.tokenizer, name=clip.name, **options)


def _input_tokens(clip: CLIPModel, images: torch.Tensor) -> torch.Tensor:
    """The token sequence entering ``ln_pre`` (patch tokens + positions, [CLS] first)."""
    seen = []
    hook = clip.visual.ln_pre.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    try:
        with torch.no_grad():
            clip.encode_dense(images)
    finally:
        hook.remove()
    return seen[0]


def test_cls_token_is_plain_by_default_and_doubled_on_request():
    clip = tiny_clip()
    images = torch.randn(2, 3, 32, 32)
    cls_emb = clip.visual.class_embedding
    pos0 = clip.visual.positional_embedding[0]
    plain = _input_tokens(clip, images)
    assert not clip.double_cls_embedding
    assert torch.equal(plain[:, 0], (cls_emb + pos0).expand(2, -1))
    doubled = _input_tokens(_variant(clip, double_cls_embedding=True), images)
    torch.testing.assert_close(doubled[:, 0], (2 * cls_emb + pos0).expand(2, -1))
    assert not torch.allclose(doubled[:, 0], plain[:, 0])
    assert torch.equal(doubled[:, 1:], plain[:, 1:])  # patch tokens untouched


def test_default_encoder_is_open_clips_and_the_doubled_cls_changes_the_pooled_embedding():
    clip = tiny_clip()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = F.normalize(clip.model.encode_image(x), dim=-1)
        plain = clip.encode_dense(x).cls_embedding
        doubled = _variant(clip, double_cls_embedding=True).encode_dense(x).cls_embedding
    torch.testing.assert_close(plain, ref, atol=1e-6, rtol=0)
    assert (doubled - ref).abs().max() > 1e-3


def test_bilinear_positional_interpolation():
    clip = tiny_clip()
    pos = clip.visual.positional_embedding
    grid = pos[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    out = {}
    for mode in ("bicubic", "bilinear"):
        p = _variant(clip, pos_interpolation=mode).positional_embedding(6, 10)
        ref = F.interpolate(grid, size=(6, 10), mode=mode, align_corners=False)
        torch.testing.assert_close(p[1:], ref.permute(0, 2, 3, 1).reshape(60, -1))
        torch.testing.assert_close(p[0], pos[0])
        out[mode] = p
    assert clip.pos_interpolation == "bicubic"
    assert torch.equal(clip.positional_embedding(6, 10), out["bicubic"])
    assert not torch.allclose(out["bicubic"], out["bilinear"])
    with pytest.raises(UserError, match="POS_EMBED_INTERPOLATION"):
        _variant(clip, pos_interpolation="nearest")


def test_final_norm_runs_between_the_last_block_and_ln_post():
    clip = tiny_clip()
    x = torch.randn(1, 3, 32, 32)
    norm = nn.LayerNorm(clip.width)
    with torch.no_grad():
        norm.weight.fill_(0.0)
        norm.bias.fill_(2.0)
        out = clip.encode_dense(x, final_norm=norm)
        plain = clip.encode_dense(x)
    const = clip.visual.ln_post(torch.full((clip.width,), 2.0))
    torch.testing.assert_close(out.patch_tokens, const.expand_as(out.patch_tokens))
    assert not torch.allclose(plain.patch_tokens, out.patch_tokens)


def test_build_clip_reads_the_options():
    cfg = get_cfg()
    cfg.MODEL.CLIP.NAME = TINY
    cfg.MODEL.CLIP.RANDOM_INIT = True
    tiny_clip()  # registers the tiny architecture
    plain = build_clip(cfg)
    assert (plain.pos_interpolation, plain.double_cls_embedding) == ("bicubic", False)
    cfg.MODEL.CLIP.POS_EMBED_INTERPOLATION = "bilinear"
    cfg.MODEL.CLIP.DOUBLE_CLS_EMBEDDING = True
    zeg = build_clip(cfg)
    assert (zeg.pos_interpolation, zeg.double_cls_embedding) == ("bilinear", True)
