"""Tiny on-disk semantic segmentation datasets for the data-layer and evaluator tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

import numpy as np
from PIL import Image

from zsseg_bench.data.catalog import DatasetCatalog, MetadataCatalog
from zsseg_bench.data.datasets.load_sem_seg import load_sem_seg

CLASSES = ("background", "cat", "dog", "cow")
SEEN = [0, 1]
UNSEEN = [2, 3]


def write_pairs(root: str, labels: Sequence[np.ndarray], seed: int = 0,
                image_ext: str = "png") -> tuple[str, str]:
    """Writes ``img_<i>`` images (random RGB, lossless) and their label PNGs; returns the
    (image folder, label folder)."""
    rng = np.random.default_rng(seed)
    image_dir, label_dir = os.path.join(root, "images"), os.path.join(root, "labels")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(label_dir, exist_ok=True)
    for i, label in enumerate(labels):
        h, w = label.shape
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(image).save(os.path.join(image_dir, f"img_{i}.{image_ext}"))
        Image.fromarray(label.astype(np.uint8)).save(os.path.join(label_dir, f"img_{i}.png"))
    return image_dir, label_dir


def register_tiny(root: str, labels: Sequence[np.ndarray], classes: Sequence[str] = CLASSES,
                  seen: Sequence[int] = SEEN, unseen: Sequence[int] = UNSEEN) -> str:
    """Writes a tiny dataset under ``root`` and registers it under a fresh name."""
    image_dir, label_dir = write_pairs(root, labels)
    return register_folder(image_dir, label_dir, f"tiny_{uuid.uuid4().hex[:8]}", classes, seen,
                           unseen)


def register_folder(image_dir: str, label_dir: str, name: str,
                    classes: Sequence[str] = CLASSES, seen: Sequence[int] = SEEN,
                    unseen: Sequence[int] = UNSEEN) -> str:
    """Registers an existing folder pair (PNG images) as dataset ``name``."""
    DatasetCatalog.register(name, lambda: load_sem_seg(label_dir, image_dir, image_ext="png"))
    MetadataCatalog.get(name).set(stuff_classes=list(classes), seen_classes=list(seen),
                                  unseen_classes=list(unseen), ignore_label=255,
                                  evaluator_type="gzsl_sem_seg")
    return name


def random_labels(n: int, seed: int = 0, num_classes: int = len(CLASSES),
                  sizes: Sequence[tuple[int, int]] = ((40, 56), (48, 40), (36, 36))
                  ) -> list[np.ndarray]:
    """``n`` blocky random label maps of ``num_classes`` classes with some 255 pixels."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        coarse = rng.integers(0, num_classes, size=(h // 4 + 1, w // 4 + 1))
        label = np.kron(coarse, np.ones((4, 4), dtype=np.int64))[:h, :w]
        label[rng.random((h, w)) < 0.05] = 255
        out.append(label.astype(np.uint8))
    return out
