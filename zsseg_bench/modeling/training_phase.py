"""The phase of training a head is in, passed to it explicitly on every training call."""

from __future__ import annotations

import enum


class TrainingPhase(enum.Enum):
    """What the labels of a training batch mean to a head.

    ``SUPERVISED``: only labelled pixels train (the inductive setting, and the transductive one
    before self-training starts); unseen classes must not enter training.
    ``SELF_TRAINING``: transductive self-training has started; unlabelled pixels (label 254) get
    pseudo-labels and every class of the vocabulary trains.
    """

    SUPERVISED = "supervised"
    SELF_TRAINING = "self_training"
