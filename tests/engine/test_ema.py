"""The weight average (``MODEL_EMA``): its arithmetic, what it averages, and the trainer's use
of it (evaluations, checkpoints, resume, ``build_model_with_weights``, self-training start)."""

import json

import pytest
import torch
from torch import nn

from tests.engine.helpers import make_cfg
from tests.engine.test_trainer import _Call, _kill, _KilledError, _trainer
from zsseg_bench.engine.checkpoint import build_model_with_weights
from zsseg_bench.engine.ema import ModelEMA
from zsseg_bench.engine.train_loop import HookBase

pytestmark = pytest.mark.usefixtures("one_thread")


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.layer = nn.Linear(2, 3)
        self.norm = nn.BatchNorm1d(3)


def test_average_arithmetic_scope_and_swap():
    torch.manual_seed(0)
    net = _Net()
    ema = ModelEMA(net, decay=0.75)
    assert set(ema.state) == {"layer.weight", "layer.bias", "norm.weight", "norm.bias",
                              "norm.running_mean", "norm.running_var"}  # no frozen, no int
    start = {k: v.clone() for k, v in ema.state.items()}
    with torch.no_grad():
        net.layer.weight.add_(4.0)
        net.norm.running_mean.fill_(8.0)
    ema.update()
    assert torch.allclose(ema.state["layer.weight"], start["layer.weight"] + 1.0)
    assert torch.allclose(ema.state["norm.running_mean"], 0.75 * start["norm.running_mean"] + 2.0)
    own = net.layer.weight.detach().clone()
    with ema.applied() as swapped:
        assert swapped is net and torch.equal(net.layer.weight, ema.state["layer.weight"])
    assert torch.equal(net.layer.weight, own)
    ema.reset()
    assert torch.equal(ema.state["layer.weight"], own)
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(net, decay=1.0)


def _ema_weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["ema"]["state"]


def test_trainer_evaluates_checkpoints_and_resumes_the_average(toy_root, tmp_path):
    opts = dict(SOLVER__MAX_ITER=6, SOLVER__CHECKPOINT_PERIOD=2, SOLVER__BASE_LR=0.05,
                MODEL_EMA__ENABLED=True, MODEL_EMA__DECAY=0.5)
    ref = make_cfg(tmp_path / "ref", **opts)
    ref_record = _trainer(ref).train()
    final = tmp_path / "ref" / "model_final.pth"
    ckpt = torch.load(final, map_location="cpu", weights_only=True)
    assert ckpt["ema"]["decay"] == 0.5
    assert any(not torch.equal(ckpt["model"][k], v) for k, v in ckpt["ema"]["state"].items())

    # build_model_with_weights (zsseg-bench eval, predict) takes the average ...
    model, extra = build_model_with_weights(ref, str(final))
    assert "ema" not in extra
    state = model.state_dict()
    for k, v in ckpt["ema"]["state"].items():
        assert torch.equal(state[k], v), k
    # ... which is what the run's final evaluation scored
    from zsseg_bench.engine.evaluate import evaluate_datasets
    results = evaluate_datasets(ref, model)
    assert json.dumps(results["engine_test_val"]) == json.dumps(ref_record["metrics"])
    plain = _trainer(make_cfg(tmp_path / "plain", **{**opts, "MODEL_EMA__ENABLED": False}))
    assert json.dumps(plain.train()["metrics"]) != json.dumps(ref_record["metrics"])

    # killed after iteration 4 (checkpoint of iteration 3 on disk), resumed: the same average
    cfg = make_cfg(tmp_path / "run", **opts)
    with pytest.raises(_KilledError):
        _trainer(cfg, hooks=[_Call(4, _kill)]).train()
    record = _trainer(cfg, resume=True).train()
    ref_ema, run_ema = _ema_weights(final), _ema_weights(tmp_path / "run" / "model_final.pth")
    assert ref_ema.keys() == run_ema.keys()
    assert all(torch.equal(ref_ema[k], run_ema[k]) for k in ref_ema)
    assert json.dumps(record["metrics"]) == json.dumps(ref_record["metrics"])


def test_self_training_starts_from_the_average(toy_root, tmp_path):
    cfg = make_cfg(tmp_path, SOLVER__MAX_ITER=4, SOLVER__CHECKPOINT_PERIOD=100,
                   SOLVER__BASE_LR=0.05, ZERO_SHOT__SETTING="transductive",
                   ZERO_SHOT__SELF_TRAIN_START_FRACTION=0.5, MODEL_EMA__ENABLED=True,
                   MODEL_EMA__DECAY=0.5)
    same = []

    class _Before(HookBase):
        def before_step(self):  # runs after the phase schedule's before_step
            state = self.trainer.unwrapped_model.state_dict()
            same.append(all(torch.equal(state[k], v)
                            for k, v in self.trainer.ema.state.items()))

    _trainer(cfg, hooks=[_Before()]).train()
    assert same == [True, False, True, False]  # iteration 0: the average starts at the model
