"""The on-the-fly zero-shot split of training labels."""

import numpy as np
import pytest
import torch

from zsseg_bench.data.catalog import Metadata
from zsseg_bench.data.zero_shot import (
    IGNORE_LABEL,
    UNLABELLED_LABEL,
    apply_zero_shot_split,
    zero_shot_lut,
)
from zsseg_bench.utils.errors import UserError

META = Metadata("split_test").set(stuff_classes=["a", "b", "c", "d"], unseen_classes=[1, 3])
LABEL = np.array([[0, 1, 2], [3, 255, 1]], dtype=np.uint8)


def test_inductive_maps_unseen_to_ignore():
    out = apply_zero_shot_split(LABEL, META, "inductive")
    assert out.tolist() == [[0, 255, 2], [255, 255, 255]]
    assert out.dtype == np.uint8 and LABEL[0, 1] == 1  # input untouched


def test_transductive_keeps_unseen_as_unlabelled():
    out = apply_zero_shot_split(torch.from_numpy(LABEL).long(), META, "transductive")
    assert out.dtype == torch.int64
    assert out.tolist() == [[0, 254, 2], [254, 255, 254]]
    assert UNLABELLED_LABEL == 254 and IGNORE_LABEL == 255


def test_errors():
    with pytest.raises(UserError, match="inductive, transductive"):
        zero_shot_lut(4, [1], "supervised")
    with pytest.raises(UserError, match="outside"):
        zero_shot_lut(4, [4], "inductive")
    with pytest.raises(UserError, match="reserved"):
        zero_shot_lut(255, [], "inductive")
