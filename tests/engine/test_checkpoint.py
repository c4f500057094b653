"""Checkpoints: trainable state only, safe loading (weights_only), atomic writes, keep-last-K,
RNG states that survive the round trip, clear errors for a checkpoint of another model."""

import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from zsseg_bench.engine.checkpoint import TrainableCheckpointer, trainable_state_dict
from zsseg_bench.engine.rng import get_rng_state, set_rng_state
from zsseg_bench.utils.errors import UserError


class _Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.big = nn.Linear(64, 64)
        self.register_buffer("table", torch.ones(16))
        self.requires_grad_(False)


class _Model(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.clip = _Frozen()
        self.head = nn.Sequential(nn.Conv2d(3, width, 1), nn.BatchNorm2d(width))


def _perturb(model):
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(torch.randn_like(p))
        model.head[1].running_mean.add_(1.0)


def test_saves_only_trainable_state_and_loads_it_back(tmp_path):
    torch.manual_seed(0)
    model = _Model()
    _perturb(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    ckpt = TrainableCheckpointer(model, str(tmp_path), optimizer=opt)
    ckpt.save("model_0000009", iteration=9)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000009.pth"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files
    data = torch.load(tmp_path / "model_0000009.pth", map_location="cpu", weights_only=True)
    assert set(data["model"]) == {"head.0.weight", "head.0.bias", "head.1.weight", "head.1.bias",
                                  "head.1.running_mean", "head.1.running_var",
                                  "head.1.num_batches_tracked"}
    assert data["iteration"] == 9 and "optimizer" in data

    fresh = _Model()
    frozen_before = fresh.clip.big.weight.clone()
    extra = TrainableCheckpointer(fresh, save_to_disk=False).load(
        str(tmp_path / "model_0000009.pth"), checkpointables=[])
    assert extra["iteration"] == 9
    for k, v in trainable_state_dict(model).items():
        assert torch.equal(fresh.state_dict()[k], v), k
    assert torch.equal(fresh.clip.big.weight, frozen_before)  # frozen weights: not in the file


def test_checkpoint_of_another_model_is_a_user_error(tmp_path):
    TrainableCheckpointer(_Model(width=4), str(tmp_path)).save("model_final")
    with pytest.raises(UserError, match="shape mismatch"):
        TrainableCheckpointer(_Model(width=8)).load(str(tmp_path / "model_final.pth"))
    with pytest.raises(UserError, match="not found"):
        TrainableCheckpointer(_Model()).load(str(tmp_path / "nope.pth"))
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        TrainableCheckpointer(_Model()).load(str(tmp_path / "garbage.pth"))


def test_keeps_the_last_k_periodic_checkpoints_across_sessions(tmp_path):
    model = _Model()
    for it in (1, 3):  # an earlier session
        TrainableCheckpointer(model, str(tmp_path)).save(f"model_{it:07d}", iteration=it)
    ckpt = TrainableCheckpointer(model, str(tmp_path), max_to_keep=2)
    for it in (5, 7):
        ckpt.save(f"model_{it:07d}", iteration=it)
    ckpt.save("model_final", iteration=7)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000005.pth",
                                            "model_0000007.pth", "model_final.pth"]


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = _Model()
    ckpt = TrainableCheckpointer(model, str(tmp_path))
    ckpt.save("model_0000001", iteration=1)
    good = (tmp_path / "model_0000001.pth").read_bytes()

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"\x80partial")
        raise KeyboardInterrupt  # the process is interrupted in the middle of the write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save("model_0000003", iteration=3)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert (tmp_path / "model_0000001.pth").read_bytes() == good


def test_temporary_files_of_a_killed_write_are_removed(tmp_path):
    ckpt = TrainableCheckpointer(_Model(), str(tmp_path))
    ckpt.save("model_0000001", iteration=1)
    (tmp_path / ".model_0000003.pth.k2j4_x.tmp").write_bytes(b"\x80partial")  # SIGKILL'd write
    (tmp_path / "notes.tmp").write_text("not ours")
    assert ckpt.remove_stale_temp_files() == [".model_0000003.pth.k2j4_x.tmp"]
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth", "notes.tmp"]


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    torch.save({"rng": get_rng_state()}, tmp_path / "rng.pth")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "rng.pth", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
