"""CLIP layer costs: the text tower runs on the prompts' own length (causal mask, end-of-text
pooling) with open_clip's outputs, a class's embedding is encoded once per template set, and
the residual blocks run their attention as one fused call with the blocks' outputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.modeling.clip_testing import tiny_clip


@pytest.fixture(scope="module")
def clip():
    return tiny_clip()


def test_text_on_the_prompt_length_equals_the_full_context(clip):
    tokens = clip.tokenize(["a red circle", "a photo of a very big blue square in the scene", "x"])
    assert int(tokens.argmax(-1).max()) + 1 < tokens.shape[1]  # there is padding to skip
    assert clip._truncatable_text()
    with torch.no_grad():
        full = F.normalize(clip.model.encode_text(tokens).float(), dim=-1)
        short = clip.encode_text(tokens)
    torch.testing.assert_close(short, full, atol=1e-5, rtol=0)


def test_a_tower_without_causal_mask_runs_as_open_clip_runs_it(clip, monkeypatch):
    monkeypatch.setattr(clip.model, "text_pool_type", "first")
    assert not clip._truncatable_text()
    tokens = clip.tokenize(["a red circle"])
    with torch.no_grad():
        expected = F.normalize(clip.model.encode_text(tokens).float(), dim=-1)
        torch.testing.assert_close(clip.encode_text(tokens), expected)


def test_names_encoded_before_are_not_encoded_again(clip, monkeypatch):
    names = ["red circle", "blue ring", "background", "green cross"]
    full = clip.embed_texts(names, "vild_14")
    encoded = []
    orig = clip.encode_text
    monkeypatch.setattr(clip, "encode_text", lambda t: encoded.append(len(t)) or orig(t))
    seen = clip.embed_texts([names[2], names[0]], "vild_14")
    assert not encoded  # every name is cached
    assert torch.equal(seen, full[[2, 0]])
    more = clip.embed_texts([names[1], "yellow star"], "vild_14")
    assert encoded == [14]  # the new name's 14 prompts only
    assert torch.equal(more[0], full[1])
    holder = torch.nn.Module()
    holder.clip, holder.head = clip, torch.nn.Linear(2, 2)
    holder.load_state_dict({"head.weight": torch.zeros(2, 2), "head.bias": torch.zeros(2)},
                           strict=False)  # a head's checkpoint: CLIP's caches stay
    clip.embed_texts(names[:1], "vild_14")
    assert encoded == [14]
    clip.load_state_dict(clip.state_dict())  # new CLIP weights: the caches go
    clip.embed_texts(names[:1], "vild_14")
    assert encoded == [14, 14]


@pytest.mark.parametrize("train", [False, True])
def test_residual_block_computes_what_the_block_computes(clip, train):
    from zsseg_bench.modeling.clip.model import residual_block

    block = clip.visual.transformer.resblocks[0]
    torch.manual_seed(0)
    x = torch.randn(2, 17, clip.width, requires_grad=train)
    block.train(train)
    try:
        with torch.set_grad_enabled(train):
            expected = block(x)
            ours = residual_block(block, x)
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
        mask = torch.full((17, 17), float("-inf")).triu(1)
        torch.testing.assert_close(residual_block(block, x, attn_mask=mask),
                                   block(x, attn_mask=mask), atol=1e-5, rtol=1e-5)
    finally:
        block.eval()
