"""Parameter groups: lr multipliers by name, weight decay by kind, frozen parameters left out;
the schedule: linear warm-up then poly decay, multipliers kept."""

import pytest
import torch
from torch import nn

from zsseg_bench.config import get_cfg
from zsseg_bench.engine.lr_scheduler import build_lr_scheduler
from zsseg_bench.engine.optimizer import build_optimizer, param_settings
from zsseg_bench.utils.errors import UserError


class _Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.queries = nn.Embedding(3, 4)
        self.prompt_tokens = nn.Parameter(torch.zeros(2, 4))


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.clip = nn.Linear(4, 4).requires_grad_(False)  # frozen
        self.head = _Head()
        self.neck = nn.Conv2d(4, 4, 1)


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 1e-3
    cfg.SOLVER.WEIGHT_DECAY = 0.05
    cfg.SOLVER.WEIGHT_DECAY_NORM = 0.0
    cfg.SOLVER.WEIGHT_DECAY_BIAS = 0.01
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    cfg.SOLVER.LR_MULTIPLIERS = [[r"^head\.prompt", 3.0], [r"^head\.", 10.0]]
    for k, v in solver.items():
        setattr(cfg.SOLVER, k, v)
    return cfg


EXPECTED = {  # name: (lr, weight decay)
    "head.prompt_tokens": (3e-3, 0.0),   # first multiplier that matches; an embedding
    "head.proj.weight": (1e-2, 0.05),
    "head.proj.bias": (1e-2, 0.01),
    "head.norm.weight": (1e-2, 0.0),
    "head.norm.bias": (1e-2, 0.0),       # norm wins over bias
    "head.queries.weight": (1e-2, 0.0),  # nn.Embedding
    "neck.weight": (1e-3, 0.05),
    "neck.bias": (1e-3, 0.01),
}


def test_each_parameter_gets_its_lr_and_weight_decay():
    model = _Model()
    opt = build_optimizer(_cfg(), model)
    got = {}
    for group in opt.param_groups:
        for name, p in zip(group["param_names"], group["params"]):
            assert p is dict(model.named_parameters())[name]
            got[name] = (group["lr"], group["weight_decay"])
    assert got.keys() == EXPECTED.keys()  # the frozen CLIP stand-in is not optimised
    for name, (lr, wd) in EXPECTED.items():
        assert got[name] == pytest.approx((lr, wd)), name
    assert len(opt.param_groups) == len(set(EXPECTED.values()))  # one group per (lr, wd)
    assert isinstance(opt, torch.optim.AdamW)


def test_param_settings_report_kinds():
    kinds = {s.name: s.kind for s in param_settings(_cfg(), _Model())}
    assert kinds["head.norm.bias"] == "norm" and kinds["head.proj.bias"] == "bias"
    assert kinds["head.prompt_tokens"] == "embed" and kinds["neck.weight"] == "default"


def test_bad_multiplier_entry_is_a_user_error():
    with pytest.raises(UserError, match="LR_MULTIPLIERS"):
        build_optimizer(_cfg(LR_MULTIPLIERS=[["head"]]), _Model())
    with pytest.raises(UserError, match="regular expression"):
        build_optimizer(_cfg(LR_MULTIPLIERS=[["head(", 2.0]]), _Model())


def test_warmup_then_poly_keeps_multipliers():
    cfg = _cfg(MAX_ITER=100, WARMUP_ITERS=10, WARMUP_FACTOR=0.1, POLY_POWER=0.9, MIN_LR=0.0)
    opt = build_optimizer(cfg, _Model())
    sched = build_lr_scheduler(cfg, opt)
    base = list(sched.base_lrs)  # the groups' lr before the schedule
    lrs = []
    for _ in range(100):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for it, expect in ((0, 0.1), (5, 0.1 + 0.9 * 0.5)):  # linear warm-up from WARMUP_FACTOR
        assert lrs[it] == pytest.approx([b * expect * (1 - it / 100) ** 0.9 for b in base])
    assert lrs[50] == pytest.approx([b * 0.5 ** 0.9 for b in base])  # poly after warm-up
    assert lrs[99][0] < lrs[98][0] < lrs[50][0]
    ratios = {round(lr / b, 12) for lr, b in zip(lrs[60], base)}
    assert len(ratios) == 1  # every group follows the same schedule


def test_restart_gives_self_training_a_fresh_warm_up_and_poly_schedule():
    cfg = _cfg(MAX_ITER=100, WARMUP_ITERS=10, WARMUP_FACTOR=0.1, POLY_POWER=0.9, MIN_LR=0.0)
    plain = build_lr_scheduler(cfg, build_optimizer(cfg, _Model()))
    sched = build_lr_scheduler(cfg, build_optimizer(cfg, _Model()), restart_iter=40)
    base = sched.base_lrs[0]
    for it in (0, 5, 39):  # before the restart: the schedule over all 100 iterations
        assert sched.lr_at(base, it) == plain.lr_at(base, it)
    for k in (0, 5, 30, 59):  # after: warm-up and poly over the remaining 60 at it - 40
        factor = 0.1 + 0.9 * k / 10 if k < 10 else 1.0
        assert sched.lr_at(base, 40 + k) == pytest.approx(base * factor * (1 - k / 60) ** 0.9)
