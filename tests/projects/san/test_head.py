"""SANHead: built from config, shapes and gradients (CLIP frozen, its positional copy trained),
the official post-processing, seen/unseen handling, config errors."""

import pytest
import torch
import torch.nn.functional as F

from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.build import build_head
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.projects.san import SANHead
from zsseg_bench.utils.errors import UserError

from .conftest import tiny_cfg, tiny_head

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = ["background", "red circle", "blue square", "green cross", "red square"]


def _vocab(clip, seen=(True, True, True, False, False)) -> ClassVocabulary:
    names = NAMES[:len(seen)]
    return ClassVocabulary(names, clip.embed_texts(names, "single"), torch.tensor(seen),
                           torch.arange(len(names)))


def _images(size=(64, 96)):
    return torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))


def _targets(size=(64, 96)):
    targets = torch.zeros(2, *size, dtype=torch.long)
    targets[0, 4:30, 8:40], targets[1, 16:60, 10:50], targets[1, 0:8, 60:90] = 1, 2, 255
    return targets


def test_registered_built_from_config_and_scores_of_any_vocabulary(clip):
    assert HEAD_REGISTRY.get("SANHead") is SANHead
    torch.manual_seed(0)
    head = build_head(tiny_cfg(), clip).eval()
    for size in (1, 3, 5):
        with torch.no_grad():
            scores = head(_images(), _vocab(clip, seen=(True,) * size), clip)
        # scores at the input size, one map per class, no background channel
        assert scores.shape == (2, size, 64, 96)
        assert bool(torch.isfinite(scores).all()) and float(scores.min()) >= 0
        # sum over classes = sum over proposals of (1 - p_background) * sigmoid(mask) <= Q
        assert float(scores.sum(1).max()) <= 5


def test_scores_are_the_official_semantic_inference(clip):
    """softmax over K+1 (background last) dropped to K, times sigmoid of the mask logits
    upsampled bilinearly, summed over proposals (san/model/san.py:269-273)."""
    head = tiny_head(clip).eval()
    vocab = _vocab(clip)
    with torch.no_grad():
        logits, masks = head.outputs(_images(), vocab.embeddings, clip)[-1]
        scores = head(_images(), vocab, clip)
    assert logits.shape == (2, 5, len(vocab) + 1) and masks.shape == (2, 5, 8, 12)
    up = F.interpolate(masks, size=(64, 96), mode="bilinear", align_corners=False).sigmoid()
    expected = torch.einsum("bqc,bqhw->bchw", logits.softmax(-1)[..., :-1], up)
    torch.testing.assert_close(scores, expected)


def test_training_losses_and_gradients_with_clip_frozen(clip):
    head = tiny_head(clip).train()
    losses = head(_images(), _vocab(clip, seen=(True, True, True)), clip, targets=_targets())
    expected = {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "loss_mask_0", "loss_dice_0"}
    assert set(losses) == expected
    assert all(v.ndim == 0 and bool(torch.isfinite(v)) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None for p in clip.parameters())  # CLIP frozen and shared
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert not missing, missing
    assert float(head.clip_pos_embed.grad.abs().sum()) > 0  # SAN trains CLIP's positions
    assert float(head.bg_embed.grad.abs().sum()) > 0


def test_clip_positional_copy_is_optional(clip):
    head = tiny_head(clip, "MODEL.SAN.TRAIN_CLIP_POS_EMBED", False)
    assert head.clip_pos_embed is None
    on = tiny_head(clip)
    torch.testing.assert_close(on.clip_pos_embed.detach(), clip.visual.positional_embedding)
    assert on.clip_pos_embed.requires_grad and not clip.visual.positional_embedding.requires_grad


def test_training_with_the_same_seed_is_deterministic(clip):
    """The matcher and the mask losses draw their points from the global generator."""
    head = tiny_head(clip).train()
    vocab = _vocab(clip, seen=(True, True, True))
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append({k: float(v.detach()) for k, v in head(_images(), vocab, clip,
                                                            targets=_targets()).items()})
    assert runs[0] == runs[1]
    torch.manual_seed(4)
    other = head(_images(), vocab, clip, targets=_targets())
    assert float(other["loss_mask"].detach()) != runs[0]["loss_mask"]


@pytest.mark.parametrize(("key", "value", "match"), [
    ("MODEL.SAN.FEATURE_LAST_LAYER_IDX", 2, "FEATURE_LAST_LAYER_IDX"),
    ("MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.NUM_HEADS", 3, "ATTN_BIAS.NUM_HEADS"),
    ("MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.NUM_LAYERS", 2, "ATTN_BIAS.NUM_LAYERS"),
    ("MODEL.SAN.SIDE_ADAPTER.FUSION_MAP", ["0->0", "2->1"], "FUSION_MAP reads CLIP block 2"),
    ("MODEL.SAN.SIDE_ADAPTER.FUSION_MAP", ["0-0"], "CLIP_BLOCKS->SIDE_BLOCKS"),
    ("MODEL.SAN.SIDE_ADAPTER.FUSION_MAP", ["0->3"], "side block"),
    ("MODEL.SAN.SIDE_ADAPTER.DEEP_SUPERVISION_IDXS", [0, 2], "DEEP_SUPERVISION_IDXS"),
])
def test_config_errors_are_user_errors(clip, key, value, match):
    with pytest.raises(UserError, match=match):
        tiny_head(clip, key, value)


def test_one_bias_for_the_heads_and_one_per_recognition_block(clip):
    """ATTN_BIAS.NUM_HEADS 1 (shared by CLIP's heads) and NUM_LAYERS = the recognition blocks
    (here 1 of 2 CLIP blocks ... the tiny CLIP has one) are the official code's options."""
    head = tiny_head(clip, "MODEL.SAN.SIDE_ADAPTER.ATTN_BIAS.NUM_HEADS", 1).eval()
    with torch.no_grad():
        scores = head(_images(), _vocab(clip), clip)
    assert scores.shape == (2, 5, 64, 96) and bool(torch.isfinite(scores).all())
