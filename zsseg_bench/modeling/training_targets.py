"""``TrainingTargets``: what the zero-shot setting lets a head train on, built by the core.

The meta-architecture hands every head, with each training batch, the *active* vocabulary (the
classes whose names may enter training now: the seen classes in the inductive setting and in
the transductive one before self-training, every class once self-training has started), the
labels in that vocabulary's index space, and the phase. The rules are applied here, once:

- outside self-training a label of an unseen class is an error (a leak: the mapper ignores
  unseen pixels, inductive, or marks them unlabelled, transductive), and unlabelled pixels
  (254) become ignored (255);
- in self-training :meth:`TrainingTargets.labels` pseudo-labels the unlabelled pixels with the
  head's :class:`~zsseg_bench.modeling.pseudo_label.PseudoLabelPolicy`, from the scores the head
  passes (or, if it passes none, from its own inference scores).

A head reads its loss labels from :meth:`TrainingTargets.labels` only; they never hold 254.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from zsseg_bench.data.zero_shot import IGNORE_LABEL, UNLABELLED_LABEL
from zsseg_bench.modeling.pseudo_label import PseudoLabelPolicy, Scores
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.modeling.vocabulary import ClassVocabulary


@dataclass
class TrainingTargets:
    """The targets of one training batch, in the active vocabulary's index space.

    Attributes:
        vocab: the active vocabulary (the only class names training may use).
        given: ``B x H x W`` labels as the setting gives them: indices into ``vocab``, 255
            ignore, and in self-training 254 for the pixels still to pseudo-label. Not for a
            loss: use :meth:`labels`.
        phase: the training phase.
        active: indices of ``vocab``'s classes in the vocabulary the labels were built from.
        policy: how unlabelled pixels are pseudo-labelled (the head's).
        default_scores: the scores :meth:`labels` pseudo-labels from when the head gives none
            (the base head sets its own inference scores here).
    """

    vocab: ClassVocabulary
    given: torch.Tensor
    phase: TrainingPhase
    active: torch.Tensor
    policy: PseudoLabelPolicy = field(default_factory=PseudoLabelPolicy)
    default_scores: Callable[[], torch.Tensor] | None = None
    _resolved: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    def build(cls, labels: torch.Tensor, vocab: ClassVocabulary,
              phase: TrainingPhase) -> TrainingTargets:
        """The targets of ``labels`` (``B x H x W`` indices into ``vocab``, the setting's
        training vocabulary; 255 ignore, 254 unlabelled) in ``phase``.

        Raises:
            RuntimeError: outside self-training, a pixel carries an unseen class of ``vocab``.
        """
        all_classes = torch.arange(len(vocab), device=vocab.is_seen.device)
        if phase is TrainingPhase.SELF_TRAINING:
            return cls(vocab=vocab, given=labels, phase=phase, active=all_classes)
        unseen = vocab.unseen_indices.to(labels.device)
        if len(unseen) and bool(torch.isin(labels, unseen).any()):
            raise RuntimeError("training labels contain unseen classes outside self-training: "
                               "unseen pixels must be ignored (inductive) or unlabelled "
                               "(transductive)")
        active = vocab.seen_indices
        lut = torch.full((256,), IGNORE_LABEL, dtype=torch.long, device=labels.device)
        lut[active.to(labels.device)] = torch.arange(len(active), device=labels.device)
        given = lut[labels.long().clamp(0, 255)]
        sub = vocab if len(active) == len(vocab) else vocab.subset(active)
        return cls(vocab=sub, given=given, phase=phase, active=active)

    @property
    def self_training(self) -> bool:
        """Whether self-training has started (unlabelled pixels get pseudo-labels)."""
        return self.phase is TrainingPhase.SELF_TRAINING

    @property
    def size(self) -> tuple[int, int]:
        """The labels' ``(H, W)``."""
        return tuple(self.given.shape[-2:])

    def with_policy(self, policy: PseudoLabelPolicy,
                    default_scores: Callable[[], torch.Tensor] | None = None
                    ) -> TrainingTargets:
        """A copy that pseudo-labels with ``policy`` (and ``default_scores``)."""
        return replace(self, policy=policy, default_scores=default_scores, _resolved=None)

    def labels(self, scores: Scores | None = None) -> torch.Tensor:
        """The loss labels: ``B x H x W`` indices into :attr:`vocab`, 255 ignore. Computed once:
        later calls return the first call's labels (whatever ``scores`` they pass).

        Args:
            scores: in self-training, the head's detached ``B x K x H x W`` scores over
                :attr:`vocab` at :attr:`size` (or a function returning them), from which the
                unlabelled pixels are pseudo-labelled; None: :attr:`default_scores`. Ignored
                outside self-training.
        """
        if self._resolved is not None:
            return self._resolved
        labels = self.given
        if bool((labels == UNLABELLED_LABEL).any()):
            source = scores if scores is not None else self.default_scores
            if source is None:
                raise RuntimeError("self-training: unlabelled pixels need the head's scores to "
                                   "be pseudo-labelled (TrainingTargets.labels(scores))")
            labels = self.policy(labels, source, self.vocab.unseen_indices)
        self._resolved = labels
        return labels
