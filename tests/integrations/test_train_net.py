"""``scripts/train_net.py`` (detectron2's engine) on the tiny toy world: a transductive toy
training with both evaluators side by side; checkpoints that cross between the engines
(``zsseg-bench train`` -> ``train_net.py --eval-only`` and ``train_net.py`` ->
``zsseg-bench eval``) with equal evaluation, metrics and confusion matrices (the suite's run
keeps a weight average, which both engines evaluate); and the one-line refusal to train with
``MODEL_EMA`` there."""

import json
import subprocess
import sys

import pytest
import torch

from tests.integrations.helpers import (
    REPO,
    TINY_OPTS,
    TRAIN_NET,
    env,
    read_json,
    require_detectron2,
    run,
    same_metrics,
)

require_detectron2()

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402

from zsseg_bench.engine.checkpoint import build_model_with_weights  # noqa: E402

pytestmark = pytest.mark.slow  # five subprocesses of ~5 s CPU each

CONFIG = REPO / "configs" / "synthetic" / "zegclip.yaml"
VAL = "synthetic_val"
EMA_OPTS = ["MODEL_EMA.ENABLED", "True", "MODEL_EMA.DECAY", "0.5"]


def _confusion(path):
    return read_json(path / "sem_seg_confusion.json")["confusion"]


@pytest.fixture(scope="module")
def d2_run(toy_root, tmp_path_factory):
    """A transductive toy training by train_net.py (self-training from the second step)."""
    out = tmp_path_factory.mktemp("d2_run")
    run([str(TRAIN_NET), "--config-file", str(CONFIG), "OUTPUT_DIR", str(out), *TINY_OPTS,
         "ZERO_SHOT.SETTING", "transductive"], toy_root)
    return out


@pytest.fixture(scope="module")
def suite_run(toy_root, tmp_path_factory):
    """The same toy training (inductive) by ``zsseg-bench train``, with a weight average (its
    evaluation scores the average, so must ``train_net.py --eval-only``)."""
    out = tmp_path_factory.mktemp("suite_run")
    run(["-m", "zsseg_bench", "train", "--config-file", str(CONFIG), "--output-dir", str(out),
         *TINY_OPTS, *EMA_OPTS], toy_root)
    return out


def test_toy_training_reports_both_evaluators(d2_run):
    assert (d2_run / "model_final.pth").is_file()
    assert "Self-training starts at iteration 1" in (d2_run / "log.txt").read_text()
    results = read_json(d2_run / "inference" / VAL / "results.json")
    ours, theirs = results["gzsl_sem_seg"], results["sem_seg"]
    assert {"mIoU-seen", "mIoU-unseen", "hIoU"} <= ours.keys() and "fwIoU" in theirs
    assert ours["pAcc"] == pytest.approx(theirs["pACC"], abs=1e-9)
    assert ours["mAcc"] == pytest.approx(theirs["mACC"], abs=1e-9)
    last = [json.loads(line) for line in (d2_run / "metrics.json").read_text().splitlines()][-1]
    assert last["gzsl_sem_seg/mIoU"] == pytest.approx(ours["mIoU"], nan_ok=True)


def test_detectron2_checkpoint_evaluates_equally_in_the_suite(d2_run, toy_root, tmp_path):
    run(["-m", "zsseg_bench", "eval", "--config-file", str(CONFIG), "--weights",
         str(d2_run / "model_final.pth"), "--output-dir", str(tmp_path), *TINY_OPTS,
         "ZERO_SHOT.SETTING", "transductive"], toy_root)
    d2_results = read_json(d2_run / "inference" / VAL / "results.json")["gzsl_sem_seg"]
    assert same_metrics(read_json(tmp_path / "metrics.json")["metrics"], d2_results)
    assert _confusion(tmp_path) == _confusion(d2_run / "inference" / VAL)


def test_suite_checkpoint_evaluates_equally_in_detectron2(suite_run, toy_root, tmp_path):
    run([str(TRAIN_NET), "--config-file", str(CONFIG), "--eval-only", "OUTPUT_DIR",
         str(tmp_path), "MODEL.WEIGHTS", str(suite_run / "model_final.pth"), *TINY_OPTS],
        toy_root)
    d2_results = read_json(tmp_path / "inference" / VAL / "results.json")["gzsl_sem_seg"]
    assert same_metrics(d2_results, read_json(suite_run / "metrics.json")["metrics"])
    assert _confusion(tmp_path / "inference" / VAL) == _confusion(suite_run)


def test_training_with_a_weight_average_is_refused_in_one_line(toy_root, tmp_path):
    proc = subprocess.run([sys.executable, str(TRAIN_NET), "--config-file", str(CONFIG),
                           "OUTPUT_DIR", str(tmp_path), *TINY_OPTS, *EMA_OPTS], cwd=REPO,
                          env=env(toy_root), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "MODEL_EMA.ENABLED" in proc.stderr and "zsseg-bench train" in proc.stderr


def test_checkpoints_load_exactly_in_both_directions(d2_run, suite_run):
    """Every tensor of each engine's checkpoint arrives in the other engine's model, and the
    trained weights differ from a fresh model's (the loading is not vacuous)."""
    from detectron2.config import get_cfg

    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.integrations.detectron2 import add_zsseg_config, build_model, finalize_cfg

    cfg = add_zsseg_config(get_cfg())
    cfg.merge_from_file(str(CONFIG))
    cfg.merge_from_list(TINY_OPTS)
    finalize_cfg(cfg)
    model = build_model(cfg)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    suite_ckpt = torch.load(suite_run / "model_final.pth", weights_only=True)["model"]
    DetectionCheckpointer(model).load(str(suite_run / "model_final.pth"))
    state = model.state_dict()
    assert all(state[k].equal(v) for k, v in suite_ckpt.items())
    assert any(not fresh[k].equal(v) for k, v in suite_ckpt.items())

    d2_ckpt = torch.load(d2_run / "model_final.pth", weights_only=True)["model"]
    ours, _ = build_model_with_weights(setup_cfg(str(CONFIG), TINY_OPTS),
                                       str(d2_run / "model_final.pth"))
    state = ours.state_dict()
    assert state.keys() == d2_ckpt.keys()
    assert all(state[k].equal(v) for k, v in d2_ckpt.items())
