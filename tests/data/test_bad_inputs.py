"""Bad inputs stop with one UserError that names the file and the fix; nothing is skipped."""

import os

import numpy as np
import pytest
from PIL import Image

from tests.data.helpers import CLASSES, random_labels, write_pairs
from zsseg_bench.data.dataset_mapper import SemSegDatasetMapper
from zsseg_bench.data.datasets.load_sem_seg import load_sem_seg
from zsseg_bench.data.image_io import read_image, read_sem_seg
from zsseg_bench.data.transforms import RandomFlip
from zsseg_bench.utils.errors import UserError


def _mapper():
    return SemSegDatasetMapper(True, augmentations=[RandomFlip(0.5)], num_classes=len(CLASSES),
                               unseen_classes=[3])


def _load(image_dir, label_dir, **kw):
    return load_sem_seg(label_dir, image_dir, image_ext="png", **kw)


def test_missing_dataset_folder_names_folder_and_fix(tmp_path):
    missing = str(tmp_path / "nowhere" / "images")
    with pytest.raises(UserError) as e:
        load_sem_seg(str(tmp_path), missing, missing_hint="run `python datasets/prepare_x.py`")
    assert missing in str(e.value) and "prepare_x.py" in str(e.value)


def test_missing_real_dataset_names_prepare_script_and_layout(tmp_path):
    from zsseg_bench.data.datasets.voc import VOC_BENCHMARK

    with pytest.raises(UserError) as e:
        VOC_BENCHMARK.load(str(tmp_path), VOC_BENCHMARK.splits[-1])
    message = str(e.value)
    assert "datasets/prepare_voc_sem_seg.py" in message and "JPEGImages" in message


def test_image_without_label(tmp_path):
    image_dir, label_dir = write_pairs(str(tmp_path), random_labels(3))
    os.remove(os.path.join(label_dir, "img_1.png"))
    with pytest.raises(UserError, match=r"without a label: .*img_1\.png"):
        _load(image_dir, label_dir)
    with pytest.raises(UserError, match=r"img_1\.png"):
        _load(image_dir, label_dir, stems=["img_0", "img_1"])
    assert len(_load(image_dir, label_dir, stems=["img_0", "img_2"])) == 2


def test_label_without_image_and_listed_image_missing(tmp_path):
    image_dir, label_dir = write_pairs(str(tmp_path), random_labels(2))
    os.remove(os.path.join(image_dir, "img_0.png"))
    with pytest.raises(UserError, match=r"without an image.*img_0\.png"):
        _load(image_dir, label_dir)
    with pytest.raises(UserError, match=r"missing: .*img_0\.png"):
        _load(image_dir, label_dir, stems=["img_0"])


def test_empty_image_folder(tmp_path):
    os.makedirs(tmp_path / "images")
    os.makedirs(tmp_path / "labels")
    with pytest.raises(UserError, match="no \\*.png image"):
        _load(str(tmp_path / "images"), str(tmp_path / "labels"))


def test_label_value_outside_class_list(tmp_path):
    labels = random_labels(1)
    labels[0][3, 4] = 9
    image_dir, label_dir = write_pairs(str(tmp_path), labels)
    d = _load(image_dir, label_dir)[0]
    with pytest.raises(UserError, match=r"img_0\.png holds value\(s\) 9 outside the class"):
        _mapper()(d)
    # 255 (ignore) is fine
    labels[0][3, 4] = 255
    write_pairs(str(tmp_path), labels)
    assert _mapper()(d)["sem_seg"].shape == labels[0].shape


def test_unreadable_image_file(tmp_path):
    image_dir, label_dir = write_pairs(str(tmp_path), random_labels(2))
    bad = os.path.join(image_dir, "img_1.png")
    with open(bad, "wb") as f:
        f.write(b"this is not a png")
    with pytest.raises(UserError, match=r"cannot read image file .*img_1\.png"):
        _load(image_dir, label_dir)  # reading the sizes opens the header
    d = _load(image_dir, label_dir, read_sizes=False)[1]
    with pytest.raises(UserError, match=r"cannot read image file .*img_1\.png"):
        _mapper()(d)
    with pytest.raises(UserError, match="not found"):
        read_image(str(tmp_path / "missing.jpg"))


def test_bad_label_files(tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    with pytest.raises(UserError, match="single-channel"):
        read_sem_seg(str(rgb))
    with pytest.raises(UserError, match="not found"):
        read_sem_seg(str(tmp_path / "nope.png"))


def test_image_and_label_of_different_sizes(tmp_path):
    image_dir, label_dir = write_pairs(str(tmp_path), random_labels(1))
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(os.path.join(label_dir, "img_0.png"))
    d = _load(image_dir, label_dir)[0]
    with pytest.raises(UserError, match=r"label .*img_0\.png is 5x5"):
        _mapper()(d)
