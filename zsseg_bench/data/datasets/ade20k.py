"""ADE20K-150 (the Scene Parsing benchmark, ``ADEChallengeData2016``), an evaluation-only dataset.

The single place that states the 150 classes and the raw -> contiguous id mapping;
``datasets/prepare_ade20k_sem_seg.py`` imports them from here.

Raw labels: the official ``annotations/validation/<name>.png`` grey PNGs hold 0 for "other
objects" (not evaluated) and 1..150 for the classes of ``objectInfo150.txt`` in its order
(CSAILVision/sceneparsing ``README.md`` @ 07a8e27). As Mask2Former's converter
(``datasets/prepare_ade20k_sem_seg.py``: ``img - 1``, 0 becomes 255; facebookresearch/Mask2Former
@ 9b0651c), class ``k`` takes id ``k - 1`` and 0 becomes ignore (255).

Class names: the first name of each ``objectInfo150`` entry, as CAT-Seg registers them
(``cat_seg/data/datasets/register_ade20k_150.py``, cvlab-kaist/CAT-Seg @ 6d3a188; its trailing
space of "bed " dropped). detectron2's ``ADE20K_SEM_SEG_CATEGORIES``
(``detectron2/data/datasets/builtin_meta.py`` @ 02b5c4e) lists the same classes in the same
order, some with their synonyms ("road, route").

Evaluation only: no zero-shot split of its own. Its metadata calls every class seen; evaluated
after training on another dataset, a class is seen iff a class of that name had training labels
(:mod:`zsseg_bench.data.transfer`). Only the validation split is registered.
"""

from __future__ import annotations

import os

from zsseg_bench.data.datasets.prepared import BenchmarkSpec, PreparedSplit
from zsseg_bench.data.zero_shot import IGNORE_LABEL

#: The 150 classes in the order of their raw ids 1..150.
ADE20K_150_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing",
    "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
    "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister",
    "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
)

#: Raw value of "other objects" (not evaluated).
RAW_OTHER = 0
#: Raw label value -> contiguous id (every value not listed is unexpected).
RAW_TO_CONTIGUOUS: dict[int, int] = {
    RAW_OTHER: IGNORE_LABEL,
    **{raw: raw - 1 for raw in range(1, len(ADE20K_150_CLASSES) + 1)},
}

#: Folder of the official release under the datasets root.
ADE_CHALLENGE_DIR = "ADEChallengeData2016"
#: Folder of the prepared label maps (one sub-folder per split, a manifest beside each).
LABELS_DIRNAME = "annotations_zsseg"
#: Validation images (CSAILVision/sceneparsing README.md @ 07a8e27: "the validation data
#: contains 2000 images").
OFFICIAL_VAL_COUNT = 2000
#: Why no class is unseen (metadata ``split_source``), shared by the evaluation-only datasets.
EVALUATION_ONLY = ("evaluation only: no zero-shot split of its own (every class seen); across "
                   "datasets a class is seen iff a class of that name has training labels "
                   "(zsseg_bench.data.transfer)")

ADE20K_150_BENCHMARK = BenchmarkSpec(
    key="ade20k_150",
    classes=ADE20K_150_CLASSES,
    unseen_names=(),
    splits=(
        PreparedSplit("ade20k_150_val", "validation",
                      os.path.join(ADE_CHALLENGE_DIR, "images", "validation"),
                      os.path.join(ADE_CHALLENGE_DIR, LABELS_DIRNAME, "validation"),
                      OFFICIAL_VAL_COUNT),
    ),
    prepare_script="datasets/prepare_ade20k_sem_seg.py",
    split_source=EVALUATION_ONLY,
)


def register_all_ade20k_150(root: str) -> None:
    """Registers ``ade20k_150_val`` under datasets root ``root``."""
    ADE20K_150_BENCHMARK.register(root)
