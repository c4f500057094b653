"""datasets/prepare_pascal_context_sem_seg.py on tiny fixtures in the three accepted formats:
PASCAL in Detail ``trainval_merged.json``, the official ``.mat`` release, mmseg's PNGs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.io

from tests.datasets.fixtures import (
    PCONTEXT_SPLITS,
    detail_json,
    load_script,
    make_pcontext,
    make_pcontext_images,
    read_png,
    run_script,
)
from zsseg_bench.data.datasets.pcontext import PCONTEXT59_CLASSES
from zsseg_bench.utils.errors import UserError

# pycocotools' decode with numpy 2 (not ours to fix)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SCRIPT = "prepare_pascal_context_sem_seg.py"
VOC2010 = os.path.join("VOCdevkit", "VOC2010")
OUT = os.path.join(VOC2010, "annotations_zsseg")
#: Ids of the 59 classes in the full label space (``labels.txt`` of PASCAL Context, 1..459),
#: as listed by PyTorch-Encoding / mmseg's converter (``_mapping``), in their order there.
FULL_IDS_59 = [2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159,
               416, 33, 162, 420, 454, 295, 296, 427, 44, 45, 46, 308, 59, 440, 445, 31, 232,
               65, 354, 424, 68, 326, 72, 458, 34, 207, 80, 355, 85, 347, 220, 349, 360, 98,
               187, 104, 105, 366, 189, 368, 113, 115]


def expected_pc59(raw: np.ndarray) -> np.ndarray:
    """Full ids of the 59 classes, ascending, are 0..58; 0 and the other 400 ids are 255."""
    lut = np.full(460, 255, dtype=np.uint8)
    lut[sorted(FULL_IDS_59)] = np.arange(59)
    return lut[raw]


def test_mapping_oracle_matches_the_class_list():
    assert len(FULL_IDS_59) == len(set(FULL_IDS_59)) == 59
    lut = expected_pc59(np.arange(460))
    for full, name in ((2, "aeroplane"), (19, "bedclothes"), (98, "cow"), (397, "table"),
                       (427, "tvmonitor"), (458, "wood")):  # from labels.txt
        assert PCONTEXT59_CLASSES[lut[full]] == name
    assert lut[0] == lut[1] == lut[459] == 255  # unlabelled, accordion, wool


def check_outputs(root, raws):
    for split, stems in PCONTEXT_SPLITS.items():
        out_dir = root / OUT / f"pc59_{split}"
        assert sorted(p.stem for p in out_dir.glob("*.png")) == sorted(stems)
        for stem in stems:
            np.testing.assert_array_equal(read_png(out_dir / f"{stem}.png"),
                                          expected_pc59(raws[stem]))
        manifest = json.loads((root / OUT / f"pc59_{split}.json").read_text())
        assert manifest["images"] == [[s, *raws[s].shape] for s in sorted(stems)]


@pytest.mark.parametrize("source", ["json", "mat"])
def test_cli_converts_every_pixel(tmp_path, source):
    raws = make_pcontext(tmp_path, source)
    assert set(np.unique(np.concatenate([r.ravel() for r in raws.values()]))) == set(range(460))
    proc = run_script(SCRIPT, "--root", str(tmp_path), "--workers", "2")  # --source auto
    assert proc.returncode == 0, proc.stderr
    assert f"PASCAL Context labels: {source}" in proc.stdout
    assert "pcontext_zs_train (train): 2 images, 2 labels (2 written" in proc.stdout
    assert "pcontext_zs_val (val): 2 images, 2 labels (2 written" in proc.stdout
    # the official count of the source read: trainval_merged.json's phases, or VOC 2010's lists
    official_val = {"json": 5104, "mat": 5105}[source]
    assert f"the official val split has {official_val};" in proc.stderr
    check_outputs(tmp_path, raws)


@pytest.mark.parametrize("source", ["json", "mat", "mmseg"])
def test_official_count_of_each_source_prints_no_warning(tmp_path, source, monkeypatch,
                                                          capsys):
    """A download with the official number of images (here: the fixture's, patched in as the
    official count of its source only) gets no count warning."""
    make_pcontext(tmp_path, source)
    script = load_script(SCRIPT)
    counts = {s: dict(c) for s, c in script.OFFICIAL_COUNTS.items()}
    counts[source] = {split: len(stems) for split, stems in PCONTEXT_SPLITS.items()}
    monkeypatch.setattr(script, "OFFICIAL_COUNTS", counts)
    script.main(["--root", str(tmp_path), "--workers", "1"])
    captured = capsys.readouterr()
    assert "pcontext_zs_val (val): 2 images" in captured.out
    assert "warning" not in captured.err


def test_official_counts_add_up():
    from zsseg_bench.data.datasets.pcontext import OFFICIAL_COUNTS, PCONTEXT_BENCHMARK

    assert sum(OFFICIAL_COUNTS["json"].values()) == 10100  # the Detail API's "total img"
    assert OFFICIAL_COUNTS["mmseg"] == OFFICIAL_COUNTS["json"]  # lists made from its phases
    assert sum(OFFICIAL_COUNTS["mat"].values()) == 10103  # VOC 2010 trainval
    assert [s.official_count for s in PCONTEXT_BENCHMARK.splits] == [4996, 5104]


def test_mmseg_pngs_give_the_same_labels(tmp_path):
    raws = make_pcontext(tmp_path, "mmseg")
    script = load_script(SCRIPT)
    script.main(["--root", str(tmp_path), "--workers", "1", "--source", "mmseg"])
    check_outputs(tmp_path, raws)
    outputs = sorted((tmp_path / OUT).rglob("*.png"))
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    script.main(["--root", str(tmp_path), "--workers", "1", "--source", "mmseg"])
    assert {p: p.stat().st_mtime_ns for p in outputs} == stamps  # idempotent


def test_json_segments_paint_in_file_order_and_polygons_work(tmp_path):
    """As the Detail API's getMask: later segments overwrite earlier ones."""
    raws = make_pcontext_images(tmp_path)
    data = detail_json({s: np.zeros_like(r) for s, r in raws.items()})  # no segment yet
    stem = PCONTEXT_SPLITS["train"][0]
    image = next(i for i in data["images"] if i["file_name"] == f"{stem}.jpg")
    h, w = image["height"], image["width"]
    # cow (98) on the top-left, then a sky (360) polygon on the right half, on top of it
    from pycocotools import mask as mask_utils
    left = np.zeros((h, w), np.uint8)
    left[: h // 2, : 2 * w // 3] = 1
    rle = mask_utils.encode(np.asfortranarray(left))
    data["annos_segmentation"] += [
        {"id": 1, "image_id": image["image_id"], "category_id": 98,
         "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}},
        {"id": 2, "image_id": image["image_id"], "category_id": 360,
         "segmentation": [[w / 2, 0, w, 0, w, h, w / 2, h]]},
    ]
    (tmp_path / VOC2010 / "trainval_merged.json").write_text(json.dumps(data))
    load_script(SCRIPT).main(["--root", str(tmp_path), "--workers", "1", "--splits", "train"])
    label = read_png(tmp_path / OUT / "pc59_train" / f"{stem}.png")
    cow, sky = PCONTEXT59_CLASSES.index("cow"), PCONTEXT59_CLASSES.index("sky")
    poly = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
        data["annos_segmentation"][-1]["segmentation"], h, w))).astype(bool)
    expected = np.full((h, w), 255, np.uint8)
    expected[left.astype(bool)] = cow
    expected[poly] = sky
    np.testing.assert_array_equal(label, expected)
    assert (label == cow).any() and (label == sky).any() and (label == 255).any()


def test_unexpected_raw_values_are_errors_naming_the_file(tmp_path):
    raws = make_pcontext(tmp_path, "mat")
    script = load_script(SCRIPT)
    stem = PCONTEXT_SPLITS["val"][1]
    bad = raws[stem].astype(np.uint16)
    bad[0, 0] = 460
    path = tmp_path / VOC2010 / "trainval" / f"{stem}.mat"
    scipy.io.savemat(path, {"LabelMap": bad})
    with pytest.raises(UserError, match=rf"{path}: unexpected raw label value\(s\) 460"):
        script.main(["--root", str(tmp_path), "--workers", "1", "--source", "mat"])
    scipy.io.savemat(path, {"labels": bad})
    with pytest.raises(UserError, match="has no 'LabelMap'"):
        script.main(["--root", str(tmp_path), "--workers", "1", "--source", "mat"])

    data = detail_json(raws)
    data["annos_segmentation"][-1]["category_id"] = 999
    (tmp_path / VOC2010 / "trainval_merged.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"trainval_merged.json \(image .*value\(s\) 999"):
        script.main(["--root", str(tmp_path), "--workers", "1"])  # auto picks json first


def test_missing_labels_are_user_errors(tmp_path):
    make_pcontext_images(tmp_path)
    script = load_script(SCRIPT)
    with pytest.raises(UserError, match="no PASCAL Context labels"):
        script.main(["--root", str(tmp_path)])
    with pytest.raises(UserError, match=r"PASCAL Context labels \(mat\) not found"):
        script.main(["--root", str(tmp_path), "--source", "mat"])
    (tmp_path / VOC2010 / "trainval_merged.json").write_text("{\"images\": []}")
    with pytest.raises(UserError, match="cannot read .* as PASCAL in Detail annotations"):
        script.main(["--root", str(tmp_path), "--source", "json"])


# ---------------------------------------------------------------------------------------------
# Context-459 (--classes 459): the full labels.txt space, val only, wide labels
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["json", "mat"])
def test_459_classes_keep_every_label(tmp_path, source):
    from tests.datasets.fixtures import read_png16

    raws = make_pcontext(tmp_path, source)
    proc = run_script(SCRIPT, "--root", str(tmp_path), "--workers", "2", "--classes", "59",
                      "459")
    assert proc.returncode == 0, proc.stderr
    assert "pcontext_459_val (val): 2 images, 2 labels (2 written" in proc.stdout
    official_val = {"json": 5104, "mat": 5105}[source]
    assert f"pcontext_459_val: 2 images, but the official val split has {official_val};" \
        in proc.stderr
    check_outputs(tmp_path, raws)  # the 59-class splits as before
    assert not (tmp_path / OUT / "pc459_train").exists()
    for stem in PCONTEXT_SPLITS["val"]:
        label = read_png16(tmp_path / OUT / "pc459_val" / f"{stem}.png")
        expected = np.where(raws[stem] == 0, 65535, raws[stem] - 1)
        np.testing.assert_array_equal(label, expected)
        assert label.max() == 65535 and (label == 458).any()  # wool, beyond uint8
    manifest = json.loads((tmp_path / OUT / "pc459_val.json").read_text())
    assert manifest["images"] == [[s, *raws[s].shape] for s in sorted(PCONTEXT_SPLITS["val"])]


def test_459_class_list_is_labels_txt():
    from zsseg_bench.data.datasets.pcontext import PCONTEXT59_CATEGORIES, PCONTEXT459_CLASSES

    assert len(PCONTEXT459_CLASSES) == len(set(PCONTEXT459_CLASSES)) == 459
    for full, name in PCONTEXT59_CATEGORIES:  # the 59 keep their labels.txt ids
        assert PCONTEXT459_CLASSES[full - 1] == name
    assert (PCONTEXT459_CLASSES[0], PCONTEXT459_CLASSES[458]) == ("accordion", "wool")


def test_459_errors(tmp_path):
    raws = make_pcontext(tmp_path, "mmseg")
    script = load_script(SCRIPT)
    with pytest.raises(UserError, match="--classes 459 needs the full label space"):
        script.main(["--root", str(tmp_path), "--classes", "459"])
    with pytest.raises(UserError, match="Context-459 has only a val split"):
        script.main(["--root", str(tmp_path), "--classes", "459", "--splits", "train"])
    make_pcontext(tmp_path, "mat")
    stem = PCONTEXT_SPLITS["val"][0]
    bad = raws[stem].astype(np.uint16)
    bad[1, 1] = 460
    path = tmp_path / VOC2010 / "trainval" / f"{stem}.mat"
    scipy.io.savemat(path, {"LabelMap": bad})
    with pytest.raises(UserError, match=rf"{path}: unexpected raw label value\(s\) 460"):
        script.main(["--root", str(tmp_path), "--workers", "1", "--source", "mat",
                     "--classes", "459"])
