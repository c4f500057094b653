"""PASCAL VOC 2012 (SBD-augmented), the zero-shot benchmark of 20 classes, split 15 / 5.

The single place that states the VOC classes, the zero-shot split and the raw -> contiguous id
mapping; ``datasets/prepare_voc_sem_seg.py`` imports them from here.

Raw labels (official ``SegmentationClass`` palette PNGs and SBD ``SegmentationClassAug`` grey
PNGs alike): 0 = background, 1..20 = the classes below in this order, 255 = object boundary /
"difficult" region. The benchmark excludes background (ZegCLIP's VOC-20 pipeline,
``configs/_base_/datasets/voc12_20_512x512.py``: ``reduce_zero_label=True``;
ZiqinZhou66/ZegCLIP @ 9ba4bb5): it becomes ignore (255) like the boundary, and the 20 classes
become ids 0..19.

Zero-shot split: unseen = pottedplant, sheep, sofa, train, tvmonitor (ids 15..19), as in
ZegCLIP's ``configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py`` (``novel_class = [15, 16,
17, 18, 19]``; ZiqinZhou66/ZegCLIP @ 9ba4bb5) and zsseg's
``mask_former/data/datasets/register_voc_seg.py`` (MendelXu/zsseg.baseline @ d77c3af).
"""

from __future__ import annotations

import os

from zsseg_bench.data.datasets.prepared import BenchmarkSpec, PreparedSplit
from zsseg_bench.data.zero_shot import IGNORE_LABEL

#: The 20 VOC classes, in the order of their raw ids 1..20 (official VOC names).
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
#: Unseen classes (zsseg / ZegCLIP VOC split; sources in the module docstring).
VOC_UNSEEN: tuple[str, ...] = ("pottedplant", "sheep", "sofa", "train", "tvmonitor")

#: Raw id of background in the official label PNGs (excluded: mapped to ignore).
RAW_BACKGROUND = 0
#: Raw id of the object boundary / difficult pixels in the official label PNGs.
RAW_VOID = 255

#: Raw label value -> contiguous id (every value not listed is unexpected).
RAW_TO_CONTIGUOUS: dict[int, int] = {
    RAW_BACKGROUND: IGNORE_LABEL,
    RAW_VOID: IGNORE_LABEL,
    **{raw: raw - 1 for raw in range(1, len(VOC_CLASSES) + 1)},
}

#: Folder of the official release under the datasets root.
VOC_DIR = os.path.join("VOCdevkit", "VOC2012")
#: Folder of the prepared label maps (one sub-folder per split, a manifest beside each).
LABELS_DIRNAME = "annotations_zsseg"

VOC_BENCHMARK = BenchmarkSpec(
    key="voc",
    classes=VOC_CLASSES,
    unseen_names=VOC_UNSEEN,
    splits=(
        # train_aug: VOC 2012 train + SBD train/val minus VOC 2012 val (10,582 images).
        PreparedSplit("voc_zs_train", "train_aug", os.path.join(VOC_DIR, "JPEGImages"),
                      os.path.join(VOC_DIR, LABELS_DIRNAME, "train_aug"), 10582),
        # val: the official VOC 2012 segmentation val list (1,449 images).
        PreparedSplit("voc_zs_val", "val", os.path.join(VOC_DIR, "JPEGImages"),
                      os.path.join(VOC_DIR, LABELS_DIRNAME, "val"), 1449),
    ),
    prepare_script="datasets/prepare_voc_sem_seg.py",
    split_source="zsseg / ZegCLIP PASCAL VOC 15/5 split (ZegCLIP configs/voc12 novel_class)",
)


def register_all_voc(root: str) -> None:
    """Registers ``voc_zs_train`` and ``voc_zs_val`` under datasets root ``root``."""
    VOC_BENCHMARK.register(root)
