"""The meta-architecture contract (the one tests/contract_head.py proves with a test-only head)
with AlignZegHead: loss dict with gradients, full-size scores over the full vocabulary, whole
and slide inference, inductive training never sees unseen names or labels."""

import pytest
import torch

from tests.projects.conftest import CLASSES, SEEN, register_tiny_split
from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor

from .conftest import tiny_head

pytestmark = pytest.mark.usefixtures("one_thread")
DATASET = "_test_alignzeg_dataset"


@pytest.fixture(scope="module", autouse=True)
def _metadata():
    register_tiny_split(DATASET)


def _model(clip, setting: str = "inductive", **kw) -> ZeroShotSegmentor:
    return ZeroShotSegmentor(head=tiny_head(clip), clip=clip, train_dataset=DATASET,
                             test_dataset=DATASET, setting=setting, templates="single",
                             pixel_mean=[128.0] * 3, pixel_std=[64.0] * 3,
                             size_divisibility=32, **kw)


def _inputs(sizes, labels=None):
    g = torch.Generator().manual_seed(0)
    out = []
    for h, w in sizes:
        item = {"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8),
                "height": h, "width": w}
        if labels is not None:
            item["sem_seg"] = labels(h, w)
        out.append(item)
    return out


def _seen_labels(h, w):
    lab = torch.zeros(h, w, dtype=torch.long)
    lab[: h // 2, : w // 2], lab[h // 2:, w // 2:] = 1, 2
    return lab


def test_training_returns_a_loss_dict_with_gradients(clip):
    model = _model(clip).train()
    losses = model(_inputs([(40, 56), (64, 30)], _seen_labels))
    assert {"loss_ce", "loss_mask", "loss_dice", "loss_bc"} <= set(losses)
    sum(losses.values()).backward()
    assert model.head.decoder.query_feat.weight.grad is not None


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_inference_gives_full_size_scores_over_the_full_vocabulary(clip, mode):
    model = _model(clip, test_mode=mode, slide_crop=(32, 32), slide_stride=(16, 16)).eval()
    inputs = _inputs([(40, 56), (64, 30)])
    inputs[1]["height"], inputs[1]["width"] = 128, 60
    with torch.no_grad():
        out = model(inputs)
    assert [tuple(o["sem_seg"].shape) for o in out] == [(5, 40, 56), (5, 128, 60)]


def test_inductive_training_never_sees_unseen_names_or_labels(clip, monkeypatch):
    model = _model(clip).train()
    head = model.head
    texts, labels = [], []
    logits_fn, matcher_fn = head.classifier.logits, head.criterion.matcher.forward

    def logits_spy(features, text):
        texts.append(text)
        return logits_fn(features, text)

    def matcher_spy(logits, masks, targets):
        labels.extend(t["labels"] for t in targets)
        return matcher_fn(logits, masks, targets)

    monkeypatch.setattr(head.classifier, "logits", logits_spy)
    monkeypatch.setattr(head.criterion.matcher, "forward", matcher_spy)
    model(_inputs([(32, 32), (32, 32)], _seen_labels))
    # The head classifies against the trainable vocabulary's own embeddings (bit-equal: the
    # same rows); against the full vocabulary's seen rows only up to float noise: CLIP embedded
    # those in a batch of another size, and matrix kernels need not give bit-equal rows across
    # batch sizes (they do not on AMD EPYC).
    trainable = model.vocabulary(DATASET, trainable_only=True)
    seen_text = model.vocabulary(DATASET, trainable_only=False).embeddings[SEEN]
    assert texts and all(torch.equal(t, trainable.embeddings) for t in texts)
    torch.testing.assert_close(trainable.embeddings, seen_text, rtol=1e-5, atol=1e-6)
    assert labels and all(int(x.max()) < len(SEEN) for x in labels)
    assert model.vocabulary(DATASET, trainable_only=True).names == CLASSES[:3]
    leak = _inputs([(32, 32)], lambda h, w: torch.full((h, w), 4))
    with pytest.raises(RuntimeError, match="outside the training vocabulary"):
        model(leak)
