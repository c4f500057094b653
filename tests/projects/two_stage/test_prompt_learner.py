"""zsseg's learned prompts: the sequence they build, loading, caching, and the head's use of them.
(Equal to the official LearnablePromptExtractor: tests/oracle/test_zsseg_equal.py.)"""

from __future__ import annotations

import pytest
import torch

from zsseg_bench.modeling import build_head
from zsseg_bench.projects.two_stage.prompt_learner import LearnedPrompts
from zsseg_bench.utils.errors import UserError

from .conftest import tiny_cfg, vocabulary


def test_without_learned_vectors_the_text_is_the_name_and_a_period(clip):
    # [SOT] <name> "." [EOT]: with no learned vector that is CLIP's text of "<name>."
    prompts = LearnedPrompts(prefix_length=0, suffix_length=0, dim=32)
    names = ["red circle", "blue square"]
    expected = clip.encode_text(clip.tokenize([f"{n}." for n in names]))
    torch.testing.assert_close(prompts(clip, names), expected, atol=1e-5, rtol=1e-5)


def test_learned_vectors_change_the_text_and_train(clip):
    prompts = LearnedPrompts(prefix_length=4, suffix_length=2, dim=32)
    names = ["red circle", "blue square"]
    text = prompts(clip, names)
    assert text.shape == (2, clip.embed_dim)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(2))
    text.sum().backward()
    assert prompts.prefix_prompt.grad.abs().sum() > 0 and prompts.suffix_prompt.grad is not None
    assert all(p.grad is None for p in clip.parameters())


def test_zsseg_prompt_checkpoints_load_frozen_and_cached(clip, tmp_path):
    # zsseg's PROMPT_CHECKPOINT: a prompt-learning run's {"model": ...}; its prompt_learner
    # tensors are taken (the *_signal buffers are CLIP's token embeddings, recomputed)
    prefix = torch.randn(4, 32)
    path = tmp_path / "prompts.pth"
    torch.save({"model": {"clip_adapter.prompt_learner.prefix_prompt": prefix,
                          "clip_adapter.prompt_learner.start_signal": torch.zeros(1, 32),
                          "clip_adapter.clip_model.logit_scale": torch.tensor(4.6)}}, path)
    prompts = LearnedPrompts(prefix_length=4, dim=32, weights=str(path))
    assert torch.equal(prompts.prefix_prompt, prefix) and not prompts.prefix_prompt.requires_grad
    first = prompts(clip, ["red circle"])
    assert prompts(clip, ["red circle"]) is first  # frozen: computed once per vocabulary
    prompts.load_state_dict({"prefix_prompt": prefix * 2})
    assert not torch.allclose(prompts(clip, ["red circle"]), first)
    with pytest.raises(UserError, match="prefix_prompt of shape \\(8, 32\\)"):
        LearnedPrompts(prefix_length=8, dim=32, weights=str(path))
    with pytest.raises(UserError, match="holds a suffix_prompt"):
        torch.save({"model": {"x.prompt_learner.prefix_prompt": prefix,
                              "x.prompt_learner.suffix_prompt": prefix}}, path)
        LearnedPrompts(prefix_length=4, dim=32, weights=str(path))


@pytest.mark.parametrize("learned_for", ["both", "crops"])
def test_head_uses_learned_prompts_for_the_configured_classifiers(clip, learned_for):
    cfg = tiny_cfg()
    cfg.MODEL.HEAD.NAME = "TwoStageHead"
    cfg.MODEL.TWO_STAGE.PROMPT_LEARNER.ENABLED = True
    cfg.MODEL.TWO_STAGE.PROMPT_LEARNER.PREFIX_LENGTH = 4
    cfg.MODEL.TWO_STAGE.PROMPT_LEARNER.FOR = learned_for
    torch.manual_seed(0)
    head = build_head(cfg, clip).eval()
    vocab = vocabulary(clip)
    query, crops = head.texts(clip, vocab)
    learned = head.prompt_learner(clip, vocab.names)
    torch.testing.assert_close(crops, learned)
    torch.testing.assert_close(query, learned if learned_for == "both" else vocab.embeddings)
    with torch.no_grad():
        scores = head(torch.randn(1, 3, 64, 64), vocab, clip)
    assert scores.shape == (1, len(vocab), 64, 64)
    images, targets = torch.randn(1, 3, 64, 64), torch.zeros(1, 64, 64, dtype=torch.long)
    head.train()
    sum(head(images, vocab, clip, targets=targets).values()).backward()
    grad = head.prompt_learner.prefix_prompt.grad
    # the query classifier trains the prompts it uses; the crops are inference only
    assert (grad is not None and grad.abs().sum() > 0) == (learned_for == "both")
