"""The evaluation-only datasets ade20k_150_val, ade20k_847_val, pcontext_459_val: registration,
loading of prepared fixtures, the test mapper, the refusal to train on wide (16-bit) labels,
and the evaluator's metrics on a dataset of more than 255 classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.datasets.fixtures import (
    ADE150_VAL,
    ADE_FULL_VAL,
    PCONTEXT_SPLITS,
    REPO,
    load_script,
    make_ade150,
    make_ade_full,
    make_pcontext,
)
from tests.datasets.test_real_datasets import registered_under
from zsseg_bench.config import get_cfg
from zsseg_bench.data.catalog import DatasetCatalog, MetadataCatalog
from zsseg_bench.data.dataset_mapper import SemSegDatasetMapper
from zsseg_bench.data.datasets.ade20k import ADE20K_150_BENCHMARK
from zsseg_bench.data.datasets.ade20k_full import ADE20K_847_BENCHMARK
from zsseg_bench.data.datasets.pcontext import PCONTEXT459_BENCHMARK
from zsseg_bench.data.image_io import read_sem_seg
from zsseg_bench.data.transfer import evaluation_split
from zsseg_bench.evaluation.sem_seg_evaluation import GZSLSemSegEvaluator
from zsseg_bench.utils.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

WIDE = {  # name: (spec, classes, ignore label)
    "ade20k_150_val": (ADE20K_150_BENCHMARK, 150, 255),
    "ade20k_847_val": (ADE20K_847_BENCHMARK, 847, 65535),
    "pcontext_459_val": (PCONTEXT459_BENCHMARK, 459, 65535),
}


def prepare(key: str, root) -> list[str]:
    """Writes the fixture of ``key`` under ``root``, prepares it; returns its stems."""
    if key == "ade20k_150_val":
        make_ade150(root)
        load_script("prepare_ade20k_sem_seg.py").main(["--root", str(root), "--workers", "1"])
        return ADE150_VAL
    if key == "ade20k_847_val":
        make_ade_full(root, np.array([2978, 312, 2043]))
        load_script("prepare_ade20k_full_sem_seg.py").main(["--root", str(root), "--workers",
                                                           "1"])
        return sorted(ADE_FULL_VAL)
    make_pcontext(root, "json")
    load_script("prepare_pascal_context_sem_seg.py").main(
        ["--root", str(root), "--workers", "1", "--classes", "459", "--splits", "val"])
    return PCONTEXT_SPLITS["val"]


def test_registration_and_metadata():
    for name, (spec, num, ignore) in WIDE.items():
        assert name in DatasetCatalog.list()
        meta = MetadataCatalog.get(name)
        assert len(meta.stuff_classes) == num and meta.ignore_label == ignore
        assert meta.seen_classes == list(range(num)) and meta.unseen_classes == []
        assert "evaluation only" in meta.split_source
        assert [s.official_count for s in spec.splits] == [{"pcontext_459_val": 5104}.get(
            name, 2000)]
        assert (REPO / spec.prepare_script).is_file()


def test_cross_dataset_split_follows_the_training_labels():
    """pcontext_459_val after training on Context-59 (inductive): the 49 seen names are seen."""
    names, seen, unseen = evaluation_split("pcontext_459_val", "pcontext_zs_train",
                                           "inductive")
    assert len(seen) == 49 and len(unseen) == 410 and "cow" in [names[i] for i in unseen]


def test_synonym_lists_match_by_any_synonym():
    """ADE20K-847 names list synonyms: "person, individual, ..." is COCO-Stuff's "person"."""
    names, seen, unseen = evaluation_split("ade20k_847_val", "coco_stuff_zs_train", "inductive")
    by_name = {n.split(",")[0]: i for i, n in enumerate(names)}
    assert names[by_name["person"]].startswith("person, individual")
    assert by_name["person"] in seen and by_name["wall"] in unseen  # COCO: wall-concrete etc.
    assert by_name["tree"] in unseen  # a COCO-Stuff unseen class has no training labels


@pytest.mark.parametrize("name", list(WIDE))
def test_prepared_fixture_loads_and_maps_for_test(tmp_path, name):
    spec, num, ignore = WIDE[name]
    stems = prepare(name, tmp_path)
    cfg = get_cfg()
    with registered_under(spec, tmp_path):
        dicts = DatasetCatalog.get(name)
        assert [d["image_id"] for d in dicts] == sorted(stems)
        mapper = SemSegDatasetMapper(cfg, is_train=False, dataset_name=name)
        for d in dicts:
            out = mapper(d)
            assert (out["height"], out["width"]) == (d["height"], d["width"])
            label = read_sem_seg(d["sem_seg_file_name"], num, ignore)
            assert label.shape == (d["height"], d["width"])
        if ignore == 65535:
            cfg.DATASETS.TRAIN = (name,)
            with pytest.raises(UserError, match=f"{name} has {num} classes.*evaluation only"):
                SemSegDatasetMapper(cfg, is_train=True)


def test_evaluator_on_459_classes(tmp_path):
    """Known predictions on the Context-459 fixture: the metrics equal a confusion matrix
    counted here, ids above 255 included (wool 458 predicted as wood 457)."""
    prepare("pcontext_459_val", tmp_path)
    names = list(PCONTEXT459_BENCHMARK.classes)
    wood, wool = names.index("wood"), names.index("wool")
    with registered_under(PCONTEXT459_BENCHMARK, tmp_path):
        evaluator = GZSLSemSegEvaluator("pcontext_459_val")
        expected = np.zeros((459, 459), dtype=np.int64)
        for d in DatasetCatalog.get("pcontext_459_val"):
            gt = read_sem_seg(d["sem_seg_file_name"], 459, 65535)
            pred = np.where(gt == 65535, 0, gt)
            pred[gt == wool] = wood
            scores = torch.nn.functional.one_hot(torch.from_numpy(pred).long(), 459)
            evaluator.process([d], [{"sem_seg": scores.permute(2, 0, 1).float()}])
            keep = gt != 65535
            np.add.at(expected, (gt[keep], pred[keep]), 1)
        results = evaluator.evaluate()
    np.testing.assert_array_equal(evaluator.confusion().numpy(), expected)
    assert expected[wool, wood] > 0 and expected[wool].sum() == expected[wool, wood]
    tp, gt_sum, pred_sum = np.diag(expected), expected.sum(1), expected.sum(0)
    present = (gt_sum + pred_sum) > 0
    iou = tp[present] / (gt_sum + pred_sum - tp)[present]
    assert results["mIoU"] == pytest.approx(100 * iou.mean())
    assert results["pAcc"] == pytest.approx(100 * tp.sum() / expected.sum())
    assert results["IoU-wool"] == 0.0
    assert results["IoU-wood"] == pytest.approx(100 * tp[wood] / (gt_sum[wood] + pred_sum[wood]
                                                                  - tp[wood]))
