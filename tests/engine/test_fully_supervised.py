"""ZERO_SHOT.SETTING fully: every class keeps its training labels and is seen in the training
vocabulary; a toy run trains and still reports the dataset's seen / unseen groups."""

from __future__ import annotations

import json

import numpy as np

from tests.engine.helpers import PREFIX, make_cfg
from zsseg_bench.config import validate_cfg
from zsseg_bench.data.catalog import DatasetCatalog, class_split
from zsseg_bench.data.dataset_mapper import SemSegDatasetMapper
from zsseg_bench.data.zero_shot import zero_shot_lut
from zsseg_bench.engine.trainer import Trainer
from zsseg_bench.utils.run_dir import setup_run_dir


def test_lut_keeps_every_class():
    np.testing.assert_array_equal(zero_shot_lut(4, [2, 3], "fully"), np.arange(256))
    assert (zero_shot_lut(4, [2, 3], "inductive")[[2, 3]] == 255).all()


def test_toy_run_fully_supervised(toy_root, tmp_path):
    cfg = make_cfg(tmp_path, ZERO_SHOT__SETTING="fully", SOLVER__MAX_ITER=4)
    validate_cfg(cfg)
    names, _, unseen = class_split(f"{PREFIX}_train")
    mapper = SemSegDatasetMapper(cfg, True)
    values = set()
    for i, d in enumerate(DatasetCatalog.get(f"{PREFIX}_train")):
        values |= set(mapper(d, rng=np.random.default_rng(i))["sem_seg"].unique().tolist())
    assert values & set(unseen) and 254 not in values  # unseen pixels keep their labels
    trainer = Trainer(cfg, setup_run_dir(cfg.OUTPUT_DIR, cfg), progress_bar=False)
    vocab = trainer.model.vocabulary(f"{PREFIX}_train", trainable_only=True)
    assert len(vocab) == len(names) and bool(vocab.is_seen.all())
    trainer.train()
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["iteration"] == 4
    assert len(record["unseen_classes"]) == len(unseen)  # metrics grouped by the split
    assert {"mIoU-seen", "mIoU-unseen", "hIoU"} <= set(record["metrics"])
