"""The training loop on the toy world with the test-only head: loss goes down, metrics.json and
log.jsonl are written, an interrupted and resumed run ends exactly where an uninterrupted one
does, a NaN loss stops the run with the last good checkpoint intact, and the transductive
switch flips at the configured iteration."""

import json
import math

import pytest
import torch

from tests.engine.helpers import make_cfg, trainable_weights
from zsseg_bench.engine.errors import NonFiniteLossError, TrainingStopped
from zsseg_bench.engine.train_loop import HookBase
from zsseg_bench.engine.trainer import Trainer
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import json_safe
from zsseg_bench.utils.run_dir import setup_run_dir

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(cfg, resume=False, hooks=()):
    trainer = Trainer(cfg, setup_run_dir(cfg.OUTPUT_DIR, cfg), progress_bar=False)
    trainer.register_hooks(list(hooks))
    trainer.resume_or_load(resume=resume)
    return trainer


def _records(out, kind):
    lines = (out / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


class _Call(HookBase):
    """Calls ``fn(trainer)`` after iteration ``at``."""

    def __init__(self, at, fn):
        self.at, self.fn = at, fn

    def after_step(self):
        if self.trainer.iter == self.at:
            self.fn(self.trainer)


class _KilledError(Exception):
    pass


def _kill(trainer):
    raise _KilledError  # like SIGKILL: no chance to save anything


def _request_stop(trainer):
    trainer.stop_requested = True  # what the SIGTERM handler does


def test_loss_decreases_and_run_dir_is_complete(toy_root, tmp_path):
    cfg = make_cfg(tmp_path, SOLVER__MAX_ITER=24, SOLVER__BASE_LR=0.05,
                   SOLVER__CHECKPOINT_PERIOD=100, SOLVER__WARMUP_ITERS=2)
    record = _trainer(cfg).train()
    losses = [r["loss_ce"] for r in _records(tmp_path, "train")]
    assert len(losses) == 24
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.9 * first, losses
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == json_safe(record)  # NaN metrics are written as null
    assert on_disk["iteration"] == 24 and on_disk["dataset"] == "engine_test_val"
    assert {"mIoU", "mIoU-seen", "mIoU-unseen", "hIoU", "pAcc", "mAcc", "fwIoU"} <= set(
        on_disk["metrics"])
    assert on_disk["iou_rule"] == "union"
    assert on_disk["seen_classes"][0] == "background" and len(on_disk["unseen_classes"]) == 5
    assert 0 < on_disk["train_time_s"] <= on_disk["wall_time_s"]
    assert {"config.yaml", "env.json", "log.jsonl", "metrics.json", "model_final.pth",
            "last_checkpoint"} <= {p.name for p in tmp_path.iterdir()}


def test_resume_after_interruptions_reproduces_the_uninterrupted_run(toy_root, tmp_path):
    opts = dict(SOLVER__MAX_ITER=8, SOLVER__CHECKPOINT_PERIOD=2, SOLVER__ACCUMULATION_STEPS=2,
                SOLVER__WARMUP_ITERS=2, SOLVER__CLIP_GRADIENTS__ENABLED=True,
                SOLVER__CLIP_GRADIENTS__CLIP_VALUE=0.5, ZERO_SHOT__SETTING="transductive")
    ref = make_cfg(tmp_path / "ref", **opts)
    ref_record = _trainer(ref).train()

    # Same run, with an evaluation every 3 iterations (it must not change training), stopped
    # by a stop request (SIGTERM) after iteration 2, then killed after iteration 4 (its
    # progress since the checkpoint of iteration 3 is lost), then resumed to the end.
    cfg = make_cfg(tmp_path / "run", TEST__EVAL_PERIOD=3, **opts)
    with pytest.raises(TrainingStopped) as stopped:
        _trainer(cfg, hooks=[_Call(2, _request_stop)]).train()
    assert stopped.value.iteration == 2 and stopped.value.checkpoint.endswith("model_0000002.pth")
    with pytest.raises(_KilledError):
        _trainer(cfg, resume=True, hooks=[_Call(4, _kill)]).train()
    assert (tmp_path / "run" / "last_checkpoint").read_text() == "model_0000003.pth"
    resumed = _trainer(cfg, resume=True)
    assert resumed.start_iter == 4
    record = resumed.train()

    ref_w = trainable_weights(tmp_path / "ref" / "model_final.pth")
    run_w = trainable_weights(tmp_path / "run" / "model_final.pth")
    assert ref_w.keys() == run_w.keys() and len(ref_w) > 0
    for k in ref_w:
        assert torch.equal(ref_w[k], run_w[k]), k
    assert json.dumps(record["metrics"]) == json.dumps(ref_record["metrics"])  # NaN-safe
    assert record["iteration"] == ref_record["iteration"] == 8
    events = [r["event"] for r in _records(tmp_path / "run", "event")]
    assert events == ["start", "stopped", "resume", "resume"]
    assert [r["iteration"] for r in _records(tmp_path / "run", "eval")] == [3, 6, 8]


def test_nan_loss_stops_with_last_good_checkpoint_intact(toy_root, tmp_path):
    cfg = make_cfg(tmp_path, SOLVER__MAX_ITER=10, SOLVER__CHECKPOINT_PERIOD=2)
    trainer = Trainer(cfg, setup_run_dir(cfg.OUTPUT_DIR, cfg), progress_bar=False)
    head = trainer.unwrapped_model.head
    forward = head.forward

    def poisoned(*args, **kwargs):  # loss_aux becomes NaN at iteration 5
        out = forward(*args, **kwargs)
        if kwargs.get("targets") is not None:
            bad = trainer.iter == 5
            out["loss_aux"] = out["loss_ce"] * (math.nan if bad else 0.0)
        return out

    head.forward = poisoned
    trainer.resume_or_load(resume=False)
    with pytest.raises(NonFiniteLossError) as e:
        trainer.train()
    msg = str(e.value)
    assert "iteration 5" in msg and "loss_aux = nan" in msg and "model_0000003.pth" in msg
    assert "loss_ce" not in msg  # only the non-finite term is named
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    assert not (tmp_path / "model_final.pth").exists() and not (tmp_path / "metrics.json").exists()
    weights = trainable_weights(tmp_path / "model_0000003.pth")
    assert all(torch.isfinite(v.float()).all() for v in weights.values())
    assert _records(tmp_path, "event")[-1]["event"] == "diverged"


def test_transductive_self_training_switches_on_at_the_configured_iteration(toy_root, tmp_path):
    cfg = make_cfg(tmp_path, SOLVER__MAX_ITER=4, SOLVER__CHECKPOINT_PERIOD=100,
                   ZERO_SHOT__SETTING="transductive", ZERO_SHOT__SELF_TRAIN_START_FRACTION=0.5)
    seen = []
    trainer = Trainer(cfg, setup_run_dir(cfg.OUTPUT_DIR, cfg), progress_bar=False)
    head = trainer.unwrapped_model.head
    losses, told = head.losses, []

    def spy(images, targets, clip):
        seen.append(targets.phase is TrainingPhase.SELF_TRAINING)
        return losses(images, targets, clip)

    head.losses = spy
    head.on_phase_change = told.append  # the phase schedule tells the head, once
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert seen == [False, False, True, True]
    assert told == [TrainingPhase.SELF_TRAINING]


def test_self_training_restart_clears_the_optimizer_once_and_resumes_identically(toy_root,
                                                                               tmp_path):
    opts = dict(SOLVER__MAX_ITER=8, SOLVER__CHECKPOINT_PERIOD=2, SOLVER__WARMUP_ITERS=2,
                ZERO_SHOT__SETTING="transductive", ZERO_SHOT__SELF_TRAIN_START_FRACTION=0.5)
    states, lrs = [], []

    class _Before(HookBase):
        def before_step(self):  # runs after the phase schedule's before_step
            states.append(len(self.trainer.optimizer.state))
            lrs.append(self.trainer.optimizer.param_groups[0]["lr"])

    ref = _trainer(make_cfg(tmp_path / "ref", **opts), hooks=[_Before()])
    ref.train()
    assert states[0] == 0 and states[3] > 0  # AdamW state builds up in the first phase ...
    assert states[4] == 0 and states[5] > 0  # ... and is cleared once, at iteration 4
    assert lrs[4] < lrs[2] and lrs[4] == pytest.approx(lrs[0])  # a fresh warm-up at 4
    cont = _trainer(make_cfg(tmp_path / "cont", **opts, ZERO_SHOT__SELF_TRAIN_SCHEDULE="continue"))
    cont.train()
    w_ref = trainable_weights(tmp_path / "ref" / "model_final.pth")
    w_cont = trainable_weights(tmp_path / "cont" / "model_final.pth")
    assert any(not torch.equal(w_ref[k], w_cont[k]) for k in w_ref)
    # Killed after iteration 5 (checkpoint of iteration 4 on disk, saved before the reset),
    # resumed: the same final weights as the uninterrupted run.
    cfg = make_cfg(tmp_path / "resumed", **opts)
    with pytest.raises(_KilledError):
        _trainer(cfg, hooks=[_Call(5, _kill)]).train()
    _trainer(cfg, resume=True).train()
    w_res = trainable_weights(tmp_path / "resumed" / "model_final.pth")
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)


def test_out_of_memory_is_a_user_error_naming_the_keys(toy_root, tmp_path):
    cfg = make_cfg(tmp_path, SOLVER__MAX_ITER=2)
    trainer = Trainer(cfg, None, progress_bar=False)

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    trainer.unwrapped_model.head.forward = oom
    trainer.resume_or_load(resume=False)
    with pytest.raises(UserError, match="out of GPU memory during training at iteration 0") as e:
        trainer.train()
    assert "SOLVER.IMS_PER_BATCH" in str(e.value) and "INPUT.CROP.SIZE" in str(e.value)
