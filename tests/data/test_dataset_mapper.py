"""SemSegDatasetMapper: the batched_inputs contract in training and test mode."""

import numpy as np
import pytest
import torch

from tests.data.helpers import CLASSES, UNSEEN, random_labels, register_tiny
from zsseg_bench.config import get_cfg
from zsseg_bench.data.catalog import DatasetCatalog
from zsseg_bench.data.dataset_mapper import SemSegDatasetMapper


@pytest.fixture()
def tiny(tmp_path):
    name = register_tiny(str(tmp_path), random_labels(3, sizes=((60, 80), (72, 50))))
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = (name,)
    cfg.DATASETS.TEST = (name,)
    cfg.INPUT.RESIZE.SCALE = (160, 64)
    cfg.INPUT.CROP.SIZE = (48, 48)
    cfg.INPUT.TEST_SCALE = (200, 40)
    yield cfg, DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


def _check_contract(out, d, train):
    image = out["image"]
    assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8
    assert image.dim() == 3 and image.shape[0] == 3 and image.is_contiguous()
    assert (out["height"], out["width"]) == (d["height"], d["width"])
    assert out["file_name"] == d["file_name"]
    if train:
        seg = out["sem_seg"]
        assert seg.dtype == torch.int64 and seg.shape == image.shape[1:]
    else:
        assert "sem_seg" not in out


@pytest.mark.parametrize("setting", ["inductive", "transductive"])
def test_training_contract_and_split(tiny, setting):
    cfg, dicts = tiny
    cfg.ZERO_SHOT.SETTING = setting
    mapper = SemSegDatasetMapper(cfg, True)
    values = set()
    for i, d in enumerate(dicts * 4):
        out = mapper(d, rng=np.random.default_rng(i))
        _check_contract(out, d, train=True)
        assert max(out["image"].shape[1:]) <= 48
        values |= set(out["sem_seg"].unique().tolist())
    seen = set(range(len(CLASSES))) - set(UNSEEN)
    assert not values & set(UNSEEN)  # no unseen id ever reaches training
    extra = {255, 254} if setting == "transductive" else {255}
    assert values <= seen | extra
    assert (254 in values) == (setting == "transductive")


def test_label_alignment_without_augmentation(tiny):
    cfg, dicts = tiny
    cfg.INPUT.RESIZE.ENABLED = cfg.INPUT.CROP.ENABLED = cfg.INPUT.FLIP = False
    cfg.INPUT.COLOR_AUG = False
    out = SemSegDatasetMapper(cfg, True)(dicts[0])
    from PIL import Image
    gt = np.array(Image.open(dicts[0]["sem_seg_file_name"]))
    image = np.array(Image.open(dicts[0]["file_name"]))
    expected = np.where(np.isin(gt, UNSEEN), 255, gt)
    np.testing.assert_array_equal(out["sem_seg"].numpy(), expected)
    np.testing.assert_array_equal(out["image"].permute(1, 2, 0).numpy(), image)


def test_test_mode_resizes_and_keeps_original_size(tiny):
    cfg, dicts = tiny
    mapper = SemSegDatasetMapper(cfg, False)
    for d in dicts:
        out = mapper(d)
        _check_contract(out, d, train=False)
        assert min(out["image"].shape[1:]) == 40


def test_same_rng_same_sample(tiny):
    cfg, dicts = tiny
    mapper = SemSegDatasetMapper(cfg, True)
    a = mapper(dicts[1], rng=np.random.default_rng(7))
    b = mapper(dicts[1], rng=np.random.default_rng(7))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["sem_seg"], b["sem_seg"])
