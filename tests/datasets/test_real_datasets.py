"""The registered real benchmarks: class lists, zero-shot splits, loading prepared fixtures
into dataset dicts that the mapper accepts, and the error when a dataset is not prepared."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.datasets.fixtures import (
    COCO_SPLITS,
    PCONTEXT_SPLITS,
    REPO,
    VOC_TRAIN,
    VOC_VAL,
    load_script,
    make_coco,
    make_pcontext,
    make_voc,
)
from zsseg_bench.config import get_cfg
from zsseg_bench.data.catalog import DatasetCatalog, MetadataCatalog
from zsseg_bench.data.dataset_mapper import SemSegDatasetMapper
from zsseg_bench.data.datasets.coco_stuff import COCO_STUFF_BENCHMARK
from zsseg_bench.data.datasets.pcontext import PCONTEXT_BENCHMARK
from zsseg_bench.data.datasets.voc import VOC_BENCHMARK
from zsseg_bench.utils.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# Official VOC order (devkit VOCcode/VOCinit.m), background excluded.
VOC_OFFICIAL = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
                "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
                "sheep", "sofa", "train", "tvmonitor"]
# Unseen ids in the official configs, in the same class order as ours:
ZEGCLIP_VOC_NOVEL = [15, 16, 17, 18, 19]  # ZegCLIP configs/voc12/vpt_seg_zero_..._20k_12_10.py
ZEGCLIP_COCO_NOVEL = [19, 23, 28, 29, 36, 51, 76, 88, 94, 112, 133, 136, 137, 157, 160]
OTSEG_CONTEXT_NOVEL = [19, 33, 48, 14, 7, 24, 6, 54, 31, 0]  # OTSeg configs/context/...vpt.py

BENCHMARKS = {  # spec, config, script, fixture writer, {split name: stems}
    "voc": (VOC_BENCHMARK, "Base-VOC.yaml", "prepare_voc_sem_seg.py", make_voc,
            {"voc_zs_train": VOC_TRAIN, "voc_zs_val": VOC_VAL}),
    "coco_stuff": (COCO_STUFF_BENCHMARK, "Base-COCOStuff.yaml", "prepare_coco_stuff_sem_seg.py",
                   make_coco, {"coco_stuff_zs_train": COCO_SPLITS["train2017"],
                               "coco_stuff_zs_val": COCO_SPLITS["val2017"]}),
    "pcontext": (PCONTEXT_BENCHMARK, "Base-PContext.yaml", "prepare_pascal_context_sem_seg.py",
                 lambda root: make_pcontext(root, "json"),
                 {"pcontext_zs_train": PCONTEXT_SPLITS["train"],
                  "pcontext_zs_val": PCONTEXT_SPLITS["val"]}),
}


def test_class_lists_and_splits():
    assert list(VOC_BENCHMARK.classes) == VOC_OFFICIAL
    assert VOC_BENCHMARK.unseen_classes == ZEGCLIP_VOC_NOVEL
    assert len(COCO_STUFF_BENCHMARK.classes) == 171
    assert COCO_STUFF_BENCHMARK.unseen_classes == ZEGCLIP_COCO_NOVEL
    assert len(PCONTEXT_BENCHMARK.classes) == 59
    assert PCONTEXT_BENCHMARK.unseen_classes == sorted(OTSEG_CONTEXT_NOVEL)
    for spec, n_seen, n_unseen in ((VOC_BENCHMARK, 15, 5), (COCO_STUFF_BENCHMARK, 156, 15),
                                   (PCONTEXT_BENCHMARK, 49, 10)):
        assert (len(spec.seen_classes), len(spec.unseen_classes)) == (n_seen, n_unseen)
        assert sorted(spec.seen_classes + spec.unseen_classes) == list(range(len(spec.classes)))


def test_builtin_registration_and_metadata():
    for key, (spec, _, script, _, splits) in BENCHMARKS.items():
        for name in splits:
            assert name in DatasetCatalog.list(), key
            meta = MetadataCatalog.get(name)
            assert meta.stuff_classes == list(spec.classes)
            assert meta.seen_classes == spec.seen_classes
            assert meta.unseen_classes == spec.unseen_classes
            assert meta.ignore_label == 255 and meta.evaluator_type == "gzsl_sem_seg"
            assert spec.prepare_script == f"datasets/{script}"
            assert (REPO / spec.prepare_script).is_file()


@contextlib.contextmanager
def registered_under(spec, root: Path):
    """Registers the benchmark's names under ``root`` for the block, then restores them."""
    old = {s.name: (DatasetCatalog[s.name], MetadataCatalog.get(s.name).as_dict())
           for s in spec.splits}
    for name in old:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    try:
        spec.register(str(root))
        yield
    finally:
        for name, (func, meta) in old.items():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
            DatasetCatalog.register(name, func)
            meta.pop("name", None)
            MetadataCatalog.get(name).set(**meta)


def test_unprepared_dataset_names_the_prepare_script(tmp_path):
    with registered_under(VOC_BENCHMARK, tmp_path), pytest.raises(UserError) as info:
        DatasetCatalog.get("voc_zs_val")
    message = str(info.value)
    assert "not prepared" in message and "datasets/prepare_voc_sem_seg.py" in message
    assert os.path.join(str(tmp_path), "VOCdevkit", "VOC2012", "annotations_zsseg", "val") \
        in message


@pytest.mark.parametrize("key", list(BENCHMARKS))
def test_prepared_fixture_loads_and_maps(tmp_path, key):
    spec, config, script, make, splits = BENCHMARKS[key]
    make(tmp_path)
    load_script(script).main(["--root", str(tmp_path), "--workers", "1"])
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / "configs" / config))
    assert list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST) == list(splits)
    with registered_under(spec, tmp_path):
        for name, stems in splits.items():
            dicts = DatasetCatalog.get(name)
            assert [d["image_id"] for d in dicts] == sorted(stems)
            for d in dicts:
                assert set(d) == {"file_name", "sem_seg_file_name", "height", "width",
                                  "image_id"}
                assert os.path.isfile(d["file_name"]) and os.path.isfile(d["sem_seg_file_name"])
        train = SemSegDatasetMapper(cfg, is_train=True)
        allowed = set(spec.seen_classes) | {255}  # inductive: unseen pixels ignored
        for d in DatasetCatalog.get(cfg.DATASETS.TRAIN[0]):
            out = train(d, rng=np.random.default_rng(0))
            assert out["image"].dtype == torch.uint8 and out["image"].shape[0] == 3
            assert out["sem_seg"].shape == out["image"].shape[1:]
            assert set(torch.unique(out["sem_seg"]).tolist()) <= allowed
            assert (out["height"], out["width"]) == (d["height"], d["width"])
        test = SemSegDatasetMapper(cfg, is_train=False)
        for d in DatasetCatalog.get(cfg.DATASETS.TEST[0]):
            out = test(d)
            assert min(out["image"].shape[1:]) == min(cfg.INPUT.TEST_SCALE)  # short side
