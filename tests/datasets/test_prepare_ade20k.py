"""datasets/prepare_ade20k_sem_seg.py (ADE20K-150) and datasets/prepare_ade20k_full_sem_seg.py
(ADE20K-847, wide labels) on tiny fixtures in the official raw formats."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.datasets.fixtures import (
    ADE150_VAL,
    ADE_FULL_VAL,
    load_script,
    make_ade150,
    make_ade_full,
    read_png,
    read_png16,
    run_script,
    write_ade_seg,
)
from zsseg_bench.data.datasets.ade20k import ADE20K_150_CLASSES
from zsseg_bench.data.datasets.ade20k_full import ADE20K_847_CATEGORIES, ADE20K_847_CLASSES
from zsseg_bench.data.image_io import read_sem_seg
from zsseg_bench.utils.errors import UserError

ADE150_OUT = os.path.join("ADEChallengeData2016", "annotations_zsseg", "validation")
FULL = "ADE20K_2021_17_01"
FULL_LABELS = os.path.join(FULL, "annotations_zsseg", "validation")
FULL_IMAGES = os.path.join(FULL, "images_zsseg", "validation")
#: (full index class value, contiguous id, name) read off Mask2Former's
#: ADE20K_SEM_SEG_FULL_CATEGORIES (register_ade20k_full.py @ 9b0651c), first, inner and last.
M2F_SAMPLES = [(2978, 0, "wall"), (312, 1, "building, edifice"), (2043, 839, "racquet"),
               (3148, 846, "adding machine, totalizer, totaliser")]


def stamps(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# ADE20K-150
# ---------------------------------------------------------------------------------------------
def test_ade150_class_list():
    assert len(ADE20K_150_CLASSES) == 150
    # objectInfo150 ids 1, 7, 9, 13, 150 (first names)
    for raw, name in ((1, "wall"), (7, "road"), (9, "windowpane"), (13, "person"),
                      (150, "flag")):
        assert ADE20K_150_CLASSES[raw - 1] == name


def test_ade150_converts_every_pixel_and_is_idempotent(tmp_path):
    raws = make_ade150(tmp_path)
    proc = run_script("prepare_ade20k_sem_seg.py", "--root", str(tmp_path), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "ade20k_150_val (validation): 2 images, 2 labels (2 written" in proc.stdout
    assert "the official validation split has 2000;" in proc.stderr
    out = tmp_path / ADE150_OUT
    for stem in ADE150_VAL:
        expected = np.where(raws[stem] == 0, 255, raws[stem] - 1).astype(np.uint8)
        np.testing.assert_array_equal(read_png(out / f"{stem}.png"), expected)
    manifest = json.loads((tmp_path / (ADE150_OUT + ".json")).read_text())
    assert manifest["images"] == [[s, *raws[s].shape] for s in ADE150_VAL]
    before = stamps(out)
    load_script("prepare_ade20k_sem_seg.py").main(["--root", str(tmp_path), "--workers", "1"])
    assert stamps(out) == before


def test_ade150_bad_raw_value_names_the_file(tmp_path):
    raws = make_ade150(tmp_path)
    stem = ADE150_VAL[1]
    bad = raws[stem].copy()
    bad[0, 0] = 151
    path = tmp_path / "ADEChallengeData2016" / "annotations" / "validation" / f"{stem}.png"
    Image.fromarray(bad.astype(np.uint8), mode="L").save(path)
    with pytest.raises(UserError, match=rf"{path}: unexpected raw label value\(s\) 151"):
        load_script("prepare_ade20k_sem_seg.py").main(["--root", str(tmp_path), "--workers",
                                                      "1"])


# ---------------------------------------------------------------------------------------------
# ADE20K-847
# ---------------------------------------------------------------------------------------------
def test_ade847_class_table():
    assert len(ADE20K_847_CATEGORIES) == len(ADE20K_847_CLASSES) == 847
    assert len({raw for raw, _ in ADE20K_847_CATEGORIES}) == 847
    for raw, i, name in M2F_SAMPLES:
        assert ADE20K_847_CATEGORIES[i] == (raw, name)


def expected_847(classes: np.ndarray) -> np.ndarray:
    lut = np.full(4096, 65535, dtype=np.uint16)
    for i, (raw, _) in enumerate(ADE20K_847_CATEGORIES):
        lut[raw] = i
    return lut[classes]


def cv2_nearest(src: int, dst: int) -> np.ndarray:
    """OpenCV's INTER_NEAREST source index: floor(x * src / dst)."""
    return np.minimum(np.floor(np.arange(dst) * src / dst).astype(int), src - 1)


def test_ade847_converts_every_pixel_resizes_and_is_idempotent(tmp_path):
    full_ids = np.array([raw for raw, _ in ADE20K_847_CATEGORIES])
    raws = make_ade_full(tmp_path, full_ids)
    proc = run_script("prepare_ade20k_full_sem_seg.py", "--root", str(tmp_path), "--workers",
                      "2")
    assert proc.returncode == 0, proc.stderr
    assert "ade20k_847_val (validation): 2 images, 2 labels (2 written" in proc.stdout
    labels, images = tmp_path / FULL_LABELS, tmp_path / FULL_IMAGES
    assert sorted(p.stem for p in labels.glob("*.png")) == sorted(ADE_FULL_VAL)  # no train
    small, large = sorted(ADE_FULL_VAL)
    label = read_png16(labels / f"{small}.png")
    np.testing.assert_array_equal(label, expected_847(raws[small]))
    assert set(np.unique(label).tolist()) == set(range(847)) | {65535}
    for raw, i, _ in M2F_SAMPLES:
        assert (label[raws[small] == raw] == i).all()
    # 520 x 600 -> short side 512: 512 x round(600 / 520 * 512) = 512 x 591
    label = read_png16(labels / f"{large}.png")
    rows, cols = cv2_nearest(520, 512), cv2_nearest(600, 591)
    np.testing.assert_array_equal(label, expected_847(raws[large])[rows[:, None], cols])
    with Image.open(images / f"{large}.jpg") as img:
        assert img.size == (591, 512)
    with Image.open(images / f"{small}.jpg") as img:
        assert img.size == (41, 30)
    manifest = json.loads((tmp_path / (FULL_LABELS + ".json")).read_text())
    assert manifest["images"] == [[small, 30, 41], [large, 512, 591]]
    # the suite reads the wide labels untruncated
    wide = read_sem_seg(str(labels / f"{small}.png"), 847, ignore_label=65535)
    assert wide.dtype == np.int32 and wide.max() == 65535 and (wide == 846).any()
    before = stamps(labels) | stamps(images)
    load_script("prepare_ade20k_full_sem_seg.py").main(["--root", str(tmp_path), "--workers",
                                                       "1"])
    assert stamps(labels) | stamps(images) == before


def test_ade847_bad_raw_value_names_the_file(tmp_path):
    raws = make_ade_full(tmp_path, np.array([2978, 312]))
    stem = sorted(ADE_FULL_VAL)[0]
    bad = raws[stem].copy()
    bad[0, 0] = 3784  # beyond the 3,688 object classes of the index
    path = next((tmp_path / FULL).rglob(f"{stem}_seg.png"))
    write_ade_seg(path, bad)
    script = load_script("prepare_ade20k_full_sem_seg.py")
    with pytest.raises(UserError, match=rf"{path}: unexpected raw label value\(s\) 3784"):
        script.main(["--root", str(tmp_path), "--workers", "1"])
    Image.fromarray(bad.astype(np.uint8), mode="L").save(path)  # not the RGB format
    with pytest.raises(UserError, match=rf"{path}: image mode L; expected a label PNG of mode "
                                        rf"RGB"):
        script.main(["--root", str(tmp_path), "--workers", "1"])
    (tmp_path / FULL / "index_ade20k.pkl").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="cannot read .*index_ade20k.pkl as the official"):
        script.main(["--root", str(tmp_path), "--workers", "1"])
