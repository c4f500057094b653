"""datasets/prepare_voc_sem_seg.py on a tiny fixture in the official VOC 2012 + SBD formats."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tests.datasets.fixtures import (
    VOC_TRAIN,
    VOC_TRAIN_NOT_IN_SBD,
    VOC_VAL,
    load_script,
    make_voc,
    make_voc_mmseg,
    read_png,
    run_script,
    write_grey_png,
)
from zsseg_bench.utils.errors import UserError

SCRIPT = "prepare_voc_sem_seg.py"
VOC = os.path.join("VOCdevkit", "VOC2012")
OUT = os.path.join(VOC, "annotations_zsseg")


def expected_voc(raw: np.ndarray) -> np.ndarray:
    """Raw 1..20 -> 0..19; background 0 and boundary 255 -> 255."""
    return np.where((raw >= 1) & (raw <= 20), raw - 1, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A fixture prepared once through the CLI, the root given by $ZSSEG_DATASETS."""
    root = tmp_path_factory.mktemp("voc_root")
    raws = make_voc(root)
    proc = run_script(SCRIPT, "--workers", "2", env={"ZSSEG_DATASETS": str(root)})
    return root, raws, proc


def test_cli_converts_every_pixel(prepared):
    root, raws, proc = prepared
    assert proc.returncode == 0, proc.stderr
    for split, stems in (("train_aug", VOC_TRAIN), ("val", VOC_VAL)):
        out_dir = root / OUT / split
        assert sorted(p.stem for p in out_dir.glob("*.png")) == sorted(stems)
        for stem in stems:
            np.testing.assert_array_equal(read_png(out_dir / f"{stem}.png"),
                                          expected_voc(raws[stem]))
    # every raw value occurs in the fixture, so the whole mapping was exercised
    assert set(np.unique(np.concatenate([r.ravel() for r in raws.values()]))) == {
        *range(21), 255}


def test_cli_prints_counts_and_writes_manifests(prepared):
    root, raws, proc = prepared
    assert "voc_zs_train (train_aug): 3 images, 3 labels (3 written, 0 already done)" in \
        proc.stdout
    assert "voc_zs_val (val): 2 images, 2 labels (2 written, 0 already done)" in proc.stdout
    assert "the official train_aug split has 10582" in proc.stderr
    manifest = json.loads((root / OUT / "val.json").read_text())
    assert manifest["dataset"] == "voc_zs_val" and manifest["num_images"] == 2
    assert manifest["images"] == [[s, *raws[s].shape] for s in sorted(VOC_VAL)]


def test_second_run_is_idempotent(prepared, tmp_path, capsys):
    root, _, _ = prepared
    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    outputs = sorted((copy / OUT).rglob("*.png"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in outputs}
    load_script(SCRIPT).main(["--root", str(copy), "--workers", "1"])
    out = capsys.readouterr().out
    assert "(0 written, 3 already done)" in out and "(0 written, 2 already done)" in out
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in outputs} == before


def test_unexpected_raw_value_is_an_error_naming_the_file(tmp_path):
    raws = make_voc(tmp_path)
    bad = tmp_path / VOC / "SegmentationClassAug" / f"{VOC_TRAIN[1]}.png"
    raw = raws[VOC_TRAIN[1]].copy()
    raw[0, 0] = 21
    write_grey_png(bad, raw)
    proc = run_script(SCRIPT, "--root", str(tmp_path), "--workers", "2")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in proc.stderr
    assert str(bad) in lines[-1] and "unexpected raw label value(s) 21" in lines[-1]
    assert not (tmp_path / OUT / "train_aug.json").exists()


def test_interrupted_run_resumes(tmp_path, capsys):
    """A run stopped by a bad file keeps its finished files; the next run completes it."""
    raws = make_voc(tmp_path)
    script = load_script(SCRIPT)
    last = sorted(VOC_TRAIN)[-1]
    bad = tmp_path / VOC / "SegmentationClassAug" / f"{last}.png"
    broken = raws[last].copy()
    broken[-1, -1] = 77
    write_grey_png(bad, broken)
    with pytest.raises(UserError, match="unexpected raw label value"):
        script.main(["--root", str(tmp_path), "--workers", "1", "--splits", "train_aug"])
    out_dir = tmp_path / OUT / "train_aug"
    done = sorted(p.name for p in out_dir.glob("*.png"))
    assert done == [f"{s}.png" for s in sorted(VOC_TRAIN)[:-1]]
    assert not (tmp_path / OUT / "train_aug.json").exists()  # never loaded half-done
    stamps = {n: (out_dir / n).stat().st_mtime_ns for n in done}
    (out_dir / f".{last}.png.abc123.tmp").write_bytes(b"partial")  # a killed write

    write_grey_png(bad, raws[last])  # the user fixes the file
    script.main(["--root", str(tmp_path), "--workers", "1", "--splits", "train_aug"])
    assert "(1 written, 2 already done)" in capsys.readouterr().out
    assert {n: (out_dir / n).stat().st_mtime_ns for n in done} == stamps
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{s}.png" for s in sorted(VOC_TRAIN)]
    np.testing.assert_array_equal(read_png(out_dir / f"{last}.png"), expected_voc(raws[last]))
    assert (tmp_path / OUT / "train_aug.json").exists()


def test_overwrite_converts_again(tmp_path):
    make_voc(tmp_path)
    script = load_script(SCRIPT)
    args = ["--root", str(tmp_path), "--workers", "1", "--splits", "val"]
    script.main(args)
    target = tmp_path / OUT / "val" / f"{VOC_VAL[0]}.png"
    good = target.read_bytes()
    target.write_bytes(b"garbage")
    script.main(args)
    assert target.read_bytes() == b"garbage"  # finished files are kept ...
    script.main([*args, "--overwrite"])
    assert target.read_bytes() == good  # ... unless asked to convert again


def test_val_only_needs_no_sbd(tmp_path):
    raws = make_voc(tmp_path)
    shutil.rmtree(tmp_path / VOC / "SegmentationClassAug")
    load_script(SCRIPT).main(["--root", str(tmp_path), "--workers", "1", "--splits", "val"])
    for stem in VOC_VAL:  # val labels come from the palette PNGs of SegmentationClass
        np.testing.assert_array_equal(read_png(tmp_path / OUT / "val" / f"{stem}.png"),
                                      expected_voc(raws[stem]))
    assert not (tmp_path / OUT / "train_aug").exists()


def test_bad_inputs_are_user_errors(tmp_path):
    script = load_script(SCRIPT)
    with pytest.raises(UserError, match="VOC 2012 images not found"):
        script.main(["--root", str(tmp_path)])
    make_voc(tmp_path)
    train_list = tmp_path / VOC / "ImageSets" / "Segmentation" / "train_aug.txt"
    train_list.write_text(train_list.read_text() + f"{VOC_VAL[0]}\n")
    with pytest.raises(UserError, match="train_aug must exclude VOC 2012 val"):
        script.main(["--root", str(tmp_path), "--workers", "1"])
    with pytest.raises(UserError, match="split list not found"):
        script.main(["--root", str(tmp_path), "--train-list", str(tmp_path / "nope.txt")])
    os.unlink(tmp_path / VOC / "SegmentationClass" / f"{VOC_VAL[1]}.png")
    with pytest.raises(UserError, match=r"1 raw label\(s\) of the val list missing"):
        script.main(["--root", str(tmp_path), "--splits", "val"])


def test_mmseg_trainaug_list_is_found(tmp_path):
    raws = make_voc(tmp_path)
    lists = tmp_path / VOC / "ImageSets" / "Segmentation"
    (lists / "train_aug.txt").rename(lists / "trainaug.txt")  # mmseg's voc_aug.py name
    load_script(SCRIPT).main(["--root", str(tmp_path), "--workers", "1", "--splits",
                              "train_aug"])
    for stem in VOC_TRAIN:
        np.testing.assert_array_equal(read_png(tmp_path / OUT / "train_aug" / f"{stem}.png"),
                                      expected_voc(raws[stem]))


def test_mmseg_voc_aug_layout(tmp_path, capsys):
    """SegmentationClassAug from SBD only: the VOC train images SBD lacks take their label
    from SegmentationClass; val labels never come from SegmentationClassAug."""
    voc_raws, sbd_raws = make_voc_mmseg(tmp_path)
    assert set(VOC_VAL) & set(sbd_raws)  # SBD covers a val image: it must not be used
    script = load_script(SCRIPT)
    script.main(["--root", str(tmp_path), "--workers", "1"])
    out = capsys.readouterr().out
    assert "train_aug: labels from SegmentationClassAug (2), SegmentationClass (1)" in out
    for stem in VOC_TRAIN:
        raw = voc_raws[stem] if stem in VOC_TRAIN_NOT_IN_SBD else sbd_raws[stem]
        np.testing.assert_array_equal(read_png(tmp_path / OUT / "train_aug" / f"{stem}.png"),
                                      expected_voc(raw))
    for stem in VOC_VAL:
        np.testing.assert_array_equal(read_png(tmp_path / OUT / "val" / f"{stem}.png"),
                                      expected_voc(voc_raws[stem]))
    # mmseg's (and ZegCLIP's) own choice: VOC train images from SegmentationClass
    script.main(["--root", str(tmp_path), "--workers", "1", "--splits", "train_aug",
                 "--overwrite", "--train-labels-first", "SegmentationClass"])
    assert "labels from SegmentationClass (3), SegmentationClassAug (0)" in \
        capsys.readouterr().out
    for stem in VOC_TRAIN:
        np.testing.assert_array_equal(read_png(tmp_path / OUT / "train_aug" / f"{stem}.png"),
                                      expected_voc(voc_raws[stem]))


def test_train_aug_label_in_neither_folder_and_val_in_train_list(tmp_path):
    make_voc_mmseg(tmp_path)
    script = load_script(SCRIPT)
    voc = tmp_path / VOC
    os.unlink(voc / "SegmentationClass" / f"{VOC_TRAIN_NOT_IN_SBD[0]}.png")
    with pytest.raises(UserError, match=r"1 raw label\(s\) of the train_aug list missing.*"
                                        r"looked in SegmentationClassAug and SegmentationClass"):
        script.main(["--root", str(tmp_path), "--splits", "train_aug"])
    (voc / "ImageSets" / "Segmentation" / "trainaug.txt").write_text(
        "\n".join(VOC_TRAIN[1:] + VOC_VAL[:1]) + "\n")
    with pytest.raises(UserError, match="train_aug must exclude VOC 2012 val"):
        script.main(["--root", str(tmp_path), "--splits", "train_aug"])  # val list read too
