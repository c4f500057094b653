"""The core pseudo-labelling policy and the training targets the core builds for every head."""

import pytest
import torch

from zsseg_bench.data.zero_shot import UNLABELLED_LABEL
from zsseg_bench.modeling.pseudo_label import PseudoLabelPolicy
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.modeling.training_targets import TrainingTargets
from zsseg_bench.modeling.vocabulary import ClassVocabulary

LABELS = torch.tensor([[[0, 1, UNLABELLED_LABEL, 255],
                        [UNLABELLED_LABEL, 2, UNLABELLED_LABEL, 1]]])  # 1 x 2 x 4
UNSEEN = torch.tensor([3, 4])


def test_sigmoid_policy_is_zegclips_argmax_over_unseen_classes():
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 2, 4)
    logits[0, 0] += 10  # a seen class dominating everywhere must not be chosen
    out = PseudoLabelPolicy()(LABELS, logits, UNSEEN)
    unlabelled = LABELS == UNLABELLED_LABEL
    assert torch.equal(out[~unlabelled], LABELS[~unlabelled])
    expected = UNSEEN[logits[:, UNSEEN].argmax(1)]
    assert torch.equal(out[unlabelled], expected[unlabelled])
    assert torch.equal(LABELS, torch.tensor([[[0, 1, 254, 255], [254, 2, 254, 1]]]))  # no in-place
    none = PseudoLabelPolicy()(LABELS, logits, torch.tensor([], dtype=torch.long))
    assert (none[unlabelled] == 255).all()


def test_normalised_policy_is_zsseg_s_thresholded_confidence():
    scores = torch.zeros(1, 5, 2, 4)
    scores[:, 0] = 1.0  # seen background: 1 everywhere
    scores[0, 3, 0, 2] = 3.0  # confident unseen class 3 at (0, 2): 3 / 4 = 0.75
    scores[0, 4, 1, 0] = 0.5  # weak unseen class 4 at (1, 0): 0.5 / 1.5 = 0.33
    scores[0, 4, 1, 2] = -2.0  # negative scores are clamped at 0
    out = PseudoLabelPolicy("normalised", 0.5)(LABELS, scores, UNSEEN)
    assert out[0, 0, 2] == 3 and out[0, 1, 0] == 255 and out[0, 1, 2] == 255
    out = PseudoLabelPolicy("normalised", 0.0)(LABELS, scores, UNSEEN)  # zsseg: every pixel
    assert out[0, 0, 2] == 3 and out[0, 1, 0] == 4 and out[0, 1, 2] in (3, 4)
    with pytest.raises(ValueError, match="threshold"):
        PseudoLabelPolicy("sigmoid", 0.5)


def test_scores_are_computed_only_when_a_pixel_needs_them():
    def scores():
        raise AssertionError("computed")

    labelled = torch.zeros(1, 2, 2, dtype=torch.long)
    assert torch.equal(PseudoLabelPolicy()(labelled, scores, UNSEEN), labelled)
    none = PseudoLabelPolicy()(LABELS, scores, torch.tensor([], dtype=torch.long))
    assert int((none == UNLABELLED_LABEL).sum()) == 0


def _vocab() -> ClassVocabulary:
    names = ["background", "a", "b", "c", "d"]
    return ClassVocabulary(names, torch.eye(5), torch.tensor([True, True, True, False, False]),
                           torch.arange(5))


def test_targets_before_self_training_are_seen_only_and_never_unlabelled():
    vocab = _vocab()
    targets = TrainingTargets.build(LABELS, vocab, TrainingPhase.SUPERVISED)
    assert targets.vocab.names == ["background", "a", "b"] and targets.active.tolist() == [0, 1, 2]
    assert torch.equal(targets.vocab.embeddings, vocab.embeddings[:3])
    labels = targets.labels()
    assert set(labels.unique().tolist()) == {0, 1, 2, 255}  # 254 -> ignore
    leak = LABELS.clone()
    leak[0, 0, 0] = 4
    with pytest.raises(RuntimeError, match="unseen classes outside self-training"):
        TrainingTargets.build(leak, vocab, TrainingPhase.SUPERVISED)


def test_self_training_targets_need_scores_and_use_the_policy():
    vocab = _vocab()
    targets = TrainingTargets.build(LABELS, vocab, TrainingPhase.SELF_TRAINING)
    assert targets.vocab is vocab and targets.self_training
    with pytest.raises(RuntimeError, match="pseudo-labelled"):
        targets.labels()
    logits = torch.randn(1, 5, 2, 4)
    labels = targets.labels(logits)
    assert torch.equal(labels, PseudoLabelPolicy()(LABELS, logits, vocab.unseen_indices))
    assert targets.labels() is labels  # resolved once per batch
