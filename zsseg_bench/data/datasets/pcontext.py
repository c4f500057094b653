"""PASCAL Context (59 classes), the zero-shot benchmark split 49 / 10.

The single place that states the Context-59 classes, the zero-shot split and the raw ->
contiguous id mappings; ``datasets/prepare_pascal_context_sem_seg.py`` imports them from here.

Raw labels come in the full label space of PASCAL Context (``labels.txt`` of the official
release: ids 1..459, 0 = unlabelled), both in the official ``trainval_merged.json`` (PASCAL in
Detail, the file zsseg's README and mmseg's converter read; ``category_id`` of each segment)
and in the official ``trainval.tar.gz`` (one ``.mat`` per image, key ``LabelMap``). The 59
classes keep their full-space ids below; every other full id and 0 become ignore (255).

The 59 classes take contiguous ids 0..58 in ascending full id order, which is alphabetical
and the order of mmseg's ``PascalContextDataset59`` (so the ids of mmseg's
``SegmentationClassContext`` PNGs, 0 = background and 1..59, are ours plus one: that format
is accepted too).

Zero-shot split: ZegCLIP released no Context configs; we use OTSeg's 59-class split (OTSeg
``configs/context/vpt_context_vpt.py``: ``novel_class = [19, 33, 48, 14, 7, 24, 6, 54, 31, 0]``
in this same id order; cubeyoung/OTSeg @ 3a22e5a).
"""

from __future__ import annotations

import os

from zsseg_bench.data.datasets.prepared import BenchmarkSpec, PreparedSplit
from zsseg_bench.data.zero_shot import IGNORE_LABEL

#: (full-space id from ``labels.txt``, name) of the 59 classes, ascending id (= alphabetical).
PCONTEXT59_CATEGORIES: tuple[tuple[int, str], ...] = (
    (2, "aeroplane"), (9, "bag"), (18, "bed"), (19, "bedclothes"), (22, "bench"),
    (23, "bicycle"), (25, "bird"), (31, "boat"), (33, "book"), (34, "bottle"),
    (44, "building"), (45, "bus"), (46, "cabinet"), (59, "car"), (65, "cat"), (68, "ceiling"),
    (72, "chair"), (80, "cloth"), (85, "computer"), (98, "cow"), (104, "cup"),
    (105, "curtain"), (113, "dog"), (115, "door"), (144, "fence"), (158, "floor"),
    (159, "flower"), (162, "food"), (187, "grass"), (189, "ground"), (207, "horse"),
    (220, "keyboard"), (232, "light"), (258, "motorbike"), (259, "mountain"), (260, "mouse"),
    (284, "person"), (295, "plate"), (296, "platform"), (308, "pottedplant"), (324, "road"),
    (326, "rock"), (347, "sheep"), (349, "shelves"), (354, "sidewalk"), (355, "sign"),
    (360, "sky"), (366, "snow"), (368, "sofa"), (397, "table"), (415, "track"),
    (416, "train"), (420, "tree"), (424, "truck"), (427, "tvmonitor"), (440, "wall"),
    (445, "water"), (454, "window"), (458, "wood"),
)
#: Class names in contiguous id order.
PCONTEXT59_CLASSES: tuple[str, ...] = tuple(name for _, name in PCONTEXT59_CATEGORIES)
#: Unseen classes (OTSeg's Context-59 split, source above).
PCONTEXT59_UNSEEN: tuple[str, ...] = (
    "cow", "motorbike", "sofa", "cat", "boat", "fence", "bird", "tvmonitor", "keyboard",
    "aeroplane",
)

#: Number of labels of the full PASCAL Context label space (``labels.txt``: 1..459).
NUM_FULL_LABELS = 459
#: Full-space value of pixels without a label.
FULL_UNLABELLED = 0
#: Value of background in mmseg's ``SegmentationClassContext`` PNGs.
MMSEG_BACKGROUND = 0

#: Full-space id (JSON ``category_id`` / ``.mat`` ``LabelMap``) -> contiguous id.
FULL_TO_CONTIGUOUS: dict[int, int] = {
    **{full: IGNORE_LABEL for full in range(NUM_FULL_LABELS + 1)},
    **{full: i for i, (full, _) in enumerate(PCONTEXT59_CATEGORIES)},
}
#: mmseg ``SegmentationClassContext`` value -> contiguous id (255 accepted as ignore).
MMSEG_TO_CONTIGUOUS: dict[int, int] = {
    MMSEG_BACKGROUND: IGNORE_LABEL,
    IGNORE_LABEL: IGNORE_LABEL,
    **{i + 1: i for i in range(len(PCONTEXT59_CATEGORIES))},
}

#: Images per split of each label source. trainval_merged.json holds 10,100 images (the PASCAL in
#: Detail API's demo prints "total img #10100": ccvl/detail-api
#: PythonAPI/ipynb/detailDemoEvalCls.ipynb @ ec7d283), split by their ``phase`` into 4,996
#: train / 5,104 val; mmseg's converter writes its lists from these phases
#: (tools/convert_datasets/pascal_context.py, open-mmlab/mmsegmentation @ 159db2f). The
#: ``.mat`` source is split by VOC 2010's ImageSets/Main lists, 4,998 / 5,105 (the 10,103
#: images of VOC 2010 trainval; trainval_merged.json has three fewer).
OFFICIAL_COUNTS: dict[str, dict[str, int]] = {
    "json": {"train": 4996, "val": 5104},
    "mmseg": {"train": 4996, "val": 5104},
    "mat": {"train": 4998, "val": 5105},
}

#: Folder of the VOC 2010 release (images, split lists) under the datasets root.
VOC2010_DIR = os.path.join("VOCdevkit", "VOC2010")
#: Folder of the prepared label maps (one sub-folder per split, a manifest beside each).
LABELS_DIRNAME = "annotations_zsseg"

PCONTEXT_BENCHMARK = BenchmarkSpec(
    key="pcontext",
    classes=PCONTEXT59_CLASSES,
    unseen_names=PCONTEXT59_UNSEEN,
    splits=(
        # The phases of trainval_merged.json, the reference source (OFFICIAL_COUNTS).
        PreparedSplit("pcontext_zs_train", "train", os.path.join(VOC2010_DIR, "JPEGImages"),
                      os.path.join(VOC2010_DIR, LABELS_DIRNAME, "pc59_train"),
                      OFFICIAL_COUNTS["json"]["train"]),
        PreparedSplit("pcontext_zs_val", "val", os.path.join(VOC2010_DIR, "JPEGImages"),
                      os.path.join(VOC2010_DIR, LABELS_DIRNAME, "pc59_val"),
                      OFFICIAL_COUNTS["json"]["val"]),
    ),
    prepare_script="datasets/prepare_pascal_context_sem_seg.py",
    split_source="OTSeg PASCAL Context-59 49/10 split (OTSeg configs/context novel_class)",
)


def register_all_pcontext(root: str) -> None:
    """Registers ``pcontext_zs_train`` and ``pcontext_zs_val`` under ``root``."""
    PCONTEXT_BENCHMARK.register(root)
