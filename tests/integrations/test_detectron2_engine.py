"""The suite's training step inside detectron2's engine: the phase reaches the model,
accumulation averages the batches of one optimizer step, gradients are clipped, and the
phase schedule is a detectron2 hook."""

import itertools

import pytest
import torch
from torch import nn

from tests.integrations.helpers import require_detectron2

require_detectron2()

from detectron2.engine import HookBase  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from zsseg_bench.engine.phase_schedule import PhaseSchedule  # noqa: E402
from zsseg_bench.integrations.detectron2 import (  # noqa: E402
    PhaseScheduleHook,
    ZeroShotStepTrainer,
)
from zsseg_bench.modeling.training_phase import TrainingPhase  # noqa: E402


class Recorder(nn.Module):
    """Loss ``x * (w1 + w2)`` of a batch ``[{"x": x}]``; records the phases it was given."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([3.0, 4.0]))
        self.phases: list[TrainingPhase] = []

    def forward(self, data, phase=TrainingPhase.SUPERVISED):
        self.phases.append(phase)
        return {"loss_x": (self.w * data[0]["x"]).sum()}


def test_step_passes_phase_accumulates_and_clips():
    model = Recorder()
    batches = ([{"x": torch.tensor(float(k))}] for k in itertools.count(1))
    trainer = ZeroShotStepTrainer(model, batches, torch.optim.SGD(model.parameters(), lr=1.0),
                                  accumulation_steps=2, grad_clip=("full_model", 1.0, 2.0))
    trainer.phase = TrainingPhase.SELF_TRAINING
    with EventStorage(0) as storage:
        trainer.run_step()
    assert model.phases == [TrainingPhase.SELF_TRAINING] * 2
    # gradient (1 + 2) / 2 = 1.5 per element, norm 2.12, clipped to norm 1
    step = 1.5 / (2 * 1.5 ** 2) ** 0.5
    assert model.w.detach().tolist() == pytest.approx([3.0 - step, 4.0 - step])
    assert storage.latest()["total_loss"][0] == pytest.approx((7.0 + 14.0) / 2)


def test_phase_schedule_hook_is_a_detectron2_hook():
    hook = PhaseScheduleHook(PhaseSchedule(5, restart=True))
    assert isinstance(hook, HookBase) and hook.schedule.restart_iter == 5
