"""COCO-Stuff 164k, the zero-shot benchmark of 171 classes, split 156 / 15.

The single place that states the COCO-Stuff classes, the zero-shot split and the raw ->
contiguous id mapping; ``datasets/prepare_coco_stuff_sem_seg.py`` imports them from here.

Raw labels: the official ``stuffthingmaps_trainval2017`` grey PNGs hold ``COCO id - 1``
(0..181: 80 thing classes with ids 1..90 and 91 stuff classes with ids 92..182) and 255 for
unlabelled pixels. The 11 COCO ids that name no class (12, 26, 29, 30, 45, 66, 68, 69, 71, 83,
91) never occur in the official maps; should one occur it becomes ignore, like unlabelled.
The 171 classes take contiguous ids 0..170 in ascending COCO id order (as Detectron2 /
MaskFormer / zsseg do).

Zero-shot split: the 15 unseen classes of ZegCLIP's
``configs/coco/vpt_seg_zero_vit-b_512x512_80k_12_100_multi.py`` (``novel_class = [19, 23, 28,
29, 36, 51, 76, 88, 94, 112, 133, 136, 137, 157, 160]``; ZiqinZhou66/ZegCLIP @ 9ba4bb5), the
same as zsseg's ``COCO_NOVEL_CATEGORIES`` (``mask_former/data/datasets/register_coco_stuff.py``;
MendelXu/zsseg.baseline @ d77c3af).
"""

from __future__ import annotations

import os

from zsseg_bench.data.datasets.prepared import BenchmarkSpec, PreparedSplit
from zsseg_bench.data.zero_shot import IGNORE_LABEL

#: (COCO id, name) of the 171 classes, ascending COCO id: 80 things, then 91 stuff classes.
COCO_STUFF_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"),
    (13, "stop sign"), (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"),
    (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"), (22, "elephant"), (23, "bear"),
    (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"), (31, "handbag"),
    (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"),
    (46, "wine glass"), (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"),
    (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"), (56, "broccoli"),
    (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"),
    (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"),
    (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"),
    (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
    (92, "banner"), (93, "blanket"), (94, "branch"), (95, "bridge"), (96, "building-other"),
    (97, "bush"), (98, "cabinet"), (99, "cage"), (100, "cardboard"), (101, "carpet"),
    (102, "ceiling-other"), (103, "ceiling-tile"), (104, "cloth"), (105, "clothes"),
    (106, "clouds"), (107, "counter"), (108, "cupboard"), (109, "curtain"), (110, "desk-stuff"),
    (111, "dirt"), (112, "door-stuff"), (113, "fence"), (114, "floor-marble"),
    (115, "floor-other"), (116, "floor-stone"), (117, "floor-tile"), (118, "floor-wood"),
    (119, "flower"), (120, "fog"), (121, "food-other"), (122, "fruit"),
    (123, "furniture-other"), (124, "grass"), (125, "gravel"), (126, "ground-other"),
    (127, "hill"), (128, "house"), (129, "leaves"), (130, "light"), (131, "mat"),
    (132, "metal"), (133, "mirror-stuff"), (134, "moss"), (135, "mountain"), (136, "mud"),
    (137, "napkin"), (138, "net"), (139, "paper"), (140, "pavement"), (141, "pillow"),
    (142, "plant-other"), (143, "plastic"), (144, "platform"), (145, "playingfield"),
    (146, "railing"), (147, "railroad"), (148, "river"), (149, "road"), (150, "rock"),
    (151, "roof"), (152, "rug"), (153, "salad"), (154, "sand"), (155, "sea"), (156, "shelf"),
    (157, "sky-other"), (158, "skyscraper"), (159, "snow"), (160, "solid-other"),
    (161, "stairs"), (162, "stone"), (163, "straw"), (164, "structural-other"), (165, "table"),
    (166, "tent"), (167, "textile-other"), (168, "towel"), (169, "tree"), (170, "vegetable"),
    (171, "wall-brick"), (172, "wall-concrete"), (173, "wall-other"), (174, "wall-panel"),
    (175, "wall-stone"), (176, "wall-tile"), (177, "wall-wood"), (178, "water-other"),
    (179, "waterdrops"), (180, "window-blind"), (181, "window-other"), (182, "wood"),
)
#: Class names in contiguous id order.
COCO_STUFF_CLASSES: tuple[str, ...] = tuple(name for _, name in COCO_STUFF_CATEGORIES)
#: Unseen classes (zsseg / ZegCLIP COCO-Stuff split, sources above; 8 things, 7 stuff).
COCO_STUFF_UNSEEN: tuple[str, ...] = (
    "cow", "giraffe", "suitcase", "frisbee", "skateboard", "carrot", "scissors", "cardboard",
    "clouds", "grass", "playingfield", "river", "road", "tree", "wall-concrete",
)

#: Largest COCO id (``wood``); raw PNG values are ``COCO id - 1``, so 0..181 are valid.
MAX_COCO_ID = 182
#: Raw value of unlabelled pixels in the official maps.
RAW_UNLABELLED = 255

#: Raw PNG value -> contiguous id (every value not listed is unexpected).
RAW_TO_CONTIGUOUS: dict[int, int] = {
    **{raw: IGNORE_LABEL for raw in range(MAX_COCO_ID)},  # COCO ids without a class
    **{coco_id - 1: i for i, (coco_id, _) in enumerate(COCO_STUFF_CATEGORIES)},
    RAW_UNLABELLED: IGNORE_LABEL,
}

#: Folder of the official release under the datasets root.
COCO_DIR = "coco"
#: Folder of the official stuff+thing maps (``stuffthingmaps_trainval2017.zip`` holds
#: ``train2017/`` and ``val2017/`` at its top: ``unzip ... -d coco/stuffthingmaps_trainval2017``).
RAW_MAPS_DIRNAME = "stuffthingmaps_trainval2017"
#: Where the prepare script looks for the official maps, in order: ours, then
#: ``coco/stuffthingmaps``, the folder zsseg's and MaskFormer's users unzip them into
#: (MendelXu/zsseg.baseline @ d77c3af: README.md, "For COCO Stuff 164k", and
#: datasets/prepare_coco_stuff_164k_sem_seg.py, which reads coco/stuffthingmaps/<split>).
RAW_MAPS_DIRNAMES = (RAW_MAPS_DIRNAME, "stuffthingmaps")
#: Folder of the prepared label maps (one sub-folder per split, a manifest beside each).
LABELS_DIRNAME = "stuffthingmaps_zsseg"

COCO_STUFF_BENCHMARK = BenchmarkSpec(
    key="coco_stuff",
    classes=COCO_STUFF_CLASSES,
    unseen_names=COCO_STUFF_UNSEEN,
    splits=(
        PreparedSplit("coco_stuff_zs_train", "train2017", os.path.join(COCO_DIR, "train2017"),
                      os.path.join(COCO_DIR, LABELS_DIRNAME, "train2017"), 118287),
        PreparedSplit("coco_stuff_zs_val", "val2017", os.path.join(COCO_DIR, "val2017"),
                      os.path.join(COCO_DIR, LABELS_DIRNAME, "val2017"), 5000),
    ),
    prepare_script="datasets/prepare_coco_stuff_sem_seg.py",
    split_source="zsseg / ZegCLIP COCO-Stuff 156/15 split (ZegCLIP configs/coco novel_class)",
)


def register_all_coco_stuff(root: str) -> None:
    """Registers ``coco_stuff_zs_train`` and ``coco_stuff_zs_val`` under ``root``."""
    COCO_STUFF_BENCHMARK.register(root)
