"""CLIP layer: dense features at any size, positional-embedding interpolation, deep prompts."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from tests.modeling.clip_testing import tiny_clip
from zsseg_bench.modeling.clip import CLIPModel, build_open_clip


@pytest.fixture(scope="module")
def vit_b16():
    torch.manual_seed(0)
    model = build_open_clip("ViT-B-16", "", True, False)
    return CLIPModel(model, open_clip.get_tokenizer("ViT-B-16"), name="ViT-B-16")


def test_vit_b16_dense_512_and_cls_at_224(vit_b16):
    torch.manual_seed(1)
    with torch.no_grad():
        x = torch.randn(1, 3, 224, 224)
        ref = F.normalize(vit_b16.model.encode_image(x), dim=-1)
        torch.testing.assert_close(vit_b16.encode_dense(x).cls_embedding, ref, atol=1e-5, rtol=0)
        out = vit_b16.encode_dense(torch.randn(1, 3, 512, 512), layers=[5])
    assert vit_b16.grid_size == (14, 14) and vit_b16.embed_dim == 512 and vit_b16.width == 768
    assert out.patch_embeddings.shape == (1, 512, 32, 32)
    assert out.patch_tokens.shape == (1, 1024, 768)
    assert out.intermediate[5].shape == (1, 1025, 768)
    torch.testing.assert_close(out.patch_embeddings.norm(dim=1), torch.ones(1, 32, 32))


def test_avg_pool_model_matches_open_clip_and_patch_embeddings():
    clip = tiny_clip()
    clip.visual.pool_type = "avg"  # the toy CLIP pools by mean; check that path too
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = clip.encode_dense(x)
        ref = F.normalize(clip.model.encode_image(x), dim=-1)
        torch.testing.assert_close(out.cls_embedding, ref, atol=1e-5, rtol=0)
        # Mean pooling: the image embedding is the (normalised) mean of unnormalised patch ones.
        mean = F.normalize((out.patch_tokens @ clip.visual.proj).mean(1), dim=-1)
        torch.testing.assert_close(out.cls_embedding, mean, atol=1e-5, rtol=0)


def test_positional_embedding_interpolation_and_cache():
    clip = tiny_clip()
    pos = clip.visual.positional_embedding
    assert clip.positional_embedding(4, 4) is pos  # pretrained grid: unchanged
    p = clip.positional_embedding(6, 10)
    assert p.shape == (1 + 60, clip.width)
    torch.testing.assert_close(p[0], pos[0])
    ref = F.interpolate(pos[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2), size=(6, 10),
                        mode="bicubic", align_corners=False)
    torch.testing.assert_close(p[1:], ref.permute(0, 2, 3, 1).reshape(60, -1))
    assert clip.positional_embedding(6, 10) is p  # cached per grid size
    with torch.no_grad():
        pos.add_(1.0)  # new weights invalidate the cache
    p2 = clip.positional_embedding(6, 10)
    torch.testing.assert_close(p2, p + 1.0)
    # A smooth field is preserved: a plane stays (nearly) a plane in the interior.
    with torch.no_grad():
        yy, xx = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
        pos[1:] = (xx + 2 * yy).reshape(16, 1).expand(16, clip.width)
    g = clip.positional_embedding(8, 8)[1:, 0].reshape(8, 8)
    assert torch.all(g[2:6, 3] - g[2:6, 2] > 0) and torch.all(g[3, 2:6] - g[2, 2:6] > 0)
    out = clip.encode_dense(torch.randn(1, 3, 48, 80))
    assert out.patch_embeddings.shape == (1, 32, 6, 10)


def test_bad_sizes_rejected():
    clip = tiny_clip()
    with pytest.raises(ValueError, match="multiple of the patch size"):
        clip.encode_dense(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="deep_prompts"):
        clip.encode_dense(torch.randn(1, 3, 32, 32), deep_prompts=torch.zeros(3, 2, 7))


def test_deep_prompts_change_output_and_get_gradients():
    clip = tiny_clip()
    x = torch.randn(2, 3, 32, 32)
    base = clip.encode_dense(x)
    prompts = torch.nn.Parameter(0.5 * torch.randn(clip.num_layers, 4, clip.width))
    out = clip.encode_dense(x, deep_prompts=prompts, layers=[0, 2])
    assert out.patch_embeddings.shape == base.patch_embeddings.shape
    assert out.intermediate[0].shape == (2, 17, clip.width)  # prompts stripped
    assert (out.patch_embeddings - base.patch_embeddings).abs().max() > 1e-3
    assert (out.cls_embedding - base.cls_embedding).abs().max() > 1e-4
    loss = out.patch_embeddings.sum() + out.cls_embedding.sum()
    loss.backward()
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    # Every layer's prompts matter (they are replaced at every layer, not carried).
    assert all(prompts.grad[i].abs().sum() > 0 for i in range(clip.num_layers - 1))
    assert all(p.grad is None for p in clip.parameters())
    assert not any(p.requires_grad for p in clip.parameters())


def test_deep_prompts_replaced_per_layer_and_batch_form():
    clip = tiny_clip()
    x = torch.randn(2, 3, 32, 32)
    prompts = torch.randn(clip.num_layers, 3, clip.width)
    with torch.no_grad():
        a = clip.encode_dense(x, deep_prompts=prompts)
        b = clip.encode_dense(x, deep_prompts=prompts.unsqueeze(0).expand(2, -1, -1, -1))
        torch.testing.assert_close(a.patch_embeddings, b.patch_embeddings)
        # Manual reference: insert after [CLS], run block, replace, ..., drop prompts.
        v = clip.visual
        z = v.conv1(x).flatten(2).transpose(1, 2)
        pos = v.positional_embedding
        z = torch.cat([(v.class_embedding + pos[0]).expand(2, 1, -1), z + pos[1:]], 1)
        z = v.ln_pre(z)
        for i, blk in enumerate(v.transformer.resblocks):
            z = torch.cat([z[:, :1], prompts[i].expand(2, -1, -1), z[:, 1 + (3 if i else 0):]], 1)
            z = blk(z)
        z = torch.cat([z[:, :1], z[:, 4:]], 1)
        ref = F.normalize(v.ln_post(z[:, 1:]) @ v.proj, dim=-1)
        torch.testing.assert_close(a.patch_embeddings.flatten(2).transpose(1, 2), ref,
                                   atol=1e-5, rtol=0)
        # Prompts for the first layers only are carried on afterwards (VPT-shallow is L=1).
        c = clip.encode_dense(x, deep_prompts=prompts[:1])
        assert (c.patch_embeddings - a.patch_embeddings).abs().max() > 1e-4
