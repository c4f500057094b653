"""Registration of the toy world: metadata, lazy preparation on first use, the prepare command."""

import logging
import os
import subprocess
import sys
import uuid

import pytest

import zsseg_bench.data.datasets  # noqa: F401  (registers the built-in datasets)
from zsseg_bench.data.catalog import DatasetCatalog, MetadataCatalog
from zsseg_bench.data.datasets import synthetic as synthetic_module
from zsseg_bench.data.datasets.synthetic import register_all_synthetic
from zsseg_bench.data.synthetic import CLASS_NAMES, SEEN_CLASS_IDS, UNSEEN_CLASS_IDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_builtin_names_and_metadata():
    assert {"synthetic_train", "synthetic_val"} <= set(DatasetCatalog.list())
    meta = MetadataCatalog.get("synthetic_val")
    assert meta.stuff_classes == list(CLASS_NAMES)
    assert meta.seen_classes == list(SEEN_CLASS_IDS)
    assert meta.unseen_classes == list(UNSEEN_CLASS_IDS)
    assert meta.ignore_label == 255 and meta.evaluator_type == "gzsl_sem_seg"
    assert meta.background_class == 0 and 0 in meta.seen_classes  # background: a seen class


def test_prepared_on_first_use_with_one_log_line(tmp_path):
    prefix = f"tsyn_{uuid.uuid4().hex[:6]}"
    register_all_synthetic(str(tmp_path), prefix=prefix, num_train=6, num_val=18, num_workers=1)
    records = _Records()
    synthetic_module.logger.addHandler(records)
    old_level = synthetic_module.logger.level
    synthetic_module.logger.setLevel(logging.INFO)
    try:
        train = DatasetCatalog.get(f"{prefix}_train")
        first = list(records.messages)
        val = DatasetCatalog.get(f"{prefix}_val")
    finally:
        synthetic_module.logger.removeHandler(records)
        synthetic_module.logger.setLevel(old_level)
    assert len(train) == 6 and len(val) == 18
    quick = DatasetCatalog.get(f"{prefix}_val_16")  # the quick look's split: the first 16
    assert [d["file_name"] for d in quick] == [d["file_name"] for d in val[:16]]
    assert MetadataCatalog.get(f"{prefix}_val_16").stuff_classes == list(CLASS_NAMES)
    assert sum("rendering it now" in m for m in first) == 1
    assert records.messages == first  # the second split found it prepared
    d = train[0]
    assert os.path.isfile(d["file_name"]) and os.path.isfile(d["sem_seg_file_name"])
    assert d["height"] > 0 and d["width"] > 0 and d["image_id"] == "000000"
    for name in (f"{prefix}_train", f"{prefix}_val", f"{prefix}_val_16"):
        DatasetCatalog.remove(name)


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "zsseg_bench", "prepare", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONPATH": REPO, **(env or {})})


def test_prepare_command(tmp_path):
    proc = _cli("synthetic", "--num-train", "3", "--num-val", "2", "--workers", "1",
                env={"ZSSEG_DATASETS": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "3 train + 2 val images" in proc.stdout
    for split, n in (("train", 3), ("val", 2)):
        assert len(os.listdir(tmp_path / "synthetic" / "images" / split)) == n
        assert len(os.listdir(tmp_path / "synthetic" / "labels" / split)) == n


@pytest.mark.parametrize("dataset,split,missing", [
    ("voc", "val", "VOCdevkit/VOC2012/JPEGImages"), ("coco_stuff", "val2017", "coco/val2017"),
    ("pcontext", "val", "VOCdevkit/VOC2010"), ("pcontext_459", "val", "VOCdevkit/VOC2010"),
    ("ade20k_150", "validation", "ADEChallengeData2016"),
    ("ade20k_847", "validation", "ADE20K_2021_17_01")])
def test_prepare_real_dataset_runs_its_script(tmp_path, dataset, split, missing):
    # Without the downloads, the script (run by the command) names what is missing, one line.
    proc = _cli(dataset, "--root", str(tmp_path), "--splits", split)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(tmp_path / missing) in last, last
    assert "Traceback" not in proc.stderr
