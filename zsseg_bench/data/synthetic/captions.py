"""Captioned renders of the toy world for CLIP pretraining, and the zero-shot probe set.

The stream covers **all** classes (seen and unseen), as real CLIP saw unseen concepts on the
web. Images come from the same renderer as the segmentation dataset (same backgrounds, shapes
and object sizes) on a small canvas. Captions use the wording of the ``SINGLE`` prompt template
(``"a photo of a {}."``), joined with ``and`` for two objects; a background-only image is
captioned ``"a photo of a background."``.

Like web captions, some captions describe the objects only partly: with probability
``partial_prob`` a caption names the shapes without their colours (``"a photo of a circle."``).
Such captions tie every colour of a shape to one text, which pushes the image tower towards
colour-invariant shape features, the compositional skill zero-shot segmentation of unseen
colour x shape classes needs.

Each sample carries what its image holds (``objects``) and what its caption says
(``descriptors``), so a contrastive loss can count every caption that correctly and completely
describes an image as a positive (:func:`caption_matches`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .render import render_scene
from .world import BACKGROUND_NAME, CLASS_ATTRIBUTES, OBJECT_CLASS_IDS

#: Seed domains keep caption-stream and probe seeds apart from each other and from datasets.
CAPTION_SEED_DOMAIN = 2
PROBE_SEED_DOMAIN = 3
#: Default seed of the held-out probe set (never used by the caption stream's default seed).
PROBE_SEED = 12345
#: Object size (px) in one-object renders: large enough that 8-px patches resolve the shapes
#: (the ring's hole, the cross's arms); about the pixel scale of objects in segmentation images.
SINGLE_SIZE_RANGE = (30.0, 56.0)
#: Object size (px) in two-object renders (two must fit side by side on a 64-px canvas).
MULTI_SIZE_RANGE = (20.0, 32.0)
#: Probabilities of (one object, two objects, background only) in the caption stream.
CAPTION_KIND_PROBS = (0.6, 0.35, 0.05)
#: Probability that an object caption names shapes only (no colours).
PARTIAL_CAPTION_PROB = 0.3

#: An object as drawn: (colour, shape). A caption descriptor: (colour or None, shape).
Obj = tuple[str, str]
Descriptor = tuple[str | None, str]


def caption_of(descriptors: Sequence[Descriptor]) -> str:
    """Caption of descriptors; a ``None`` colour is left out (``"a photo of a circle."``)."""
    if not descriptors:
        return f"a photo of a {BACKGROUND_NAME}."
    words = [f"a {c} {s}" if c is not None else f"a {s}" for c, s in descriptors]
    return "a photo of " + " and ".join(words) + "."


def caption_matches(objects: Sequence[Obj], descriptors: Sequence[Descriptor]) -> bool:
    """Whether a caption's descriptors describe exactly the image's objects (any order).

    A descriptor matches an object if the shapes are equal and its colour is ``None`` or equal.
    """
    if len(objects) != len(descriptors):
        return False
    return any(
        all((d[0] is None or d[0] == o[0]) and d[1] == o[1] for d, o in zip(descriptors, perm))
        for perm in itertools.permutations(objects)
    )


@dataclass
class CaptionBatch:
    """A batch of captioned renders.

    Attributes:
        images: uint8 N x H x W x 3 RGB.
        captions: N captions.
        objects: N tuples of the (colour, shape) objects drawn (empty = background only).
        descriptors: N tuples of the (colour or None, shape) the caption names.
        class_sets: N frozensets of the class ids drawn (``{0}`` = background only).
    """

    images: np.ndarray
    captions: list[str]
    objects: list[tuple[Obj, ...]]
    descriptors: list[tuple[Descriptor, ...]]
    class_sets: list[frozenset[int]]


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
        partial_prob: probability that an object caption leaves the colours out.
    """

    def __init__(
        self,
        seed: int = 0,
        batch_size: int = 256,
        image_size: int = 64,
        class_ids: Sequence[int] = OBJECT_CLASS_IDS,
        probs: tuple[float, float, float] = CAPTION_KIND_PROBS,
        single_size_range: tuple[float, float] = SINGLE_SIZE_RANGE,
        multi_size_range: tuple[float, float] = MULTI_SIZE_RANGE,
        partial_prob: float = PARTIAL_CAPTION_PROB,
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
        self.partial_prob = partial_prob

    def sample(self, rng: np.random.Generator) -> tuple[
        np.ndarray, str, tuple[Obj, ...], tuple[Descriptor, ...], frozenset[int]
    ]:
        """One (image, caption, objects, descriptors, class set) drawn with ``rng``."""
        kind = int(rng.choice(3, p=self.probs))
        ids = [] if kind == 2 else [
            int(c) for c in rng.choice(self.class_ids, size=kind + 1, replace=False)]
        size_range = self.single_size_range if len(ids) <= 1 else self.multi_size_range
        s = self.image_size
        image, _, _ = render_scene(rng, s, s, ids, size_range)
        objects = tuple(CLASS_ATTRIBUTES[c] for c in ids)
        partial = bool(ids) and rng.random() < self.partial_prob
        descriptors = tuple((None if partial else c, sh) for c, sh in objects)
        class_set = frozenset(ids) if ids else frozenset({0})
        return image, caption_of(descriptors), objects, descriptors, class_set

    def batch(self, k: int) -> CaptionBatch:
        """Batch number ``k`` of the stream."""
        rng = np.random.default_rng(np.random.SeedSequence([CAPTION_SEED_DOMAIN, self.seed, k]))
        out = [self.sample(rng) for _ in range(self.batch_size)]
        return CaptionBatch(
            images=np.stack([o[0] for o in out]),
            captions=[o[1] for o in out],
            objects=[o[2] for o in out],
            descriptors=[o[3] for o in out],
            class_sets=[o[4] for o in out],
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
    size_range: tuple[float, float] = SINGLE_SIZE_RANGE,
) -> tuple[np.ndarray, np.ndarray]:
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
