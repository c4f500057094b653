"""The zero-shot contract, checked for every head: every method's registered head and the
plug-in test head of ``tests/contract_head.py``, through the meta-architecture.

Black-box, from the losses and scores (no spy inside a head):

- inductive, and transductive before self-training: no unseen name and no unseen or unlabelled
  label reaches training -- the losses (and gradients) do not change when the unseen classes'
  text embeddings change, an unseen label is an error, and a transductive batch (unseen pixels
  unlabelled, 254) trains exactly as the inductive batch (unseen pixels ignored, 255);
- self-training uses the pseudo-labels of the core policy: the losses equal those of the batch
  whose unlabelled pixels carry those pseudo-labels, and differ from those of the batch whose
  unlabelled pixels are ignored;
- inference scores every class of the full vocabulary (the unseen ones too).

A head that reads the labels as given (unlabelled pixels ignored instead of pseudo-labelled)
fails the suite (:func:`test_a_head_reading_raw_labels_fails_the_contract`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from tests.contract_head import PixelContractHead
from tests.projects.conftest import CLASSES, UNSEEN, register_tiny_split
from zsseg_bench.config.projects import load_projects
from zsseg_bench.data.zero_shot import IGNORE_LABEL, UNLABELLED_LABEL
from zsseg_bench.modeling import HEAD_REGISTRY, build_head
from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.modeling.vocabulary import ClassVocabulary

DATASET = "_test_head_contract_dataset"
SIZE = (64, 64)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def _metadata():
    register_tiny_split(DATASET)


def _zegclip(clip: Any) -> Any:
    from zsseg_bench.projects.zegclip import ZegCLIPHead

    return ZegCLIPHead(clip_width=clip.width, clip_layers=clip.num_layers,
                       embed_dim=clip.embed_dim, patch_size=clip.patch_size, num_heads=4)


def _two_stage(clip: Any) -> Any:
    from tests.projects.two_stage.conftest import tiny_cfg

    cfg = tiny_cfg()
    cfg.MODEL.HEAD.NAME = "TwoStageHead"
    cfg.ZERO_SHOT.SETTING = "transductive"  # with zsseg's offline teacher
    return build_head(cfg, clip)


def _alignzeg(clip: Any) -> Any:
    from tests.projects.alignzeg.conftest import tiny_head

    return tiny_head(clip)


def _san(clip: Any) -> Any:
    from tests.projects.san.conftest import tiny_head

    return tiny_head(clip)


#: A tiny instance of every head (name -> builder); a method's head missing here fails
#: :func:`test_every_registered_method_head_is_checked`.
HEADS: dict[str, Callable[[Any], Any]] = {
    "ZegCLIPHead": _zegclip,
    "TwoStageHead": _two_stage,
    "AlignZegHead": _alignzeg,
    "SANHead": _san,
    "PixelContractHead": lambda clip: PixelContractHead(embed_dim=clip.embed_dim),
}


def test_every_registered_method_head_is_checked():
    load_projects()
    methods = {name for name, cls in HEAD_REGISTRY
               if cls.__module__.startswith("zsseg_bench.projects.")}
    assert methods and methods <= set(HEADS), sorted(methods - set(HEADS))


def _model(head: Any, clip: Any, setting: str) -> ZeroShotSegmentor:
    return ZeroShotSegmentor(head=head, clip=clip, train_dataset=DATASET, test_dataset=DATASET,
                             setting=setting, templates="single", pixel_mean=[128.0] * 3,
                             pixel_std=[64.0] * 3, size_divisibility=32)


def _labels() -> torch.Tensor:
    """Two label maps (full class ids) with every class, an ignored border."""
    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, len(CLASSES), (2, SIZE[0] // 16, SIZE[1] // 16), generator=g)
    labels = blocks.repeat_interleave(16, 1).repeat_interleave(16, 2)
    labels[:, :4] = IGNORE_LABEL
    for b in range(2):
        for c in range(len(CLASSES)):
            labels[b, 8 + 12 * (c // 3): 16 + 12 * (c // 3), 8 * c: 8 * c + 8] = c
    return labels


def _batch(labels: torch.Tensor, unseen_to: int | None) -> list[dict]:
    """The mapper's dicts: unseen pixels set to ``unseen_to`` (None: kept)."""
    g = torch.Generator().manual_seed(1)
    out = []
    for label in labels:
        label = label.clone()
        if unseen_to is not None:
            label[torch.isin(label, torch.tensor(UNSEEN))] = unseen_to
        out.append({"image": torch.randint(0, 256, (3, *SIZE), generator=g, dtype=torch.uint8),
                    "sem_seg": label, "height": SIZE[0], "width": SIZE[1]})
    return out


def _step(model: ZeroShotSegmentor, batch: list[dict],
          phase: TrainingPhase = TrainingPhase.SUPERVISED
          ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """(losses, gradients) of one seeded training step."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(7)
    losses = model(batch, phase=phase)
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: float(v.detach()) for k, v in losses.items()}, grads


def _same(a: tuple[dict, dict], b: tuple[dict, dict]) -> bool:
    return a[0] == b[0] and a[1].keys() == b[1].keys() and all(
        torch.equal(a[1][k], b[1][k]) for k in a[1])


def _other_unseen_texts(model: ZeroShotSegmentor) -> None:
    """Replaces the unseen classes' text embeddings of every cached vocabulary."""
    for key, vocab in list(model._vocab_cache.items()):
        emb = vocab.embeddings.clone()
        emb[~vocab.is_seen] = F.normalize(torch.randn_like(emb[~vocab.is_seen]), dim=-1)
        model._vocab_cache[key] = ClassVocabulary(vocab.names, emb, vocab.is_seen,
                                                  vocab.class_ids)


class _Recording:
    """Records the pseudo-labels the core policy hands out."""

    def __init__(self, policy: Any):
        self.policy, self.out = policy, []

    def __call__(self, *args: Any) -> torch.Tensor:
        self.out.append(self.policy(*args))
        return self.out[-1]


@pytest.fixture(params=sorted(HEADS))
def head_name(request: Any) -> str:
    return request.param


def _head(name: str, clip: Any) -> Any:
    torch.manual_seed(0)
    return HEADS[name](clip)


# ------------------------------------------------------------------------------ the contract
def check_supervised(head: Any, clip: Any) -> None:
    """Inductive / transductive before self-training: seen names and labels only."""
    inductive, transductive = _model(head, clip, "inductive"), _model(head, clip, "transductive")
    labels = _labels()
    ind = _step(inductive, _batch(labels, IGNORE_LABEL))
    trans = _step(transductive, _batch(labels, UNLABELLED_LABEL))
    assert _same(ind, trans), "unlabelled pixels (254) reached a loss before self-training"
    _other_unseen_texts(transductive)
    assert _same(trans, _step(transductive, _batch(labels, UNLABELLED_LABEL))), \
        "an unseen class's text embedding reached training before self-training"
    with pytest.raises(RuntimeError, match="outside the training vocabulary"):
        _step(inductive, _batch(labels, None))  # an unseen label in the inductive setting
    with pytest.raises(RuntimeError, match="unseen classes outside self-training"):
        _step(transductive, _batch(labels, None))


def check_self_training(head: Any, clip: Any) -> None:
    """Self-training: the loss is the loss of the core policy's pseudo-labels."""
    model = _model(head, clip, "transductive")
    model.on_phase_change(TrainingPhase.SELF_TRAINING)  # as the phase schedule does
    recording = _Recording(head.pseudo_label_policy)
    head.pseudo_label_policy = recording
    labels = _labels()
    st = _step(model, _batch(labels, UNLABELLED_LABEL), TrainingPhase.SELF_TRAINING)
    assert len(recording.out) == 1, "self-training did not pseudo-label the unlabelled pixels"
    pseudo = recording.out[0]
    unlabelled = torch.isin(labels, torch.tensor(UNSEEN))
    assert set(pseudo[unlabelled].unique().tolist()) - {IGNORE_LABEL} <= set(UNSEEN)
    assert bool((pseudo[unlabelled] != IGNORE_LABEL).any())
    assert torch.equal(pseudo[~unlabelled], labels[~unlabelled])
    with_pseudo = labels.clone()
    with_pseudo[unlabelled] = pseudo[unlabelled]
    assert _same(st, _step(model, _batch(with_pseudo, None), TrainingPhase.SELF_TRAINING)), \
        "self-training did not train on the pseudo-labels"
    ignored = _step(model, _batch(labels, IGNORE_LABEL), TrainingPhase.SELF_TRAINING)
    assert not _same(st, ignored), "self-training ignored the unlabelled pixels"


def check_inference(head: Any, clip: Any) -> None:
    """Inference: scores over the full vocabulary, unseen classes included."""
    model = _model(head, clip, "transductive").eval()
    batch = _batch(_labels(), None)
    with torch.no_grad():
        first = [o["sem_seg"] for o in model(batch)]
        assert [tuple(s.shape) for s in first] == [(len(CLASSES), *SIZE)] * 2
        _other_unseen_texts(model)
        second = [o["sem_seg"] for o in model(batch)]
    assert any(not torch.equal(a[UNSEEN], b[UNSEEN]) for a, b in zip(first, second)), \
        "the unseen classes' scores do not depend on their text embeddings"


def test_no_unseen_name_or_label_reaches_training_before_self_training(head_name, clip):
    check_supervised(_head(head_name, clip), clip)


def test_self_training_trains_on_the_core_pseudo_labels(head_name, clip):
    check_self_training(_head(head_name, clip), clip)


def test_inference_scores_the_full_vocabulary(head_name, clip):
    check_inference(_head(head_name, clip), clip)


class _RawLabelsHead(PixelContractHead):
    """A head that reads the labels as given: unlabelled pixels ignored, never pseudo-labelled
    (the silent error of a head that re-implements the rules). It even asks for the
    pseudo-labels, then does not use them."""

    def losses(self, images, targets, clip):  # noqa: ANN001, ANN201
        targets.labels()
        logits = F.interpolate(self.scores(images, targets.vocab, clip), size=targets.size,
                               mode="bilinear", align_corners=False)
        labels = targets.given.clone()
        labels[labels >= len(targets.vocab)] = IGNORE_LABEL
        return {"loss_ce": F.cross_entropy(logits, labels, ignore_index=IGNORE_LABEL)}


def test_a_head_reading_raw_labels_fails_the_contract(clip):
    torch.manual_seed(0)
    bad = _RawLabelsHead(embed_dim=clip.embed_dim)
    check_supervised(bad, clip)  # before self-training the core's labels are all it can read
    with pytest.raises(AssertionError, match="did not train on the pseudo-labels"):
        check_self_training(bad, clip)
