"""Zero-shot split mechanics: how the seen/unseen split of a dataset reaches training labels.

The split itself is data: every dataset states it once, in its metadata (``seen_classes`` /
``unseen_classes``, ids in the dataset's full class list). Labels on disk always hold the full
class ids; the split is applied on the fly by the training mapper, so no second copy of the
labels exists:

- ``inductive``: unseen pixels become :data:`IGNORE_LABEL` (255): the model never gets a
  training signal from them.
- ``transductive``: unseen pixels become :data:`UNLABELLED_LABEL` (254): distinct from ignore, so
  a trainer may pseudo-label them (self-training) while true ignore pixels stay ignored.
- ``fully``: the fully supervised upper bound (ZegCLIP's "fully" configs, ``novel_class = []``):
  every class keeps its labels; the seen / unseen split only groups the evaluation metrics.

Evaluation labels are never split: the evaluator scores all classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from zsseg_bench.config.allowed import check_value
from zsseg_bench.config.setting import Setting
from zsseg_bench.utils.errors import UserError

if TYPE_CHECKING:  # torch is imported only when a tensor is split (keeps `prepare` light)
    import torch

#: Pixels that carry no label at all (on disk and in memory).
IGNORE_LABEL = 255
#: Pixels of unseen classes in transductive training: unlabelled but usable for pseudo-labels.
UNLABELLED_LABEL = 254
#: Pixels without a label in *wide* label maps: 16-bit label PNGs of datasets with more classes
#: than uint8 holds (ADE20K-847, PASCAL Context-459; evaluation only). As detectron2's ADE20K-full
#: (``ignore_label=65535``: facebookresearch/Mask2Former
#: ``mask2former/data/datasets/register_ade20k_full.py`` @ 9b0651c).
WIDE_IGNORE_LABEL = 65535
#: The most classes a uint8 label map holds beside the reserved 254 and 255 (ids 0..253).
MAX_NARROW_CLASSES = UNLABELLED_LABEL
#: The config key of the zero-shot setting (its choices: :mod:`zsseg_bench.config.allowed`).
SETTING_KEY = "ZERO_SHOT.SETTING"


def check_setting(setting: str) -> Setting:
    """``setting`` as a :class:`Setting` if known, else raises :class:`UserError` naming the
    choices."""
    return Setting(check_value(SETTING_KEY, setting))


def zero_shot_lut(num_classes: int, unseen_classes: Sequence[int], setting: str) -> np.ndarray:
    """The 256-entry lookup table that maps full-id labels to training labels.

    Args:
        num_classes: size of the dataset's full class list (ids ``0 .. num_classes-1``).
        unseen_classes: ids of the unseen classes.
        setting: ``"inductive"``, ``"transductive"`` or ``"fully"``.

    Returns:
        uint8 array of 256 entries: identity, except unseen ids -> 255 (inductive) or 254
        (transductive); ``fully`` keeps every id. Values ``>= num_classes`` other than 255 map
        to themselves (the label reader rejects them before this point).
    """
    setting = check_setting(setting)
    if num_classes > MAX_NARROW_CLASSES:
        raise UserError(f"a dataset with {num_classes} classes collides with the reserved labels "
                        f"{UNLABELLED_LABEL} (unlabelled) and {IGNORE_LABEL} (ignore): training "
                        f"labels are uint8; datasets of wide (16-bit) labels are for evaluation "
                        f"only")
    lut = np.arange(256, dtype=np.uint8)
    unseen = np.asarray(list(unseen_classes), dtype=np.int64)
    if unseen.size and (unseen.min() < 0 or unseen.max() >= num_classes):
        raise UserError(f"unseen class ids {unseen.tolist()} are outside 0..{num_classes - 1}")
    if setting is not Setting.FULLY:
        lut[unseen] = IGNORE_LABEL if setting is Setting.INDUCTIVE else UNLABELLED_LABEL
    return lut


def apply_zero_shot_split(label: np.ndarray | torch.Tensor, metadata: Any,
                          setting: str) -> np.ndarray | torch.Tensor:
    """Applies the zero-shot split of a dataset to a training label map.

    Args:
        label: H x W label map of full class ids (255 = ignore), numpy or torch, integer dtype.
        metadata: the dataset's metadata (``stuff_classes``, ``unseen_classes``), e.g.
            ``MetadataCatalog.get("synthetic_train")``.
        setting: ``"inductive"`` (unseen -> 255) or ``"transductive"`` (unseen -> 254).

    Returns:
        A new label map of the same type, dtype and shape.
    """
    lut = zero_shot_lut(len(metadata.stuff_classes), metadata.unseen_classes, setting)
    if not isinstance(label, np.ndarray) and type(label).__module__.startswith("torch"):
        import torch

        table = torch.as_tensor(lut.astype(np.int64), device=label.device)
        return table[label.long()].to(label.dtype)
    return lut[np.asarray(label)].astype(np.asarray(label).dtype, copy=False)
