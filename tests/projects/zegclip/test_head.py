"""ZegCLIPHead on a tiny random-init CLIP: shapes, calibration, gradients, parameter counts."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from zsseg_bench.config import get_cfg
from zsseg_bench.modeling import HEAD_REGISTRY, build_head
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.projects.zegclip import ZegCLIPHead, add_zegclip_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
NAMES = ["background", "red circle", "blue square", "green cross", "red square"]
IS_SEEN = torch.tensor([True, True, True, False, False])


def _vocab(clip, seen_only: bool = False) -> ClassVocabulary:
    idx = IS_SEEN.nonzero().flatten() if seen_only else torch.arange(len(NAMES))
    return ClassVocabulary([NAMES[i] for i in idx], clip.embed_texts([NAMES[i] for i in idx]),
                           IS_SEEN[idx], idx)


def _head(clip, **kw) -> ZegCLIPHead:
    torch.manual_seed(0)
    args = {"clip_width": clip.width, "clip_layers": clip.num_layers,
            "embed_dim": clip.embed_dim, "patch_size": clip.patch_size, "num_heads": 4}
    return ZegCLIPHead(**{**args, **kw})


def test_registered_and_built_from_config(clip):
    assert "ZegCLIPHead" in HEAD_REGISTRY
    cfg = get_cfg()
    add_zegclip_config(cfg)
    add_zegclip_config(cfg)  # idempotent
    cfg.MODEL.HEAD.NAME = "ZegCLIPHead"
    cfg.MODEL.ZEGCLIP.DECODER.NUM_HEADS = 4
    head = build_head(cfg, clip)
    assert head.prompts.embeddings.shape == (clip.num_layers, 10, clip.width)
    assert head.seen_score_calibration == pytest.approx(0.1)
    cfg.ZERO_SHOT.SETTING = "transductive"
    assert build_head(cfg, clip).seen_score_calibration == 0.0


def test_inference_scores_shape_and_seen_calibration(clip):
    head = _head(clip, seen_score_calibration=0.0).eval()
    images = torch.randn(2, 3, 48, 64)
    vocab = _vocab(clip)
    with torch.no_grad():
        raw = head(images, vocab, clip)
        head.seen_score_calibration = 0.25
        calibrated = head(images, vocab, clip)
    assert raw.shape == (2, len(NAMES), 48, 64)
    assert ((raw >= 0) & (raw <= 1)).all()  # sigmoid scores
    diff = raw - calibrated
    assert torch.allclose(diff[:, IS_SEEN], torch.full_like(diff[:, IS_SEEN], 0.25))
    assert torch.equal(diff[:, ~IS_SEEN], torch.zeros_like(diff[:, ~IS_SEEN]))


def test_mask_logits_of_every_decoder_layer_on_the_patch_grid(clip):
    head = _head(clip, num_decoder_layers=2).eval()
    with torch.no_grad():
        masks = head.mask_logits(torch.randn(1, 3, 32, 40), clip.embed_texts(NAMES), clip)
    assert [m.shape for m in masks] == [(1, len(NAMES), 4, 5)] * 2


def test_only_prompts_descriptor_and_decoder_learn(clip):
    head = _head(clip, deep_supervision=True).train()
    images = torch.randn(2, 3, 32, 32)
    targets = torch.randint(0, 3, (2, 32, 32))
    targets[0, :4] = 255
    losses = head(images, _vocab(clip, seen_only=True), clip, targets=targets)
    assert {"loss_focal", "loss_dice", "loss_focal_0", "loss_dice_0"} <= set(losses)
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert not any(p.requires_grad for p in clip.parameters())  # CLIP stays frozen
    assert all(p.grad is None for p in clip.parameters())
    learnable = {n.split(".")[0] for n, p in head.named_parameters() if p.requires_grad}
    assert learnable == {"prompts", "descriptor", "decoder"}
    # The prompts get gradients through the frozen ViT, so do descriptor and decoder.
    for name in ("prompts.embeddings", "prompts.proj.weight", "prompts.norm.weight",
                 "prompts.norm.bias", "descriptor.proj.weight",
                 "decoder.layers.0.cross_attn.q.weight", "decoder.layers.0.ffn.0.weight"):
        grad = dict(head.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_prompt_dropout_is_per_image_in_training_only(clip):
    head = _head(clip, prompt_dropout=0.5)
    head.train()
    assert head.prompts(3).shape == (3, clip.num_layers, 10, clip.width)
    head.eval()
    assert head.prompts(3).shape == (clip.num_layers, 10, clip.width)


def _vit_b16_head(**overrides) -> ZegCLIPHead:
    cfg = get_cfg()
    add_zegclip_config(cfg)
    cfg.merge_from_file(str(CONFIGS / "voc" / "zegclip_vitb16_512x512_20k_inductive.yaml"))
    cfg.merge_from_list([x for kv in overrides.items() for x in kv])
    vit_b16 = SimpleNamespace(width=768, num_layers=12, embed_dim=512, patch_size=16)
    return build_head(cfg, vit_b16)


def test_learnable_parameters_of_the_voc_config_match_the_published_count():
    def count(head):
        return sum(p.numel() for p in head.parameters() if p.requires_grad)

    # Computed by the official forward: 12 x 10 prompts + shared Linear + prompt_norm,
    # descriptor, decoder.
    assert count(_vit_b16_head()) == 10_666_240
    assert count(_vit_b16_head(**{"MODEL.ZEGCLIP.PROMPT.NORM": "False"})) == 10_666_240 - 1_536
    # + the self-attention (and norm1) that the official layers register but never call:
    # 13.82M, the published 13.8M.
    assert count(_vit_b16_head(**{"MODEL.ZEGCLIP.DECODER.QUERY_SELF_ATTN": "True"})) \
        == 13_821_184


def test_prompt_norm_runs_on_the_last_tokens_before_ln_post(clip):
    head = _head(clip).eval()
    seen = {}
    hook = clip.visual.ln_post.register_forward_hook(
        lambda mod, inp, out: seen.setdefault("ln_post_input", inp[0]))
    try:
        with torch.no_grad():
            head.prompts.norm.bias.fill_(3.0)  # LayerNorm output: per-token mean 3, then ln_post
            head.prompts.norm.weight.fill_(0.0)
            head.mask_logits(torch.randn(1, 3, 32, 32), clip.embed_texts(NAMES), clip)
    finally:
        hook.remove()
    assert torch.equal(seen["ln_post_input"], torch.full_like(seen["ln_post_input"], 3.0))
    assert _head(clip, prompt_norm=False).prompts.norm is None
