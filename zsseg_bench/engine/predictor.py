"""``Predictor``: a trained model on any image with any class names (detectron2's
``DefaultPredictor`` style).

::

    cfg = setup_cfg("configs/synthetic/zegclip.yaml", ["MODEL.WEIGHTS", "run/model_final.pth"])
    predictor = Predictor(cfg)
    out = predictor(image, ["red circle", "blue square", "background"])
    out["labels"]    # H x W ids into the class names
    out["sem_seg"]   # K x H x W scores at the image's size

The image goes through the test pipeline of the config (``INPUT.TEST_SCALE`` resize,
``TEST.MODE`` whole / slide) and the scores come back at its original size, as in evaluation.
Text embeddings are computed once per list of class names and cached. A class name is *seen*
when it names a class with training labels (the seen classes of ``DATASETS.TRAIN[0]``, all of
them when fully supervised; :mod:`zsseg_bench.data.transfer`), else *unseen*: heads that treat
the two apart (ZegCLIP's seen-score calibration) do so with custom names too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from zsseg_bench.data.image_io import read_image
from zsseg_bench.data.transforms import apply_augmentations, build_augmentations
from zsseg_bench.engine.checkpoint import build_model_with_weights
from zsseg_bench.utils.errors import UserError

__all__ = ["Predictor", "check_class_names", "IMAGE_HINT"]

#: The end of the error message of an unreadable input image.
IMAGE_HINT = "pass a readable image file (JPEG, PNG, ...)"


def check_class_names(class_names: Sequence[str]) -> list[str]:
    """The class names, stripped; an empty list, a blank name or a name given twice (ignoring
    case) is a :class:`UserError`."""
    if isinstance(class_names, str):
        raise UserError("class names must be a list of names, not one string "
                        f"({class_names!r}); split it first, e.g. 'cat,dog' -> ['cat', 'dog']")
    names = [str(n).strip() for n in class_names]
    if not names:
        raise UserError("the class list is empty: give at least one class name")
    if any(not n for n in names):
        raise UserError(f"blank class name in {list(class_names)}: every name needs a word")
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise UserError(f"class name '{name}' is given twice (as '{seen[name.lower()]}' "
                            f"too): each class once")
        seen[name.lower()] = name
    return names


class Predictor:
    """The model of ``cfg`` with the weights ``cfg.MODEL.WEIGHTS``, in eval mode on
    ``cfg.MODEL.DEVICE``; call it on one image and a list of class names.

    Args:
        cfg: a config (e.g. from :func:`~zsseg_bench.config.command_line.setup_cfg`). Empty
            ``MODEL.WEIGHTS`` keeps the trainable parts at their (seeded) initialisation.
    """

    def __init__(self, cfg: Any):
        self.cfg = cfg.clone()
        self.model, _ = build_model_with_weights(cfg, cfg.MODEL.WEIGHTS)
        self.model.eval()
        self.augmentations = build_augmentations(cfg, is_train=False)
        self.input_format = cfg.INPUT.FORMAT

    def __call__(self, image: np.ndarray | str | os.PathLike,
                 class_names: Sequence[str]) -> dict[str, Any]:
        """Segments ``image`` over ``class_names``.

        Args:
            image: ``H x W x 3`` uint8 array in ``cfg.INPUT.FORMAT`` channel order (as
                detectron2's ``DefaultPredictor``), or the path of an image file.
            class_names: the vocabulary, e.g. ``["cat", "dog", "grass"]``.

        Returns:
            ``sem_seg`` (``K x H x W`` float scores), ``labels`` (``H x W`` int64, argmax),
            ``class_names`` (the names, stripped) and ``is_seen`` (``K`` bools).
        """
        names = check_class_names(class_names)
        if isinstance(image, (str, os.PathLike)):
            image = read_image(str(image), self.input_format, hint=IMAGE_HINT)
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UserError(f"the image must be an H x W x 3 uint8 array, got shape "
                            f"{image.shape} and dtype {image.dtype}")
        height, width = image.shape[:2]
        resized, _, _ = apply_augmentations(self.augmentations, image, None,
                                            np.random.default_rng(0))
        inputs = [{"image": torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))),
                   "height": height, "width": width}]
        with torch.no_grad():
            vocab = self.model.vocabulary_from_names(names)
            scores = self.model.inference(self.model.preprocess(inputs), inputs, vocab)[0][
                "sem_seg"]
        return {"sem_seg": scores, "labels": scores.argmax(dim=0), "class_names": names,
                "is_seen": [bool(v) for v in vocab.is_seen.tolist()]}
