"""The offline self-training teacher: a frozen copy of the head whose weights are buffers.

zsseg's self-training is offline: the trained inductive model labels the training set once,
then a model is trained on those labels. Inside one run, the head keeps a copy of itself
(:func:`frozen_copy`), fills it with its own weights at the first self-training step and labels
every batch with it. The copy's weights are buffers, not parameters: no optimizer or DDP sees
them, they move with ``.to()``, and checkpoints save and restore them, so a run resumed after
the self-training start labels with the same teacher as an uninterrupted one.
"""

from __future__ import annotations

import copy

from torch import nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` in eval mode whose parameters are (persistent) buffers of the
    same names, detached from autograd."""
    twin = copy.deepcopy(module)
    for sub in twin.modules():
        for name, param in list(sub._parameters.items()):
            del sub._parameters[name]
            sub.register_buffer(name, None if param is None else param.detach())
    return twin.eval()
