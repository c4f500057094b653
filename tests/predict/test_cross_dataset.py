"""Cross-dataset evaluation: a toy model trained on the toy world, evaluated through the CLI on
the toy open-vocabulary world (its own class list); seen / unseen come from the training
labels and are stated in metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.engine.helpers import PREFIX
from zsseg_bench.cli import main
from zsseg_bench.data.catalog import DatasetCatalog
from zsseg_bench.data.synthetic.open_vocab import OV_CLASS_NAMES, render_open_vocab_sample
from zsseg_bench.data.transfer import evaluation_split, is_transfer
from zsseg_bench.evaluation import metrics_from_confusion

OV = f"{PREFIX}_ov_val"
TRAIN = f"{PREFIX}_train"
OV_SEEN = ["background", "red circle", "green square", "purple bar", "yellow circle",
           "cyan square"]
OV_UNSEEN = ["blue ring", "yellow bar", "cyan circle", "red triangle", "green cross"]


@pytest.fixture(scope="module")
def open_vocab(toy_root):
    from zsseg_bench.data.datasets.synthetic import register_open_vocab

    if OV not in DatasetCatalog.list():
        register_open_vocab(str(toy_root), name=OV, num_images=6)
    return OV


def test_open_vocab_world_has_its_own_classes(open_vocab):
    image, label = render_open_vocab_sample(3)
    again = render_open_vocab_sample(3)
    assert np.array_equal(image, again[0]) and np.array_equal(label, again[1])
    dicts = DatasetCatalog.get(open_vocab)
    assert len(dicts) == 6
    values = set()
    for d in dicts:
        from PIL import Image

        values |= set(np.unique(np.array(Image.open(d["sem_seg_file_name"]))).tolist())
    assert values <= set(range(len(OV_CLASS_NAMES))) and len(values) > 5


def test_transfer_split(open_vocab):
    assert is_transfer(open_vocab, TRAIN) and not is_transfer(f"{PREFIX}_val", TRAIN)
    names, seen, unseen = evaluation_split(open_vocab, TRAIN, "inductive")
    assert sorted(names[i] for i in seen) == sorted(OV_SEEN)
    assert sorted(names[i] for i in unseen) == sorted(OV_UNSEEN)
    assert evaluation_split(open_vocab, TRAIN, "transductive")[1] == seen  # labels only
    _, seen_fully, unseen_fully = evaluation_split(open_vocab, TRAIN, "fully")
    assert len(seen_fully) == len(OV_CLASS_NAMES) and unseen_fully == []


def test_cli_cross_dataset_eval(trained, open_vocab, tmp_path, capsys):
    config, weights = trained
    out = tmp_path / "eval"
    assert main(["eval", "--config-file", str(config), "--weights", str(weights),
                 "--output-dir", str(out), "DATASETS.TRAIN", f"('{TRAIN}',)",
                 "DATASETS.TEST", f"('{open_vocab}',)"]) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["dataset"] == open_vocab
    assert sorted(record["seen_classes"]) == sorted(OV_SEEN)
    assert sorted(record["unseen_classes"]) == sorted(OV_UNSEEN)
    assert record["cross_dataset"]["train_dataset"] == TRAIN
    assert set(f"IoU-{n}" for n in OV_CLASS_NAMES) <= set(record["metrics"])
    saved = json.loads((out / "sem_seg_confusion.json").read_text())
    names = saved["class_names"]
    assert [names[i] for i in saved["unseen_classes"]] == record["unseen_classes"]
    expected = metrics_from_confusion(np.array(saved["confusion"]), saved["seen_classes"],
                                      saved["unseen_classes"], names)
    assert record["metrics"]["hIoU"] == pytest.approx(expected["hIoU"], nan_ok=True)
    assert record["metrics"]["mIoU-unseen"] == pytest.approx(expected["mIoU-unseen"],
                                                             nan_ok=True)
    # the training benchmark first, the other dataset second: each with its own groups
    both = tmp_path / "both"
    assert main(["eval", "--config-file", str(config), "--weights", str(weights),
                 "--output-dir", str(both), "DATASETS.TRAIN", f"('{TRAIN}',)",
                 "DATASETS.TEST", f"('{PREFIX}_val', '{open_vocab}')"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]  # every dataset, in order
    assert summary.startswith(f"{PREFIX}_val: mIoU ") and f"; {open_vocab}: mIoU " in summary
    record = json.loads((both / "metrics.json").read_text())
    assert "cross_dataset" not in record and len(record["unseen_classes"]) == 5
    other = record["other_splits"][open_vocab]
    assert other["unseen_classes"] == OV_UNSEEN and other["cross_dataset"]["train_dataset"] == TRAIN
    assert set(record["other_datasets"]) == {open_vocab}


def test_model_vocabulary_of_another_dataset(trained, open_vocab):
    from tests.predict.conftest import DATASETS
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.engine.checkpoint import build_model_with_weights

    config, weights = trained
    model, _ = build_model_with_weights(setup_cfg(str(config), DATASETS), str(weights))
    vocab = model.vocabulary(open_vocab, trainable_only=False)
    assert vocab.names == list(OV_CLASS_NAMES)
    assert [n for n, s in zip(vocab.names, vocab.is_seen.tolist()) if not s] == OV_UNSEEN
    own = model.vocabulary(f"{PREFIX}_val", trainable_only=False)  # the training benchmark
    assert int((~own.is_seen).sum()) == 5
