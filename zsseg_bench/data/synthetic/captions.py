"""Captioned renders of the toy world for CLIP pretraining, and the zero-shot probe set.

The stream covers **all** classes (seen and unseen), as real CLIP saw unseen concepts on the
web. Images come from the same renderer as the segmentation dataset (same backgrounds and
shapes) but on a small canvas. Captions use the same wording as the ``SINGLE`` prompt template
(``"a photo of a {}."``), joined with ``and`` for several objects; a background-only image is
captioned ``"a photo of a background."``. Each sample also carries its set of class ids, so a
contrastive loss can treat captions naming the same set of classes as positives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Iterator, List, Sequence, Tuple

import numpy as np

from .render import render_scene
from .world import BACKGROUND_ID, BACKGROUND_NAME, CLASS_NAMES, OBJECT_CLASS_IDS

#: Seed domains keep caption-stream and probe seeds apart from each other and from datasets.
CAPTION_SEED_DOMAIN = 2
PROBE_SEED_DOMAIN = 3
#: Default seed of the held-out probe set (never used by the caption stream's default seed).
PROBE_SEED = 12345


def caption_for(class_ids: Sequence[int]) -> str:
    """Caption naming the given object classes in order (empty -> background only)."""
    if not class_ids:
        return f"a photo of a {BACKGROUND_NAME}."
    return "a photo of " + " and ".join(f"a {CLASS_NAMES[c]}" for c in class_ids) + "."


@dataclass
class CaptionBatch:
    """A batch of captioned renders.

    Attributes:
        images: uint8 N x H x W x 3 RGB.
        captions: N captions.
        class_sets: N frozensets of class ids named by the caption ({0} = background only).
    """

    images: np.ndarray
    captions: List[str]
    class_sets: List[FrozenSet[int]]


class CaptionStream:
    """Deterministic infinite stream of captioned toy renders.

    Batch ``k`` is a pure function of ``(seed, k)``. Iterating yields batches ``0, 1, 2, ...``.

    Args:
        seed: stream seed.
        batch_size: images per batch.
        image_size: side of the square canvas (px).
        class_ids: object classes to draw from (default: all object classes).
        probs: probabilities of (1 object, 2 objects, background only).
        single_size_range: object size (px) when the image has one object.
        multi_size_range: object size (px) when the image has two objects.
    """

    def __init__(
        self,
        seed: int = 0,
        batch_size: int = 256,
        image_size: int = 64,
        class_ids: Sequence[int] = OBJECT_CLASS_IDS,
        probs: Tuple[float, float, float] = (0.55, 0.40, 0.05),
        single_size_range: Tuple[float, float] = (22.0, 48.0),
        multi_size_range: Tuple[float, float] = (18.0, 30.0),
    ):
        if abs(sum(probs) - 1.0) > 1e-6:
            raise ValueError(f"probs must sum to 1, got {probs}")
        self.seed = seed
        self.batch_size = batch_size
        self.image_size = image_size
        self.class_ids = [int(c) for c in class_ids]
        self.probs = probs
        self.single_size_range = single_size_range
        self.multi_size_range = multi_size_range

    def sample(self, rng: np.random.Generator) -> Tuple[np.ndarray, str, FrozenSet[int]]:
        """One (image, caption, class set) drawn with ``rng``."""
        kind = int(rng.choice(3, p=self.probs))
        if kind == 2:
            ids: List[int] = []
        else:
            n = kind + 1
            ids = [int(c) for c in rng.choice(self.class_ids, size=n, replace=False)]
        size_range = self.single_size_range if len(ids) <= 1 else self.multi_size_range
        s = self.image_size
        image, _, _ = render_scene(rng, s, s, ids, size_range)
        return image, caption_for(ids), frozenset(ids) if ids else frozenset({BACKGROUND_ID})

    def batch(self, k: int) -> CaptionBatch:
        """Batch number ``k`` of the stream."""
        rng = np.random.default_rng(np.random.SeedSequence([CAPTION_SEED_DOMAIN, self.seed, k]))
        out = [self.sample(rng) for _ in range(self.batch_size)]
        return CaptionBatch(
            images=np.stack([o[0] for o in out]),
            captions=[o[1] for o in out],
            class_sets=[o[2] for o in out],
        )

    def __iter__(self) -> Iterator[CaptionBatch]:
        k = 0
        while True:
            yield self.batch(k)
            k += 1


def make_probe_set(
    num: int = 1000,
    seed: int = PROBE_SEED,
    image_size: int = 64,
    class_ids: Sequence[int] = OBJECT_CLASS_IDS,
    size_range: Tuple[float, float] = (22.0, 48.0),
) -> Tuple[np.ndarray, np.ndarray]:
    """Held-out single-object renders for the image-level zero-shot probe.

    Classes cycle through ``class_ids`` (balanced); every render has its own generator derived
    from ``(PROBE_SEED_DOMAIN, seed, index)``, so the first ``n`` renders of a larger set equal
    the set of size ``n``.

    Returns:
        (images uint8 N x S x S x 3, labels int64 N of class ids).
    """
    ids = [int(c) for c in class_ids]
    images, labels = [], []
    for i in range(num):
        rng = np.random.default_rng(np.random.SeedSequence([PROBE_SEED_DOMAIN, seed, i]))
        cid = ids[i % len(ids)]
        img, _, _ = render_scene(rng, image_size, image_size, [cid], size_range)
        images.append(img)
        labels.append(cid)
    return np.stack(images), np.asarray(labels, dtype=np.int64)
