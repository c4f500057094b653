"""``ZeroShotHead``: the base class of every method's head (mmseg's ``BaseDecodeHead`` idea).

A head writes two methods, and the train / inference switch is written here, once:

- :meth:`ZeroShotHead.scores` ``(images, vocab, clip, **kw)``: ``B x K x h x w`` class scores
  over ``vocab`` (inference: the test dataset's full class list);
- :meth:`ZeroShotHead.losses` ``(images, targets, clip, **kw)``: a dict of losses, where
  ``targets`` is the :class:`~zsseg_bench.modeling.training_targets.TrainingTargets` the core
  built: the active vocabulary (``targets.vocab``), the loss labels in its index space
  (``targets.labels(scores)``: unlabelled pixels pseudo-labelled in self-training by the head's
  :attr:`pseudo_label_policy`) and the phase.

The zero-shot rules (which classes train, what unlabelled pixels become, pseudo-labelling) are
the core's: a head that reads its labels from ``targets.labels()`` follows them without writing
any. A head that needs to know when self-training starts (e.g. to freeze a teacher) overrides
:meth:`on_phase_change`, which the engine's phase schedule calls.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zsseg_bench.modeling.inference_modes import resize_scores
from zsseg_bench.modeling.pseudo_label import PseudoLabelPolicy
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.modeling.training_targets import TrainingTargets
from zsseg_bench.modeling.vocabulary import ClassVocabulary


class ZeroShotHead(nn.Module):
    """A method's head: :meth:`scores` and :meth:`losses` (see the module docstring).

    Class attributes a head may set:
        takes_image_sizes: the meta-architecture passes ``image_sizes=[(h, w), ...]`` (each
            image's size without the batch padding) to both methods.
        ddp_find_unused_parameters: some learnable parameters get no gradient in a step.
        pseudo_label_policy: how self-training labels unlabelled pixels (default ZegCLIP's;
            a head may set an instance attribute from its config).
    """

    takes_image_sizes: bool = False
    ddp_find_unused_parameters: bool = False
    pseudo_label_policy: PseudoLabelPolicy = PseudoLabelPolicy()

    def forward(self, images: torch.Tensor, vocab: ClassVocabulary, clip: Any,
                targets: TrainingTargets | torch.Tensor | None = None,
                phase: TrainingPhase = TrainingPhase.SUPERVISED, **kwargs: Any) -> Any:
        """Scores (no ``targets``) or losses.

        Args:
            images: normalised, padded ``B x 3 x H x W``.
            vocab: the classes (training: the setting's training vocabulary).
            clip: the shared frozen CLIP model.
            targets: the core's :class:`TrainingTargets`, or ``B x H x W`` labels indexing
                ``vocab`` (255 ignore, 254 unlabelled), from which they are built for ``phase``.
            phase: the phase of raw ``targets`` (a :class:`TrainingTargets` carries its own).
        """
        if targets is None:
            return self.scores(images, vocab, clip, **kwargs)
        if not isinstance(targets, TrainingTargets):
            targets = TrainingTargets.build(targets, vocab, phase)
        targets = targets.with_policy(self.pseudo_label_policy,
                                      lambda: self.labelling_scores(images, targets, clip,
                                                                    **kwargs))
        return self.losses(images, targets, clip, **kwargs)

    def scores(self, images: torch.Tensor, vocab: ClassVocabulary, clip: Any,
               **kwargs: Any) -> torch.Tensor:
        """``B x K x h x w`` class scores over ``vocab``."""
        raise NotImplementedError

    def losses(self, images: torch.Tensor, targets: TrainingTargets, clip: Any,
               **kwargs: Any) -> dict[str, torch.Tensor]:
        """A dict of losses against ``targets.labels(...)`` over ``targets.vocab``."""
        raise NotImplementedError

    @torch.no_grad()
    def labelling_scores(self, images: torch.Tensor, targets: TrainingTargets, clip: Any,
                         **kwargs: Any) -> torch.Tensor:
        """The scores self-training pseudo-labels from when :meth:`losses` gives none: this
        head's :meth:`scores` over the active vocabulary at the labels' size (an extra forward
        pass without gradients, in training mode: BatchNorm statistics see it; a head to which
        that matters passes its own scores to ``targets.labels``)."""
        return resize_scores(self.scores(images, targets.vocab, clip, **kwargs).float(),
                             targets.size)

    def on_phase_change(self, phase: TrainingPhase) -> None:
        """Called by the engine's phase schedule when the training phase changes (and when a
        resumed run re-enters a phase). Default: nothing."""
