"""Seen/unseen handling through the meta-architecture: inductive training never sees unseen
text embeddings or labels; self-training pseudo-labels unlabelled pixels with unseen classes."""

import pytest
import torch

from tests.projects.conftest import CLASSES, SEEN, UNSEEN, register_tiny_split
from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.projects.zegclip import ZegCLIPHead
from zsseg_bench.projects.zegclip.pseudo_label import UNLABELLED_LABEL

DATASET = "_test_zegclip_dataset"


@pytest.fixture(scope="module", autouse=True)
def _metadata():
    register_tiny_split(DATASET)


class Spy:
    """Records the text embeddings reaching the descriptor and the labels reaching the loss."""

    def __init__(self, head: ZegCLIPHead, monkeypatch):
        self.texts, self.labels = [], []
        descriptor_forward = head.descriptor.forward

        def descriptor(cls_embedding, text):
            self.texts.append(text.detach().clone())
            return descriptor_forward(cls_embedding, text)

        labels_fn = head.training_labels

        def training_labels(*args, **kwargs):
            out = labels_fn(*args, **kwargs)
            self.labels.append(out.clone())
            return out

        monkeypatch.setattr(head.descriptor, "forward", descriptor)
        monkeypatch.setattr(head, "training_labels", training_labels)


def _model(clip, setting: str) -> ZeroShotSegmentor:
    torch.manual_seed(0)
    head = ZegCLIPHead(clip_width=clip.width, clip_layers=clip.num_layers,
                       embed_dim=clip.embed_dim, patch_size=clip.patch_size, num_heads=4)
    return ZeroShotSegmentor(head=head, clip=clip, train_dataset=DATASET, test_dataset=DATASET,
                             setting=setting, templates="single", pixel_mean=[128.0] * 3,
                             pixel_std=[64.0] * 3, size_divisibility=8)


def _batch(setting: str) -> list[dict]:
    """Two images whose labels hold every class; unseen pixels as the mapper leaves them."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(2):
        label = torch.randint(0, len(CLASSES), (32, 40), generator=g)
        unseen = torch.isin(label, torch.tensor(UNSEEN))
        label[unseen] = 255 if setting == "inductive" else UNLABELLED_LABEL
        label[:2] = 255
        out.append({"image": torch.randint(0, 256, (3, 32, 40), generator=g, dtype=torch.uint8),
                    "sem_seg": label, "height": 32, "width": 40})
    return out


def _unseen_rows_used(clip, texts: list[torch.Tensor]) -> bool:
    unseen = clip.embed_texts([CLASSES[i] for i in UNSEEN])
    return any(torch.isclose(t.unsqueeze(1), unseen.unsqueeze(0)).all(-1).any() for t in texts)


@pytest.mark.parametrize("setting", ["inductive", "transductive"])
def test_training_before_self_training_never_sees_unseen_classes(clip, setting, monkeypatch):
    model = _model(clip, setting).train()
    spy = Spy(model.head, monkeypatch)
    losses = model(_batch(setting))
    sum(losses.values()).backward()
    assert len(spy.texts) == 1 and spy.texts[0].shape[0] == len(SEEN)
    assert not _unseen_rows_used(clip, spy.texts)
    labels = spy.labels[0]
    assert set(labels.unique().tolist()) <= set(range(len(SEEN))) | {255}


def test_inductive_head_rejects_unseen_labels(clip):
    model = _model(clip, "transductive").train()
    vocab = model.vocabulary(DATASET, trainable_only=True)  # all classes, not self-training
    targets = torch.full((1, 32, 32), 3)  # an unseen class id outside self-training
    with pytest.raises(RuntimeError, match="unseen"):
        model.head(torch.randn(1, 3, 32, 32), vocab, clip, targets=targets)


def test_self_training_pseudo_labels_unlabelled_pixels_with_unseen_classes(clip, monkeypatch):
    model = _model(clip, "transductive").train()
    spy = Spy(model.head, monkeypatch)
    batch = _batch("transductive")
    losses = model(batch, phase=TrainingPhase.SELF_TRAINING)
    sum(losses.values()).backward()
    assert spy.texts[0].shape[0] == len(CLASSES) and _unseen_rows_used(clip, spy.texts)
    given = torch.stack([x["sem_seg"] for x in batch])
    labels = spy.labels[0][:, :32, :40]  # crop the padding
    unlabelled = given == UNLABELLED_LABEL
    assert unlabelled.any()
    assert torch.equal(labels[~unlabelled], given[~unlabelled])
    assert set(labels[unlabelled].unique().tolist()) <= set(UNSEEN)
