"""The class vocabulary a head sees: names, CLIP text embeddings, and which classes are seen."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass(frozen=True)
class ClassVocabulary:
    """The classes of one forward pass, in the head's index space ``0..K-1``.

    Attributes:
        names: class names, in index order.
        embeddings: ``K x D`` L2-normalised CLIP text embeddings of the names.
        is_seen: ``K`` bool, True for classes with training labels.
        class_ids: ``K`` ids of these classes in the dataset's full class list.

    Immutable and shared (the meta-architecture caches one per dataset and class set): what
    changes during training, the self-training phase, is passed to the head on its own
    (:class:`~zsseg_bench.modeling.training_phase.TrainingPhase`).
    """

    names: list[str]
    embeddings: torch.Tensor
    is_seen: torch.Tensor
    class_ids: torch.Tensor

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def seen_indices(self) -> torch.Tensor:
        """Indices (into this vocabulary) of the seen classes (computed once: ``is_seen`` is
        never changed after construction)."""
        return self.is_seen.nonzero().flatten()

    @cached_property
    def unseen_indices(self) -> torch.Tensor:
        """Indices (into this vocabulary) of the unseen classes (computed once)."""
        return (~self.is_seen).nonzero().flatten()

    def subset(self, indices: torch.Tensor) -> ClassVocabulary:
        """The vocabulary of the classes ``indices`` (into this one), in that order."""
        idx = indices.to(self.embeddings.device)
        return ClassVocabulary([self.names[i] for i in indices.tolist()], self.embeddings[idx],
                               self.is_seen[indices.to(self.is_seen.device)],
                               self.class_ids[indices.to(self.class_ids.device)])

    def to(self, device: torch.device | str) -> ClassVocabulary:
        """A copy on ``device``."""
        return ClassVocabulary(self.names, self.embeddings.to(device), self.is_seen.to(device),
                               self.class_ids.to(device))
