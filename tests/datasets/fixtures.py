"""Tiny fixtures in the official raw formats of VOC 2012, COCO-Stuff and PASCAL Context.

Each writer puts a few small images and their raw labels (palette / grey / raw-id PNGs, ``.mat``
files, PASCAL in Detail JSON) plus the official list files under a datasets root, and returns
the raw label arrays so tests can check the prepared ids pixel by pixel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "datasets"


def run_script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs ``datasets/<name>`` through its command line (captured output, no check)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True,
                          text=True, env=full_env, cwd=REPO, timeout=120)


def image_shapes(n: int) -> list[tuple[int, int]]:
    """Distinct (height, width) per image, never square (catches transposed labels)."""
    return [(10 + 2 * i, 17 + 3 * i) for i in range(n)]


def write_jpeg(path: Path, height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)


def random_raw(shape: tuple[int, int], values: np.ndarray, seed: int) -> np.ndarray:
    """A raw label map holding every value of ``values`` (if it fits) in random places."""
    rng = np.random.default_rng(seed)
    n = shape[0] * shape[1]
    flat = np.resize(values, n) if n >= len(values) else rng.choice(values, n)
    return rng.permutation(flat).reshape(shape)


def voc_palette() -> list[int]:
    """The 256-colour VOC palette (bit-interleaved colour map of the VOC devkit)."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def write_palette_png(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(ids.astype(np.uint8), mode="P")
    img.putpalette(voc_palette())
    img.save(path)


def write_grey_png(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids.astype(np.uint8), mode="L").save(path)


def write_list(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# ---------------------------------------------------------------------------------------------
# PASCAL VOC 2012 + SBD
# ---------------------------------------------------------------------------------------------
VOC_RAW_VALUES = np.array([*range(21), 255])
VOC_TRAIN = ["2007_000032", "2008_000123", "2009_004567"]
VOC_VAL = ["2007_000033", "2010_001234"]


def make_voc(root: Path) -> dict[str, np.ndarray]:
    """VOCdevkit/VOC2012 with JPEGImages, SegmentationClass (palette), SegmentationClassAug
    (grey), val.txt and a DeepLab-style train_aug.txt; returns stem -> raw label."""
    voc = root / "VOCdevkit" / "VOC2012"
    raws = {}
    stems = VOC_TRAIN + VOC_VAL
    for i, (stem, shape) in enumerate(zip(stems, image_shapes(len(stems)))):
        write_jpeg(voc / "JPEGImages" / f"{stem}.jpg", *shape, seed=i)
        raws[stem] = random_raw(shape, VOC_RAW_VALUES, seed=100 + i)
        # SBD's SegmentationClassAug holds every image (train_aug and val), in grey.
        write_grey_png(voc / "SegmentationClassAug" / f"{stem}.png", raws[stem])
        if stem in VOC_VAL:
            write_palette_png(voc / "SegmentationClass" / f"{stem}.png", raws[stem])
    # an image of no split, as in the real JPEGImages folder
    write_jpeg(voc / "JPEGImages" / "2012_999999.jpg", 8, 9, seed=99)
    write_list(voc / "ImageSets" / "Segmentation" / "val.txt", VOC_VAL)
    write_list(voc / "ImageSets" / "Segmentation" / "train_aug.txt",
               [f"/JPEGImages/{s}.jpg /SegmentationClassAug/{s}.png" for s in VOC_TRAIN])
    return raws


#: VOC train images SBD lacks (VOC 2007 images): in mmseg's layout, labelled in
#: SegmentationClass only.
VOC_TRAIN_NOT_IN_SBD = VOC_TRAIN[:1]


def make_voc_mmseg(root: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """VOCdevkit/VOC2012 as mmseg's ``tools/convert_datasets/voc_aug.py`` leaves it:
    SegmentationClass (palette) for VOC train + val, SegmentationClassAug (grey) converted
    from every SBD ``.mat`` file (which cover a VOC val image too, but not VOC 2007 images),
    ``trainaug.txt`` and ``aug.txt`` of bare names. SBD and VOC label the images both hold
    differently (as the real ones do: SBD has no boundary class).

    Returns:
        (stem -> SegmentationClass raw label, stem -> SegmentationClassAug raw label).
    """
    voc = root / "VOCdevkit" / "VOC2012"
    voc_raws, sbd_raws = {}, {}
    stems = VOC_TRAIN + VOC_VAL
    sbd_values = np.arange(21)
    for i, (stem, shape) in enumerate(zip(stems, image_shapes(len(stems)))):
        write_jpeg(voc / "JPEGImages" / f"{stem}.jpg", *shape, seed=i)
        voc_raws[stem] = random_raw(shape, VOC_RAW_VALUES, seed=100 + i)
        write_palette_png(voc / "SegmentationClass" / f"{stem}.png", voc_raws[stem])
        if stem not in VOC_TRAIN_NOT_IN_SBD:
            sbd_raws[stem] = random_raw(shape, sbd_values, seed=400 + i)
            write_grey_png(voc / "SegmentationClassAug" / f"{stem}.png", sbd_raws[stem])
    lists = voc / "ImageSets" / "Segmentation"
    write_list(lists / "train.txt", VOC_TRAIN)
    write_list(lists / "val.txt", VOC_VAL)
    write_list(lists / "trainaug.txt", VOC_TRAIN)
    write_list(lists / "aug.txt", [])  # SBD images beyond VOC train / val: none here
    return voc_raws, sbd_raws


# ---------------------------------------------------------------------------------------------
# COCO-Stuff 164k
# ---------------------------------------------------------------------------------------------
COCO_RAW_VALUES = np.array([*range(182), 255])
COCO_SPLITS = {"train2017": ["000000000009", "000000000025", "000000000030"],
               "val2017": ["000000000139", "000000000285"]}


def coco_shapes(n: int) -> list[tuple[int, int]]:
    """Big enough (>= 183 pixels) to hold every raw COCO-Stuff value."""
    return [(14 + i, 15 + 2 * i) for i in range(n)]


def make_coco(root: Path) -> dict[str, np.ndarray]:
    """coco/{train2017,val2017} JPEGs + stuffthingmaps_trainval2017 grey PNGs."""
    coco = root / "coco"
    raws = {}
    for split, stems in COCO_SPLITS.items():
        for i, (stem, shape) in enumerate(zip(stems, coco_shapes(len(stems)))):
            write_jpeg(coco / split / f"{stem}.jpg", *shape, seed=i)
            raws[stem] = random_raw(shape, COCO_RAW_VALUES, seed=200 + i)
            write_grey_png(coco / "stuffthingmaps_trainval2017" / split / f"{stem}.png",
                           raws[stem])
    return raws


# ---------------------------------------------------------------------------------------------
# PASCAL Context (VOC 2010)
# ---------------------------------------------------------------------------------------------
PCONTEXT_FULL_VALUES = np.arange(460)  # 0 = unlabelled, 1..459 labels.txt ids
PCONTEXT_SPLITS = {"train": ["2008_000002", "2008_000003"],
                   "val": ["2008_000007", "2010_005993"]}


def pcontext_shapes(n: int) -> list[tuple[int, int]]:
    """Big enough (>= 460 pixels) to hold every full-space Context value."""
    return [(20 + i, 24 + 2 * i) for i in range(n)]


def make_pcontext_images(root: Path) -> dict[str, np.ndarray]:
    """VOCdevkit/VOC2010/JPEGImages; returns stem -> full-space raw label (0..459)."""
    voc = root / "VOCdevkit" / "VOC2010"
    raws = {}
    stems = [s for split in PCONTEXT_SPLITS.values() for s in split]
    for i, (stem, shape) in enumerate(zip(stems, pcontext_shapes(len(stems)))):
        write_jpeg(voc / "JPEGImages" / f"{stem}.jpg", *shape, seed=i)
        raws[stem] = random_raw(shape, PCONTEXT_FULL_VALUES, seed=300 + i)
    write_jpeg(voc / "JPEGImages" / "2007_000027.jpg", 8, 9, seed=98)  # a VOC 2010 image
    return raws


def detail_json(raws: dict[str, np.ndarray]) -> dict:
    """trainval_merged.json (PASCAL in Detail): images with phase, one RLE segment per
    (image, category) with compressed string counts, as the official file."""
    from pycocotools import mask as mask_utils

    images, segments = [], []
    phase = {s: split for split, stems in PCONTEXT_SPLITS.items() for s in stems}
    for stem, raw in raws.items():
        image_id = int(stem.replace("_", ""))
        images.append({"image_id": image_id, "file_name": f"{stem}.jpg", "phase": phase[stem],
                       "height": int(raw.shape[0]), "width": int(raw.shape[1])})
        for category in np.unique(raw):
            if category == 0:
                continue  # unlabelled pixels have no segment
            rle = mask_utils.encode(np.asfortranarray((raw == category).astype(np.uint8)))
            segments.append({"id": len(segments) + 1, "image_id": image_id,
                             "category_id": int(category), "iscrowd": 0, "parts": [],
                             "segmentation": {"size": rle["size"],
                                              "counts": rle["counts"].decode("ascii")}})
    return {"info": {}, "images": images, "annos_segmentation": segments,
            "categories": [], "parts": [], "annos_occlusion": [], "annos_joints": []}


def make_pcontext(root: Path, source: str) -> dict[str, np.ndarray]:
    """VOC 2010 images + Context labels in ``source`` format (json, mat or mmseg)."""
    voc = root / "VOCdevkit" / "VOC2010"
    raws = make_pcontext_images(root)
    if source == "json":
        (voc / "trainval_merged.json").write_text(json.dumps(detail_json(raws)))
    elif source == "mat":
        import scipy.io

        for stem, raw in raws.items():
            (voc / "trainval").mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(voc / "trainval" / f"{stem}.mat",
                             {"LabelMap": raw.astype(np.uint16)})
        for split, stems in PCONTEXT_SPLITS.items():
            write_list(voc / "ImageSets" / "Main" / f"{split}.txt", stems)
    elif source == "mmseg":
        from zsseg_bench.data.datasets.pcontext import PCONTEXT59_CATEGORIES

        # mmseg's converter: background 0, the 59 classes 1..59 in ascending full-id order
        full_ids = [full for full, _ in PCONTEXT59_CATEGORIES]
        lut = np.zeros(460, dtype=np.uint8)
        lut[full_ids] = np.arange(1, 60)
        for stem, raw in raws.items():
            write_grey_png(voc / "SegmentationClassContext" / f"{stem}.png", lut[raw])
        for split, stems in PCONTEXT_SPLITS.items():
            write_list(voc / "ImageSets" / "SegmentationContext" / f"{split}.txt", stems)
    else:
        raise ValueError(source)
    return raws


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "L", f"{path} is mode {img.mode}"
        return np.array(img)


def load_script(name: str):
    """Imports ``datasets/<name>`` as a module (to call its ``main`` in-process)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_script_{Path(name).stem}", SCRIPTS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# ADE20K-150 (ADEChallengeData2016) and ADE20K-847 (ADE20K_2021_17_01)
# ---------------------------------------------------------------------------------------------
ADE150_RAW_VALUES = np.arange(151)  # 0 = other objects, 1..150 objectInfo150 classes
ADE150_VAL = ["ADE_val_00000001", "ADE_val_00000002"]


def make_ade150(root: Path) -> dict[str, np.ndarray]:
    """ADEChallengeData2016/{images,annotations}/validation; returns stem -> raw label."""
    base = root / "ADEChallengeData2016"
    raws = {}
    for i, (stem, shape) in enumerate(zip(ADE150_VAL, image_shapes(len(ADE150_VAL)))):
        shape = (shape[0] + 4, shape[1])  # >= 151 pixels
        write_jpeg(base / "images" / "validation" / f"{stem}.jpg", *shape, seed=i)
        raws[stem] = random_raw(shape, ADE150_RAW_VALUES, seed=500 + i)
        write_grey_png(base / "annotations" / "validation" / f"{stem}.png", raws[stem])
    return raws


#: Number of object classes of the index (``objectnames``) in the 2021 release.
ADE_FULL_NUM_OBJECTS = 3688
#: stem -> (height, width): one image above the 512-pixel short side (it is shrunk).
ADE_FULL_VAL = {"ADE_val_00000001": (30, 41), "ADE_val_00000002": (520, 600)}
ADE_FULL_TRAIN = {"ADE_train_00000001": (12, 15)}


def write_ade_seg(path: Path, classes: np.ndarray) -> None:
    """An official ``*_seg.png``: R = class // 256 * 10, G = class % 256, B = an instance."""
    rgb = np.stack([(classes // 256) * 10, classes % 256, np.ones_like(classes)], axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb.astype(np.uint8), mode="RGB").save(path)


def make_ade_full(root: Path, full_ids: np.ndarray) -> dict[str, np.ndarray]:
    """ADE20K_2021_17_01 with index_ade20k.pkl and images / ``*_seg.png`` in scene folders;
    each val label holds every value of ``full_ids`` plus 0 and classes outside them. Returns
    stem -> class mask (full index values)."""
    import pickle

    values = np.unique(np.concatenate([full_ids, [0, 5, 3000, ADE_FULL_NUM_OBJECTS]]))
    folders, files, raws = [], [], {}
    items = [*ADE_FULL_VAL.items(), *ADE_FULL_TRAIN.items()]
    for i, (stem, shape) in enumerate(items):
        split = "validation" if "_val_" in stem else "training"
        folder = f"ADE20K_2021_17_01/images/ADE/{split}/urban/street_{i}"
        write_jpeg(root / folder / f"{stem}.jpg", *shape, seed=i)
        raws[stem] = random_raw(shape, values, seed=600 + i)
        write_ade_seg(root / folder / f"{stem}_seg.png", raws[stem])
        folders.append(folder)
        files.append(f"{stem}.jpg")
    index = {"folder": folders, "filename": files,
             "objectnames": [f"object {k}" for k in range(ADE_FULL_NUM_OBJECTS)],
             "scene": ["street"] * len(files)}
    with open(root / "ADE20K_2021_17_01" / "index_ade20k.pkl", "wb") as f:
        pickle.dump(index, f)
    return raws


def read_png16(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "I;16", f"{path} is mode {img.mode}"
        return np.array(img)
