"""PASCAL Context: the 59-class zero-shot benchmark split 49 / 10, and the full 459 classes
(evaluation only, wide labels).

The single place that states the Context-59 classes, the zero-shot split, the 459 classes and
the raw -> contiguous id mappings; ``datasets/prepare_pascal_context_sem_seg.py`` imports them
from here.

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

Context-459 (``pcontext_459_val``): every label of ``labels.txt`` is a class; full id ``k``
(1..459) takes id ``k - 1`` and 0 (unlabelled) becomes 65535 = ignore, in 16-bit label PNGs, as
SAN (``datasets/prepare_pcontext_sem_seg_459cls.py``: ``LabelMap - 1``, and
``san/data/datasets/register_pcontext.py``: ``ignore_label=65535``; MendelXu/SAN @ e19262d) and
CAT-Seg (``datasets/prepare_pascal_context_459.py``, cvlab-kaist/CAT-Seg @ 6d3a188) prepare it.
Evaluation only: no zero-shot split of its own (every class seen; see
:mod:`zsseg_bench.data.transfer`); only the val split is registered.
"""

from __future__ import annotations

import os

from zsseg_bench.data.datasets.ade20k import EVALUATION_ONLY
from zsseg_bench.data.datasets.prepared import BenchmarkSpec, PreparedSplit
from zsseg_bench.data.zero_shot import IGNORE_LABEL, WIDE_IGNORE_LABEL

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

#: The 459 labels of ``labels.txt`` in id order (ids 1..459), as CAT-Seg spells them
#: (``_get_pascal_context_459_meta`` in ``cat_seg/data/datasets/register_pascal_context.py``,
#: cvlab-kaist/CAT-Seg @ 6d3a188), which agrees with the 59 names above; SAN
#: (``san/data/datasets/register_pcontext.py`` @ e19262d) spaces 94 of them ("air conditioner").
PCONTEXT459_CLASSES: tuple[str, ...] = (
    "accordion", "aeroplane", "airconditioner", "antenna", "artillery", "ashtray", "atrium",
    "babycarriage", "bag", "ball", "balloon", "bambooweaving", "barrel", "baseballbat", "basket",
    "basketballbackboard", "bathtub", "bed", "bedclothes", "beer", "bell", "bench", "bicycle",
    "binoculars", "bird", "birdcage", "birdfeeder", "birdnest", "blackboard", "board", "boat",
    "bone", "book", "bottle", "bottleopener", "bowl", "box", "bracelet", "brick", "bridge",
    "broom", "brush", "bucket", "building", "bus", "cabinet", "cabinetdoor", "cage", "cake",
    "calculator", "calendar", "camel", "camera", "cameralens", "can", "candle", "candleholder",
    "cap", "car", "card", "cart", "case", "casetterecorder", "cashregister", "cat", "cd",
    "cdplayer", "ceiling", "cellphone", "cello", "chain", "chair", "chessboard", "chicken",
    "chopstick", "clip", "clippers", "clock", "closet", "cloth", "clothestree", "coffee",
    "coffeemachine", "comb", "computer", "concrete", "cone", "container", "controlbooth",
    "controller", "cooker", "copyingmachine", "coral", "cork", "corkscrew", "counter", "court",
    "cow", "crabstick", "crane", "crate", "cross", "crutch", "cup", "curtain", "cushion",
    "cuttingboard", "dais", "disc", "disccase", "dishwasher", "dock", "dog", "dolphin", "door",
    "drainer", "dray", "drinkdispenser", "drinkingmachine", "drop", "drug", "drum", "drumkit",
    "duck", "dumbbell", "earphone", "earrings", "egg", "electricfan", "electriciron",
    "electricpot", "electricsaw", "electronickeyboard", "engine", "envelope", "equipment",
    "escalator", "exhibitionbooth", "extinguisher", "eyeglass", "fan", "faucet", "faxmachine",
    "fence", "ferriswheel", "fireextinguisher", "firehydrant", "fireplace", "fish", "fishtank",
    "fishbowl", "fishingnet", "fishingpole", "flag", "flagstaff", "flame", "flashlight", "floor",
    "flower", "fly", "foam", "food", "footbridge", "forceps", "fork", "forklift", "fountain",
    "fox", "frame", "fridge", "frog", "fruit", "funnel", "furnace", "gamecontroller",
    "gamemachine", "gascylinder", "gashood", "gasstove", "giftbox", "glass", "glassmarble",
    "globe", "glove", "goal", "grandstand", "grass", "gravestone", "ground", "guardrail", "guitar",
    "gun", "hammer", "handcart", "handle", "handrail", "hanger", "harddiskdrive", "hat", "hay",
    "headphone", "heater", "helicopter", "helmet", "holder", "hook", "horse",
    "horse-drawncarriage", "hot-airballoon", "hydrovalve", "ice", "inflatorpump", "ipod", "iron",
    "ironingboard", "jar", "kart", "kettle", "key", "keyboard", "kitchenrange", "kite", "knife",
    "knifeblock", "ladder", "laddertruck", "ladle", "laptop", "leaves", "lid", "lifebuoy", "light",
    "lightbulb", "lighter", "line", "lion", "lobster", "lock", "machine", "mailbox", "mannequin",
    "map", "mask", "mat", "matchbook", "mattress", "menu", "metal", "meterbox", "microphone",
    "microwave", "mirror", "missile", "model", "money", "monkey", "mop", "motorbike", "mountain",
    "mouse", "mousepad", "musicalinstrument", "napkin", "net", "newspaper", "oar", "ornament",
    "outlet", "oven", "oxygenbottle", "pack", "pan", "paper", "paperbox", "papercutter",
    "parachute", "parasol", "parterre", "patio", "pelage", "pen", "pencontainer", "pencil",
    "person", "photo", "piano", "picture", "pig", "pillar", "pillow", "pipe", "pitcher", "plant",
    "plastic", "plate", "platform", "player", "playground", "pliers", "plume", "poker",
    "pokerchip", "pole", "pooltable", "postcard", "poster", "pot", "pottedplant", "printer",
    "projector", "pumpkin", "rabbit", "racket", "radiator", "radio", "rail", "rake", "ramp",
    "rangehood", "receiver", "recorder", "recreationalmachines", "remotecontrol", "road", "robot",
    "rock", "rocket", "rockinghorse", "rope", "rug", "ruler", "runway", "saddle", "sand", "saw",
    "scale", "scanner", "scissors", "scoop", "screen", "screwdriver", "sculpture", "scythe",
    "sewer", "sewingmachine", "shed", "sheep", "shell", "shelves", "shoe", "shoppingcart",
    "shovel", "sidecar", "sidewalk", "sign", "signallight", "sink", "skateboard", "ski", "sky",
    "sled", "slippers", "smoke", "snail", "snake", "snow", "snowmobiles", "sofa", "spanner",
    "spatula", "speaker", "speedbump", "spicecontainer", "spoon", "sprayer", "squirrel", "stage",
    "stair", "stapler", "stick", "stickynote", "stone", "stool", "stove", "straw", "stretcher",
    "sun", "sunglass", "sunshade", "surveillancecamera", "swan", "sweeper", "swimring",
    "swimmingpool", "swing", "switch", "table", "tableware", "tank", "tap", "tape", "tarp",
    "telephone", "telephonebooth", "tent", "tire", "toaster", "toilet", "tong", "tool",
    "toothbrush", "towel", "toy", "toycar", "track", "train", "trampoline", "trashbin", "tray",
    "tree", "tricycle", "tripod", "trophy", "truck", "tube", "turtle", "tvmonitor", "tweezers",
    "typewriter", "umbrella", "unknown", "vacuumcleaner", "vendingmachine", "videocamera",
    "videogameconsole", "videoplayer", "videotape", "violin", "wakeboard", "wall", "wallet",
    "wardrobe", "washingmachine", "watch", "water", "waterdispenser", "waterpipe",
    "waterskateboard", "watermelon", "whale", "wharf", "wheel", "wheelchair", "window",
    "windowblinds", "wineglass", "wire", "wood", "wool",
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
#: Full-space id -> contiguous id of Context-459 (wide labels).
FULL_TO_459: dict[int, int] = {
    FULL_UNLABELLED: WIDE_IGNORE_LABEL,
    **{full: full - 1 for full in range(1, NUM_FULL_LABELS + 1)},
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


PCONTEXT459_BENCHMARK = BenchmarkSpec(
    key="pcontext_459",
    classes=PCONTEXT459_CLASSES,
    unseen_names=(),
    splits=(
        # 5,104 val images from trainval_merged.json, 5,105 from the .mat release
        # (OFFICIAL_COUNTS; the prepare script checks the count of the source it read).
        PreparedSplit("pcontext_459_val", "val", os.path.join(VOC2010_DIR, "JPEGImages"),
                      os.path.join(VOC2010_DIR, LABELS_DIRNAME, "pc459_val"),
                      OFFICIAL_COUNTS["json"]["val"]),
    ),
    prepare_script="datasets/prepare_pascal_context_sem_seg.py",
    split_source=EVALUATION_ONLY,
    ignore_label=WIDE_IGNORE_LABEL,
)


def register_all_pcontext(root: str) -> None:
    """Registers ``pcontext_zs_train``, ``pcontext_zs_val`` and ``pcontext_459_val`` under
    ``root``."""
    PCONTEXT_BENCHMARK.register(root)
    PCONTEXT459_BENCHMARK.register(root)
