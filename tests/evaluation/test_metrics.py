"""metrics_from_confusion on small hand-computed confusion matrices."""

import math

import numpy as np
import pytest
import torch

from zsseg_bench.evaluation import harmonic_mean_iou, metrics_from_confusion

# rows = ground truth, columns = prediction
CONF = np.array([[3, 1, 0],
                 [0, 2, 0],
                 [1, 0, 3]])
# tp = 3, 2, 3; gt = 4, 2, 4; pred = 4, 3, 3; union = 5, 3, 4
IOU = [60.0, 200.0 / 3.0, 75.0]


def test_hand_computed_values():
    r = metrics_from_confusion(CONF, seen=[0, 1], unseen=[2], class_names=["a", "b", "c"])
    assert r["IoU-a"] == pytest.approx(60.0)
    assert r["IoU-b"] == pytest.approx(200.0 / 3.0)
    assert r["IoU-c"] == pytest.approx(75.0)
    assert r["mIoU"] == pytest.approx(sum(IOU) / 3)
    seen = (60.0 + 200.0 / 3.0) / 2
    assert r["mIoU-seen"] == pytest.approx(seen)
    assert r["mIoU-unseen"] == pytest.approx(75.0)
    assert r["hIoU"] == pytest.approx(2 * seen * 75.0 / (seen + 75.0))
    assert r["pAcc"] == pytest.approx(80.0)
    assert r["mAcc"] == pytest.approx((75.0 + 100.0 + 75.0) / 3)
    # fwIoU: ground-truth frequencies 4/10, 2/10, 4/10
    assert r["fwIoU"] == pytest.approx(0.4 * 60.0 + 0.2 * 200.0 / 3.0 + 0.4 * 75.0)
    assert list(r)[:7] == ["mIoU", "mIoU-seen", "mIoU-unseen", "hIoU", "pAcc", "mAcc", "fwIoU"]


def test_torch_input_and_default_names():
    r = metrics_from_confusion(torch.tensor(CONF), seen=[0, 1], unseen=[2])
    assert r["IoU-1"] == pytest.approx(200.0 / 3.0)


def test_class_absent_from_gt_and_prediction_is_excluded():
    conf = np.zeros((4, 4), dtype=np.int64)
    conf[:3, :3] = CONF
    r = metrics_from_confusion(conf, seen=[0, 1], unseen=[2, 3])
    assert math.isnan(r["IoU-3"])
    assert r["mIoU"] == pytest.approx(sum(IOU) / 3)          # not averaged in as 0
    assert r["mIoU-unseen"] == pytest.approx(75.0)
    assert r["mAcc"] == pytest.approx((75.0 + 100.0 + 75.0) / 3)


def test_class_only_predicted_counts_as_zero():
    conf = np.zeros((4, 4), dtype=np.int64)
    conf[:3, :3] = CONF
    conf[0, 3] = 2  # two background pixels predicted as class 3, which never occurs
    r = metrics_from_confusion(conf, seen=[0, 1], unseen=[2, 3])
    assert r["IoU-3"] == 0.0
    iou0 = 3 / (6 + 4 - 3) * 100  # gt 6, pred 4, tp 3
    assert r["IoU-0"] == pytest.approx(iou0)
    assert r["mIoU"] == pytest.approx((iou0 + 200 / 3 + 75 + 0) / 4)
    assert r["mIoU-unseen"] == pytest.approx(37.5)
    # accuracy is defined only for classes present in the ground truth
    assert r["mAcc"] == pytest.approx((50.0 + 100.0 + 75.0) / 3)
    assert r["fwIoU"] == pytest.approx((6 * iou0 + 2 * 200 / 3 + 4 * 75) / 12)


def test_gt_rule_leaves_out_a_class_only_predicted():
    conf = np.zeros((4, 4), dtype=np.int64)
    conf[:3, :3] = CONF
    conf[0, 3] = 2
    union = metrics_from_confusion(conf, seen=[0, 1], unseen=[2, 3])
    gt = metrics_from_confusion(conf, seen=[0, 1], unseen=[2, 3], iou_rule="gt")
    iou0 = 3 / 7 * 100
    assert math.isnan(gt["IoU-3"])
    assert gt["IoU-0"] == pytest.approx(iou0)                 # classes present: same IoU
    assert gt["mIoU"] == pytest.approx((iou0 + 200 / 3 + 75) / 3)
    assert gt["mIoU-unseen"] == pytest.approx(75.0)
    assert gt["hIoU"] == pytest.approx(harmonic_mean_iou(gt["mIoU-seen"], 75.0))
    assert gt["mIoU"] > union["mIoU"] and gt["mIoU-unseen"] > union["mIoU-unseen"]
    for key in ("mIoU-seen", "pAcc", "mAcc", "fwIoU"):            # independent of the rule
        assert gt[key] == pytest.approx(union[key])


def test_rules_agree_when_every_predicted_class_is_present():
    union = metrics_from_confusion(CONF, seen=[0, 1], unseen=[2])
    gt = metrics_from_confusion(CONF, seen=[0, 1], unseen=[2], iou_rule="gt")
    assert union == pytest.approx(gt)


def test_hiou_is_zero_when_unseen_is_zero():
    conf = np.array([[5, 0], [4, 0]])  # the unseen class is never predicted right
    r = metrics_from_confusion(conf, seen=[0], unseen=[1])
    assert r["mIoU-unseen"] == 0.0
    assert r["hIoU"] == 0.0
    assert harmonic_mean_iou(0.0, 50.0) == 0.0
    assert harmonic_mean_iou(50.0, 50.0) == pytest.approx(50.0)


def test_empty_groups_and_empty_matrix_are_nan():
    r = metrics_from_confusion(CONF, seen=[0, 1, 2], unseen=[])
    assert math.isnan(r["mIoU-unseen"]) and math.isnan(r["hIoU"])
    empty = metrics_from_confusion(np.zeros((3, 3)), seen=[0, 1], unseen=[2])
    assert all(math.isnan(v) for v in empty.values())


def test_bad_arguments():
    with pytest.raises(ValueError):
        metrics_from_confusion(np.zeros((3, 2)), seen=[0], unseen=[1])
    with pytest.raises(ValueError):
        metrics_from_confusion(CONF, seen=[0, 5], unseen=[2])
    with pytest.raises(ValueError):
        metrics_from_confusion(CONF, seen=[0], unseen=[1], class_names=["a"])
    with pytest.raises(ValueError, match="iou_rule"):
        metrics_from_confusion(CONF, seen=[0], unseen=[1], iou_rule="present")
