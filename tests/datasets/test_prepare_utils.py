"""The machinery shared by the prepare scripts (zsseg_bench.data.prepare_utils)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from zsseg_bench.data.prepare_utils import (
    MANIFEST_VERSION,
    RawLabelMapping,
    UnexpectedLabelValueError,
    manifest_path,
    read_label_png,
    read_manifest,
    read_split_list,
    remove_stale_temp_files,
    write_label_png,
)
from zsseg_bench.utils.errors import UserError


def test_mapping_maps_and_rejects_unexpected_values():
    mapping = RawLabelMapping({0: 255, 1: 0, 2: 1, 255: 255}, "0..2 and 255")
    raw = np.array([[0, 1], [2, 255]], dtype=np.uint16)
    out = mapping(raw, "a.png")
    assert out.dtype == np.uint8 and out.tolist() == [[255, 0], [1, 255]]
    for bad, shown in ((3, "3"), (256, "256"), (-1, "-1"), (254, "254")):
        with pytest.raises(UnexpectedLabelValueError,
                           match=rf"^a.png: unexpected raw label value\(s\) {shown} \(1 pixels"):
            mapping(np.array([[1, bad]], dtype=np.int64), "a.png")
    assert issubclass(UnexpectedLabelValueError, UserError)
    with pytest.raises(UnexpectedLabelValueError, match="float"):
        mapping(np.zeros((2, 2), np.float32), "f.png")


def test_split_lists_accept_stems_and_deeplab_paths(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("2007_000032\n\n/JPEGImages/2007_000039.jpg /SegmentationClassAug/"
                    "2007_000039.png\n2007_000032\n")
    assert read_split_list(str(path)) == ["2007_000032", "2007_000039"]
    path.write_text("\n")
    with pytest.raises(UserError, match="lists no image"):
        read_split_list(str(path))


def test_label_png_round_trip_and_bad_modes(tmp_path):
    label = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_label_png(str(tmp_path / "l.png"), label)
    np.testing.assert_array_equal(read_label_png(str(tmp_path / "l.png")), label)
    Image.new("RGB", (4, 3)).save(tmp_path / "rgb.png")
    with pytest.raises(UserError, match="mode RGB"):
        read_label_png(str(tmp_path / "rgb.png"))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read raw label file"):
        read_label_png(str(tmp_path / "broken.png"))


def test_stale_temp_files_are_removed(tmp_path):
    (tmp_path / ".a.png.x1.tmp").write_bytes(b"")
    (tmp_path / "a.png").write_bytes(b"")
    assert remove_stale_temp_files(str(tmp_path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_manifest_errors(tmp_path):
    label_dir = str(tmp_path / "val")
    assert manifest_path(label_dir + "/") == label_dir + ".json"
    assert read_manifest(label_dir) is None
    (tmp_path / "val.json").write_text("{broken")
    with pytest.raises(UserError, match="cannot read dataset manifest"):
        read_manifest(label_dir)
    (tmp_path / "val.json").write_text(json.dumps({"version": MANIFEST_VERSION + 1,
                                                   "images": []}))
    with pytest.raises(UserError, match="another format version"):
        read_manifest(label_dir)


def test_short_side_rule_of_the_ade20k_full_converter():
    from zsseg_bench.data.prepare_utils import short_side_size

    assert short_side_size(520, 600, 512) == (512, 591)  # round(600 / 520 * 512)
    assert short_side_size(1536, 2048, 512) == (512, 683)
    assert short_side_size(2048, 1536, 512) == (683, 512)
    assert short_side_size(512, 3000, 512) == (512, 3000)  # not above 512: kept
    assert short_side_size(300, 200, 512) == (300, 200)
