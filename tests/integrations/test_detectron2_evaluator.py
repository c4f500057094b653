"""The suite's GZSL evaluator vs detectron2's ``SemSegEvaluator`` on the same predictions:
equal where the conventions agree (pixel and class accuracy, the IoU of every class present in
the ground truth, mIoU when every predicted class is present), and the difference explained
where they do not (a class predicted but absent from the ground truth: IoU 0 and counted in the
suite's mIoU, left out by detectron2)."""

import numpy as np
import pytest
import torch

from tests.integrations.helpers import PREFIX, require_detectron2

require_detectron2()
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:detectron2.*")

from zsseg_bench.config import get_cfg  # noqa: E402
from zsseg_bench.data.catalog import DatasetCatalog  # noqa: E402
from zsseg_bench.data.image_io import read_sem_seg  # noqa: E402
from zsseg_bench.integrations.detectron2 import GZSL_TASK, build_evaluator  # noqa: E402

VAL = f"{PREFIX}_val"
NUM_CLASSES = 21


def _one_hot(pred: np.ndarray) -> torch.Tensor:
    scores = torch.zeros(NUM_CLASSES, *pred.shape)
    scores.scatter_(0, torch.from_numpy(pred).long()[None], 1.0)
    return scores


def _evaluate(predict):
    """Both evaluators over the val images, the prediction of each being ``predict(gt)``."""
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = ()  # the evaluated dataset's own seen / unseen split
    evaluator = build_evaluator(cfg, VAL)
    evaluator.reset()
    for record in DatasetCatalog.get(VAL):
        gt = read_sem_seg(record["sem_seg_file_name"], NUM_CLASSES)
        evaluator.process([record], [{"sem_seg": _one_hot(predict(gt))}])
    results = evaluator.evaluate()
    return results[GZSL_TASK], results["sem_seg"]


def _shifted(gt: np.ndarray) -> np.ndarray:
    """Errors only between classes of the image: the label map moved by 5 pixels."""
    return np.roll(gt, 5, axis=1)


def _present() -> set[int]:
    """The class ids that occur in the val ground truth."""
    return set().union(*(np.unique(read_sem_seg(r["sem_seg_file_name"], NUM_CLASSES)).tolist()
                         for r in DatasetCatalog.get(VAL)))


def _iou_keys(results) -> list[str]:
    """``IoU-<name>`` keys in class-id order."""
    return [k for k in results if k.startswith("IoU-")]


def test_equal_when_every_predicted_class_is_in_the_ground_truth(toy_root):
    ours, theirs = _evaluate(_shifted)
    assert 0 < ours["mIoU"] < 100
    assert ours["mIoU"] == pytest.approx(theirs["mIoU"], abs=1e-9)
    assert ours["pAcc"] == pytest.approx(theirs["pACC"], abs=1e-9)
    assert ours["mAcc"] == pytest.approx(theirs["mACC"], abs=1e-9)
    for key in _iou_keys(ours):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-9, nan_ok=True), key


def test_a_predicted_absent_class_counts_only_in_the_suites_miou(toy_root):
    present = _present()
    absent = min(set(range(NUM_CLASSES)) - present)

    def predict(gt):
        pred = _shifted(gt).copy()
        pred[:10, :10] = absent
        return pred

    ours, theirs = _evaluate(predict)
    keys = _iou_keys(ours)
    assert ours[keys[absent]] == 0.0 and np.isnan(theirs[keys[absent]])
    in_gt = [ours[keys[i]] for i in sorted(present)]
    assert theirs["mIoU"] == pytest.approx(np.mean(in_gt), abs=1e-9)
    assert ours["mIoU"] == pytest.approx(np.sum(in_gt) / (len(in_gt) + 1), abs=1e-9)
    assert ours["mIoU"] < theirs["mIoU"]
    assert ours["pAcc"] == pytest.approx(theirs["pACC"], abs=1e-9)
    assert ours["mAcc"] == pytest.approx(theirs["mACC"], abs=1e-9)
    for i in present:
        assert ours[keys[i]] == pytest.approx(theirs[keys[i]], abs=1e-9), keys[i]
