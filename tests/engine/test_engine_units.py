"""Small pieces of the engine: gradient clipping, the out-of-memory message, the TensorBoard
writer, the self-training start and solver checks."""

import pytest
import torch

from zsseg_bench.config import get_cfg, validate_cfg
from zsseg_bench.engine.errors import out_of_memory_error
from zsseg_bench.engine.phase_schedule import PhaseSchedule
from zsseg_bench.engine.train_loop import clip_gradients
from zsseg_bench.engine.trainer import check_solver
from zsseg_bench.engine.writers import TensorboardWriter
from zsseg_bench.utils.errors import UserError


def _params_with_grads():
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(4, requires_grad=True)
    a.grad = torch.tensor([3.0, 0.0, 4.0])  # norm 5
    b.grad = torch.tensor([0.0, 0.0, 0.0, 12.0])  # norm 12
    return a, b


def test_gradient_clipping_kinds():
    a, b = _params_with_grads()
    total = clip_gradients([a, b], "full_model", 1.0)
    assert total.item() == pytest.approx(13.0)
    assert torch.cat([a.grad, b.grad]).norm().item() == pytest.approx(1.0, rel=1e-4)
    a, b = _params_with_grads()
    clip_gradients([a, b], "norm", 1.0)
    assert a.grad.norm().item() == pytest.approx(1.0, rel=1e-4)
    assert b.grad.norm().item() == pytest.approx(1.0, rel=1e-4)
    a, b = _params_with_grads()
    clip_gradients([a, b], "value", 2.0)
    assert a.grad.tolist() == [2.0, 0.0, 2.0] and b.grad.max().item() == 2.0


def test_out_of_memory_message_names_the_keys_to_lower():
    msg = str(out_of_memory_error(12, "training"))
    assert "iteration 12" in msg
    for key in ("SOLVER.IMS_PER_BATCH", "INPUT.CROP.SIZE", "SOLVER.ACCUMULATION_STEPS"):
        assert key in msg
    assert "TEST.SLIDE.CROP" in str(out_of_memory_error(None, "evaluation"))


def test_self_training_start_fraction_or_iteration():
    cfg = get_cfg()
    cfg.SOLVER.MAX_ITER = 20000
    assert PhaseSchedule.from_config(cfg).self_training_start is None  # inductive
    cfg.ZERO_SHOT.SETTING = "transductive"
    schedule = PhaseSchedule.from_config(cfg)
    assert schedule.self_training_start == 10000  # ZegCLIP: second half of the schedule
    assert schedule.restart_iter == 10000  # SELF_TRAIN_SCHEDULE restart (the default)
    cfg.ZERO_SHOT.SELF_TRAIN_START_FRACTION = 1.0  # 1.0 is a fraction (never self-trains)
    assert PhaseSchedule.from_config(cfg).self_training_start == 20000
    cfg.ZERO_SHOT.SELF_TRAIN_START_ITER = 1  # an iteration replaces the fraction
    assert PhaseSchedule.from_config(cfg).self_training_start == 1
    cfg.ZERO_SHOT.SELF_TRAIN_SCHEDULE = "continue"
    assert PhaseSchedule.from_config(cfg).restart_iter is None
    cfg.ZERO_SHOT.SELF_TRAIN_START_FRACTION = 1500.0
    with pytest.raises(UserError, match="SELF_TRAIN_START_FRACTION = 1500.0 must be in"):
        PhaseSchedule.from_config(cfg)


def test_the_ambiguous_start_key_is_a_one_line_error_on_the_command_line():
    cfg = get_cfg()
    with pytest.raises(UserError) as e:
        cfg.merge_from_list(["ZERO_SHOT.SELF_TRAIN_START", "1500"])
    msg = str(e.value)
    assert "\n" not in msg and "ZERO_SHOT.SELF_TRAIN_START " in msg
    assert "ZERO_SHOT.SELF_TRAIN_START_FRACTION" in msg and "ZERO_SHOT.SELF_TRAIN_START_ITER" in msg


@pytest.mark.parametrize("value, fraction, iteration", [(0.5, 0.5, -1), (1500.0, 0.5, 1500)])
def test_a_file_with_the_removed_start_key_reads_with_the_same_meaning(
        value, fraction, iteration, tmp_path, caplog):
    """A run's config.yaml written before the key was split (and an older config file) still
    loads, resumes and evaluates: the key is rewritten with its meaning, with a warning."""
    path = tmp_path / "config.yaml"
    path.write_text(f"SOLVER:\n  MAX_ITER: 3000\nZERO_SHOT:\n  SETTING: transductive\n"
                    f"  SELF_TRAIN_START: {value}\n")
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    assert (cfg.ZERO_SHOT.SELF_TRAIN_START_FRACTION, cfg.ZERO_SHOT.SELF_TRAIN_START_ITER) == (
        fraction, iteration)
    assert PhaseSchedule.from_config(cfg).self_training_start == 1500
    assert "ZERO_SHOT.SELF_TRAIN_START" in caplog.text and str(path) in caplog.text
    # resuming the run with the config it was started with finds no difference
    from zsseg_bench.engine.train_dir import config_differences

    old_dump = cfg.dump().replace(
        f"  SELF_TRAIN_START_FRACTION: {cfg.ZERO_SHOT.SELF_TRAIN_START_FRACTION}\n", "").replace(
        f"  SELF_TRAIN_START_ITER: {cfg.ZERO_SHOT.SELF_TRAIN_START_ITER}\n",
        f"  SELF_TRAIN_START: {value}\n")
    assert "SELF_TRAIN_START:" in old_dump
    assert config_differences(cfg, old_dump) == {}


def test_bad_solver_values_are_user_errors():
    cfg = get_cfg()
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "l2"
    with pytest.raises(UserError, match="CLIP_TYPE = 'l2' is not one of full_model, norm"):
        validate_cfg(cfg)
    cfg = get_cfg()
    cfg.SOLVER.ACCUMULATION_STEPS = 0
    with pytest.raises(UserError, match="ACCUMULATION_STEPS"):
        check_solver(cfg)
    cfg = get_cfg()
    cfg.MODEL_EMA.ENABLED, cfg.MODEL_EMA.DECAY = True, 1.0
    with pytest.raises(UserError, match=r"MODEL_EMA.DECAY = 1.0 must be in \[0, 1\)"):
        check_solver(cfg)


class _FakeSummaryWriter:
    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.closed = log_dir, [], False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_writer_tags_and_steps(tmp_path):
    w = TensorboardWriter(tmp_path, summary_writer_cls=_FakeSummaryWriter)
    w.write_train(9, {"loss_ce": 1.5, "lr": 0.1})
    w.write_eval(10, "synthetic_val", {"mIoU": 40.0, "IoU-cat": 30.0})
    w.close()
    fake = w._writer
    assert fake.log_dir == str(tmp_path) and fake.closed
    assert fake.scalars == [("train/loss_ce", 1.5, 10), ("train/lr", 0.1, 10),
                            ("eval/synthetic_val/mIoU", 40.0, 10),
                            ("eval/synthetic_val/IoU-cat", 30.0, 10)]
