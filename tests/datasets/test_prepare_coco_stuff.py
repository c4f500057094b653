"""datasets/prepare_coco_stuff_sem_seg.py on a tiny fixture in the official COCO-Stuff format."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.datasets.fixtures import (
    COCO_SPLITS,
    load_script,
    make_coco,
    read_png,
    run_script,
    write_grey_png,
    write_jpeg,
)
from zsseg_bench.data.datasets.coco_stuff import COCO_STUFF_CATEGORIES
from zsseg_bench.utils.errors import UserError

SCRIPT = "prepare_coco_stuff_sem_seg.py"
OUT = os.path.join("coco", "stuffthingmaps_zsseg")
RAW = os.path.join("coco", "stuffthingmaps_trainval2017")
#: The 11 COCO ids that name no class in COCO-Stuff 164k.
UNUSED_COCO_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91}


def expected_coco(raw: np.ndarray) -> np.ndarray:
    """Raw value v holds COCO id v + 1; the 171 used ids in ascending order are 0..170."""
    used = sorted(set(range(1, 183)) - UNUSED_COCO_IDS)
    lut = np.full(256, 255, dtype=np.uint8)
    lut[np.array(used) - 1] = np.arange(len(used))
    return lut[raw]


def test_mapping_oracle_matches_the_class_list():
    assert [cid for cid, _ in COCO_STUFF_CATEGORIES] == sorted(
        set(range(1, 183)) - UNUSED_COCO_IDS)
    lut = expected_coco(np.arange(256))
    names = [name for _, name in COCO_STUFF_CATEGORIES]
    # spot checks from the official COCO / COCO-Stuff label lists (raw = id - 1)
    for raw, name in ((0, "person"), (20, "cow"), (89, "toothbrush"), (91, "banner"),
                      (144, "playingfield"), (171, "wall-concrete"), (181, "wood")):
        assert names[lut[raw]] == name
    assert lut[11] == 255 and lut[255] == 255  # unused id 12, unlabelled


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_root")
    raws = make_coco(root)
    proc = run_script(SCRIPT, "--root", str(root), "--workers", "2")
    return root, raws, proc


def test_cli_converts_every_pixel(prepared):
    root, raws, proc = prepared
    assert proc.returncode == 0, proc.stderr
    for split, stems in COCO_SPLITS.items():
        out_dir = root / OUT / split
        assert sorted(p.stem for p in out_dir.glob("*.png")) == sorted(stems)
        for stem in stems:
            np.testing.assert_array_equal(read_png(out_dir / f"{stem}.png"),
                                          expected_coco(raws[stem]))
    assert set(np.unique(np.concatenate([r.ravel() for r in raws.values()]))) == {
        *range(182), 255}
    assert "coco_stuff_zs_train (train2017): 3 images, 3 labels" in proc.stdout
    assert "coco_stuff_zs_val (val2017): 2 images, 2 labels" in proc.stdout
    assert "the official val2017 split has 5000" in proc.stderr
    manifest = json.loads((root / OUT / "train2017.json").read_text())
    assert [s for s, _, _ in manifest["images"]] == sorted(COCO_SPLITS["train2017"])


def test_second_run_keeps_every_file(prepared):
    root, _, _ = prepared
    outputs = sorted((root / OUT).rglob("*.png"))
    before = {p: p.stat().st_mtime_ns for p in outputs}
    load_script(SCRIPT).main(["--root", str(root), "--workers", "1"])
    assert {p: p.stat().st_mtime_ns for p in outputs} == before


def test_unexpected_raw_value_is_an_error_naming_the_file(tmp_path):
    raws = make_coco(tmp_path)
    stem = COCO_SPLITS["val2017"][0]
    raw = raws[stem].copy()
    raw[2, 3] = 182  # COCO id 183 ("other") does not exist in stuffthingmaps
    bad = tmp_path / RAW / "val2017" / f"{stem}.png"
    write_grey_png(bad, raw)
    proc = run_script(SCRIPT, "--root", str(tmp_path), "--workers", "2", "--splits", "val2017")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(bad) in last and "value(s) 182" in last


def test_incomplete_downloads_are_user_errors(tmp_path):
    make_coco(tmp_path)
    script = load_script(SCRIPT)
    write_jpeg(tmp_path / "coco" / "val2017" / "000000999999.jpg", 9, 9, seed=0)
    with pytest.raises(UserError, match=r"image\(s\) of val2017 without a counterpart"):
        script.main(["--root", str(tmp_path), "--splits", "val2017"])
    os.unlink(tmp_path / "coco" / "val2017" / "000000999999.jpg")
    os.unlink(tmp_path / "coco" / "val2017" / f"{COCO_SPLITS['val2017'][0]}.jpg")
    with pytest.raises(UserError, match=r"raw map\(s\) of val2017 without a counterpart"):
        script.main(["--root", str(tmp_path), "--splits", "val2017"])
    with pytest.raises(UserError, match="COCO-Stuff train2017 stuff\\+thing maps not found"):
        os.rename(tmp_path / RAW / "train2017", tmp_path / "elsewhere")
        script.main(["--root", str(tmp_path), "--splits", "train2017"])


def test_label_of_another_size_than_its_image_is_an_error(tmp_path):
    raws = make_coco(tmp_path)
    stem = COCO_SPLITS["train2017"][0]
    write_grey_png(tmp_path / RAW / "train2017" / f"{stem}.png", raws[stem].T)
    with pytest.raises(UserError, match="label of size .* but its image"):
        load_script(SCRIPT).main(["--root", str(tmp_path), "--workers", "1", "--splits",
                                  "train2017"])


def test_the_zsseg_and_maskformer_layout_coco_stuffthingmaps_is_read_too(tmp_path):
    raws = make_coco(tmp_path)
    coco = tmp_path / "coco"
    (coco / "stuffthingmaps_trainval2017").rename(coco / "stuffthingmaps")
    proc = run_script(SCRIPT, "--root", str(tmp_path), "--workers", "1", "--splits", "val2017")
    assert proc.returncode == 0, proc.stderr
    for stem in COCO_SPLITS["val2017"]:
        np.testing.assert_array_equal(read_png(tmp_path / OUT / "val2017" / f"{stem}.png"),
                                      expected_coco(raws[stem]))


def test_zsseg_bench_prepare_runs_the_script(tmp_path):
    import subprocess
    import sys

    raws = make_coco(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "zsseg_bench", "prepare", "coco_stuff",
                           "--root", str(tmp_path), "--splits", "val2017", "--workers", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "coco_stuff_zs_val (val2017): 2 images, 2 labels" in proc.stdout
    stem = COCO_SPLITS["val2017"][0]
    np.testing.assert_array_equal(read_png(tmp_path / OUT / "val2017" / f"{stem}.png"),
                                  expected_coco(raws[stem]))
    assert not (tmp_path / OUT / "train2017").exists()  # --splits reached the script
