"""The toy world (``synthetic`` dataset): classes, split, renderer, preparation, caption stream.

Public, stable names (import them from here, not from the submodules):

- :data:`CLASS_NAMES` (tuple of str, id order, ``CLASS_NAMES[0] == "background"``),
  :data:`NUM_CLASSES`, :data:`BACKGROUND_ID`, :data:`SEEN_CLASS_IDS`, :data:`UNSEEN_CLASS_IDS`,
  :data:`OBJECT_CLASS_IDS`, :data:`CLASS_ATTRIBUTES`, :data:`COLOURS`, :data:`SHAPES`,
  :data:`WORLD_VERSION`.
- :data:`DATASET_DIRNAME` (``"synthetic"``), :data:`SPLITS` (``("train", "val")``),
  :func:`prepare_synthetic`, :func:`dataset_is_complete`, :func:`image_path`, :func:`label_path`.
- :func:`render_segmentation_sample` (one deterministic image + label map).
- :class:`CaptionStream`, :class:`CaptionBatch`, :func:`caption_matches`, :func:`make_probe_set`
  (CLIP pretraining / zero-shot probe).
"""

from .captions import CaptionBatch, CaptionStream, caption_matches, make_probe_set  # noqa: E402
from .prepare import (  # noqa: E402
    DATASET_DIRNAME,
    DEFAULT_NUM_TRAIN,
    DEFAULT_NUM_VAL,
    DEFAULT_SEED,
    SPLITS,
    dataset_is_complete,
    image_path,
    label_path,
    prepare_synthetic,
)
from .render import render_scene, render_segmentation_sample  # noqa: E402
from .world import (
    BACKGROUND_ID,
    BACKGROUND_NAME,
    CLASS_ATTRIBUTES,
    CLASS_NAMES,
    COLOURS,
    NUM_CLASSES,
    OBJECT_CLASS_IDS,
    SEEN_CLASS_IDS,
    SHAPES,
    UNSEEN_CLASS_IDS,
    WORLD_VERSION,
    check_split,
)

__all__ = [
    "BACKGROUND_ID",
    "BACKGROUND_NAME",
    "CLASS_ATTRIBUTES",
    "CLASS_NAMES",
    "COLOURS",
    "NUM_CLASSES",
    "OBJECT_CLASS_IDS",
    "SEEN_CLASS_IDS",
    "SHAPES",
    "UNSEEN_CLASS_IDS",
    "WORLD_VERSION",
    "check_split",
    "render_scene",
    "render_segmentation_sample",
    "DATASET_DIRNAME",
    "DEFAULT_NUM_TRAIN",
    "DEFAULT_NUM_VAL",
    "DEFAULT_SEED",
    "SPLITS",
    "dataset_is_complete",
    "image_path",
    "label_path",
    "prepare_synthetic",
    "CaptionBatch",
    "CaptionStream",
    "caption_matches",
    "make_probe_set",
]
