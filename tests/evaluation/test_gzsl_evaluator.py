"""GZSLSemSegEvaluator: hand-checkable confusion, batch-split invariance, ignore, bad labels,
pictures, and inference_on_dataset over the test loader."""

import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.data.helpers import CLASSES, SEEN, UNSEEN, random_labels, register_tiny
from zsseg_bench.config import get_cfg, validate_cfg
from zsseg_bench.data.build import build_test_loader
from zsseg_bench.data.catalog import DatasetCatalog
from zsseg_bench.evaluation import (
    GZSLSemSegEvaluator,
    build_evaluator,
    confusion_matrix,
    inference_on_dataset,
    metrics_from_confusion,
)
from zsseg_bench.utils.errors import UserError

K = len(CLASSES)


def _scores(pred: np.ndarray) -> torch.Tensor:
    return F.one_hot(torch.from_numpy(pred).long(), K).permute(2, 0, 1).float()


def _predictions(labels, seed=1):
    rng = np.random.default_rng(seed)
    preds = []
    for label in labels:
        pred = np.where(rng.random(label.shape) < 0.7, label, rng.integers(0, K, label.shape))
        preds.append(np.where(pred == 255, 0, pred))  # ignore pixels get some prediction
    return preds


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k]) for k in a)


@pytest.fixture()
def tiny(tmp_path):
    labels = random_labels(3)
    name = register_tiny(str(tmp_path), labels)
    yield name, labels, DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


def _run(evaluator, dicts, preds, split):
    evaluator.reset()
    start = 0
    for size in split:
        evaluator.process(dicts[start:start + size],
                          [{"sem_seg": _scores(p)} for p in preds[start:start + size]])
        start += size
    return evaluator.evaluate()


def test_matches_manual_confusion(tiny):
    name, labels, dicts = tiny
    preds = _predictions(labels)
    conf = np.zeros((K, K), dtype=np.int64)
    for gt, pred in zip(labels, preds):
        keep = gt != 255
        np.add.at(conf, (gt[keep].astype(int), pred[keep].astype(int)), 1)
    expected = metrics_from_confusion(conf, SEEN, UNSEEN, CLASSES)
    result = _run(GZSLSemSegEvaluator(name), dicts, preds, [3])
    assert _same(result, expected)
    assert set(f"IoU-{c}" for c in CLASSES) <= set(result)


def test_same_numbers_whatever_the_batch_split(tiny):
    name, labels, dicts = tiny
    preds = _predictions(labels)
    evaluator = GZSLSemSegEvaluator(name)
    whole = _run(evaluator, dicts, preds, [3])
    assert _same(whole, _run(evaluator, dicts, preds, [1, 1, 1]))
    assert _same(whole, _run(evaluator, dicts, preds, [2, 1]))
    assert _same(whole, _run(evaluator, dicts, preds, [1, 2]))


def test_all_ignore_image_changes_nothing(tmp_path):
    labels = random_labels(2)
    all_ignore = np.full((20, 24), 255, dtype=np.uint8)
    name = register_tiny(str(tmp_path), labels + [all_ignore])
    dicts = DatasetCatalog.get(name)
    preds = _predictions(labels) + [np.zeros_like(all_ignore)]
    evaluator = GZSLSemSegEvaluator(name)
    with_ignore = _run(evaluator, dicts, preds, [3])
    without = _run(evaluator, dicts[:2], preds[:2], [2])
    assert _same(with_ignore, without)
    only_ignore = _run(evaluator, dicts[2:], preds[2:], [1])
    assert all(math.isnan(v) for v in only_ignore.values())
    DatasetCatalog.remove(name)


def test_confusion_matrix_excludes_ignore():
    gt = torch.tensor([[0, 1, 255], [2, 2, 255]])
    pred = torch.tensor([[0, 2, 1], [2, 1, 0]])
    conf = confusion_matrix(pred, gt, 3)
    expected = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 1, 1]])
    assert torch.equal(conf, expected)


def test_label_value_outside_class_list_is_a_user_error(tmp_path):
    labels = random_labels(1)
    labels[0][0, 0] = 7  # 4 classes: 7 is neither a class nor 255
    name = register_tiny(str(tmp_path), labels)
    d = DatasetCatalog.get(name)
    evaluator = GZSLSemSegEvaluator(name)
    with pytest.raises(UserError, match=r"img_0\.png.*value\(s\) 7"):
        evaluator.process(d, [{"sem_seg": _scores(np.zeros_like(labels[0]))}])
    DatasetCatalog.remove(name)


def test_wrong_output_shape_is_an_error(tiny):
    name, labels, dicts = tiny
    evaluator = GZSLSemSegEvaluator(name)
    with pytest.raises(ValueError, match="original size"):
        evaluator.process(dicts[:1], [{"sem_seg": torch.zeros(K, 5, 5)}])
    with pytest.raises(ValueError, match="scores"):
        evaluator.process(dicts[:1], [{"sem_seg": torch.zeros(K + 1, *labels[0].shape)}])


def test_pictures_and_confusion_file(tiny, tmp_path):
    name, labels, dicts = tiny
    out = tmp_path / "run"
    evaluator = build_evaluator(get_cfg(), name, output_dir=str(out), num_vis=2)
    _run(evaluator, dicts, _predictions(labels), [3])
    pictures = sorted(os.listdir(out / "vis"))
    assert len(pictures) == 2 and all(p.endswith(".png") for p in pictures)
    with Image.open(out / "vis" / pictures[0]) as im:
        assert im.width > 3 * labels[0].shape[1]
    assert (out / "sem_seg_confusion.json").is_file()


def test_iou_rule_from_the_config(tmp_path):
    # 'cow' (unseen) never occurs in the ground truth, but is predicted on part of image 0
    labels = [np.where(label == 3, 1, label) for label in random_labels(3)]
    name = register_tiny(str(tmp_path), labels)
    dicts = DatasetCatalog.get(name)
    preds = _predictions(labels)
    preds[0][:8] = 3
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = (name,)  # the benchmark's own split (not a cross-dataset evaluation)
    results = {}
    for rule in ("union", "gt"):
        cfg.TEST.IOU_RULE = rule
        evaluator = build_evaluator(cfg, name, output_dir=str(tmp_path / rule))
        results[rule] = _run(evaluator, dicts, preds, [3])
        saved = json.loads((tmp_path / rule / "sem_seg_confusion.json").read_text())
        assert saved["iou_rule"] == rule
        assert _same(results[rule], metrics_from_confusion(
            np.array(saved["confusion"]), SEEN, UNSEEN, CLASSES, iou_rule=rule))
    assert results["union"]["IoU-cow"] == 0.0 and math.isnan(results["gt"]["IoU-cow"])
    assert results["gt"]["mIoU-unseen"] == pytest.approx(results["gt"]["IoU-dog"])
    assert results["union"]["mIoU-unseen"] == pytest.approx(results["gt"]["IoU-dog"] / 2)
    DatasetCatalog.remove(name)
    cfg.TEST.IOU_RULE = "present"
    with pytest.raises(UserError, match="TEST.IOU_RULE"):
        validate_cfg(cfg)
    with pytest.raises(ValueError, match="iou_rule"):
        GZSLSemSegEvaluator(name, iou_rule="mmseg")


class _OracleModel(torch.nn.Module):
    """Predicts the ground truth (read from disk) for even images, class 0 for odd ones."""

    def forward(self, batched_inputs):
        outs = []
        for x in batched_inputs:
            gt = np.array(Image.open(x["sem_seg_file_name"]))
            pred = np.where(gt == 255, 0, gt) if int(x["image_id"][-1]) % 2 == 0 \
                else np.zeros_like(gt)
            assert x["image"].dtype == torch.uint8
            outs.append({"sem_seg": _scores(pred)})
        return outs


@pytest.mark.parametrize("batch_size", [1, 2])
def test_inference_on_dataset(tiny, batch_size):
    name, labels, _ = tiny
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WORKERS = 0
    loader = build_test_loader(cfg, name, batch_size=batch_size)
    model = _OracleModel().train()
    results = inference_on_dataset(model, loader, GZSLSemSegEvaluator(name))
    assert model.training  # mode restored
    preds = [np.where(lb == 255, 0, lb) if i % 2 == 0 else np.zeros_like(lb)
             for i, lb in enumerate(labels)]
    expected = _run(GZSLSemSegEvaluator(name), DatasetCatalog.get(name), preds, [3])
    assert _same(results, expected)
