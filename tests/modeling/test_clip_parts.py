"""The CLIP tower run in parts (``embed_tokens`` / ``run_blocks`` / ``project_tokens``), with
extra tokens and an additive attention mask, and a replacement positional table: the capability
SAN's recognition head is built on. Unused, every output is the plain CLIP forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.modeling.clip_testing import tiny_clip


@pytest.fixture(scope="module")
def clip():
    return tiny_clip()


def _images(seed: int = 0, size: tuple[int, int] = (32, 48), batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *size, generator=g)


def test_the_parts_compose_to_encode_dense(clip):
    images = _images()
    dense = clip.encode_dense(images, layers=[0])
    tokens, (h, w) = clip.embed_tokens(images)
    assert tokens.shape == (2, 1 + h * w, clip.width) and (h, w) == (4, 6)
    x, kept = clip.run_blocks(tokens, 0, 1, keep=[0])
    torch.testing.assert_close(kept[0], dense.intermediate[0], rtol=0, atol=0)
    x, _ = clip.run_blocks(x, start=1)
    patches = F.normalize(clip.project_tokens(x[:, 1:]), dim=-1)
    torch.testing.assert_close(patches.transpose(1, 2).reshape(2, -1, h, w),
                               dense.patch_embeddings, rtol=1e-6, atol=1e-6)


def test_a_zero_mask_changes_nothing(clip):
    tokens, _ = clip.embed_tokens(_images())
    plain, _ = clip.run_blocks(tokens)
    n = tokens.shape[1]
    for mask in (torch.zeros(n, n), torch.zeros(2 * clip.num_heads, n, n)):
        masked, _ = clip.run_blocks(tokens, attn_mask=mask)
        torch.testing.assert_close(masked, plain, rtol=1e-5, atol=1e-5)


def _with_queries(clip, tokens: torch.Tensor, num_queries: int, patch_bias: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Prepends ``num_queries`` copies of [CLS]; nobody attends to them but themselves, and each
    query sees [CLS] and the patches with ``patch_bias`` (B*heads x Q x L) added."""
    bsz, n, _ = tokens.shape
    queries = tokens[:, :1].expand(-1, num_queries, -1)
    size = num_queries + n
    mask = torch.zeros(size, size)
    mask[:, :num_queries] = float("-inf")
    mask[torch.arange(num_queries), torch.arange(num_queries)] = 0.0
    mask = mask.expand(bsz * clip.num_heads, -1, -1).clone()
    mask[:, :num_queries, num_queries + 1:] = patch_bias
    return torch.cat([queries, tokens], dim=1), mask


def test_extra_tokens_masked_from_the_others_leave_their_outputs_unchanged(clip):
    tokens, (h, w) = clip.embed_tokens(_images())
    plain, _ = clip.run_blocks(tokens)
    bias = torch.randn(2 * clip.num_heads, 3, h * w)
    seq, mask = _with_queries(clip, tokens, 3, bias)
    out, _ = clip.run_blocks(seq, attn_mask=mask)
    torch.testing.assert_close(out[:, 3:], plain, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out[:, :3], plain[:, :1].expand(-1, 3, -1), atol=1e-3)


def test_the_bias_reaches_each_image_and_head_by_row(clip):
    """Row b * num_heads + h of a 3-D mask is image b, head h (nn.MultiheadAttention's
    layout): a query that sees only patch 0 in image 0 does not change when the other patches
    of image 0 do; image 1, unblocked, does."""
    images = _images()
    tokens, (h, w) = clip.embed_tokens(images)
    heads = clip.num_heads
    bias = torch.zeros(2 * heads, 1, h * w)
    bias[:heads, :, 1:] = float("-inf")  # image 0, every head: patch 0 only
    seq, mask = _with_queries(clip, tokens, 1, bias)
    out, _ = clip.run_blocks(seq, attn_mask=mask, stop=1)  # one block: no mixing among patches
    changed = tokens.clone()
    changed[:, 2:] += torch.randn_like(changed[:, 2:])
    seq2, _ = _with_queries(clip, changed, 1, bias)
    out2, _ = clip.run_blocks(seq2, attn_mask=mask, stop=1)
    torch.testing.assert_close(out2[0, 0], out[0, 0], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(out2[1, 0], out[1, 0], atol=1e-4)


def test_a_replacement_positional_table_is_resized_like_the_model_s_and_gets_gradients(clip):
    images = _images(size=(40, 24))
    own = clip.visual.positional_embedding
    same, _ = clip.embed_tokens(images, positional_embedding=own.detach().clone())
    ref, _ = clip.embed_tokens(images)
    torch.testing.assert_close(same, ref, rtol=0, atol=0)
    table = torch.nn.Parameter(own.detach().clone() + 0.5)
    tokens, _ = clip.embed_tokens(images, positional_embedding=table)
    assert not torch.allclose(tokens, ref)
    tokens.sum().backward()
    assert table.grad is not None and table.grad.abs().sum() > 0
    assert not own.requires_grad and own.grad is None


def test_bad_arguments_are_errors(clip):
    tokens, _ = clip.embed_tokens(_images())
    n = tokens.shape[1]
    with pytest.raises(ValueError, match="attn_mask must be"):
        clip.run_blocks(tokens, attn_mask=torch.zeros(3, n, n))
    with pytest.raises(ValueError, match="float"):
        clip.run_blocks(tokens, attn_mask=torch.zeros(n, n, dtype=torch.bool))
    with pytest.raises(ValueError, match="block range"):
        clip.run_blocks(tokens, start=2, stop=1)
    with pytest.raises(ValueError, match="tokens must be"):
        clip.run_blocks(tokens[..., :8])
    with pytest.raises(ValueError, match="multiple of the patch size"):
        clip.embed_tokens(torch.randn(1, 3, 30, 32))
