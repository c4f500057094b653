"""Cross-dataset sweeps: one training per run, evaluated on every dataset of
``DATASETS.TEST``; the paper-scale spec expands without its datasets (a dry run resolves
configs, not datasets), and a tiny toy sweep goes through ``zsseg-bench sweep`` and
``zsseg-bench report``."""

import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SWEEPS = REPO / "configs" / "sweeps"
TARGETS = ["voc_zs_val", "pcontext_zs_val", "ade20k_150_val", "ade20k_847_val",
           "pcontext_459_val"]
TOY_TARGETS = ["synthetic_val", "synthetic_ov_val"]


def _zsseg(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "zsseg_bench", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=timeout)


@pytest.mark.parametrize("spec, targets, runs", [  # 4 methods x 3 seeds
    ("cross_dataset.yaml", TARGETS, 12), ("toy_cross_dataset.yaml", TOY_TARGETS, 12)])
def test_specs_train_once_and_evaluate_on_every_test_dataset(tmp_path, spec, targets, runs):
    res = _zsseg("sweep", str(SWEEPS / spec), "--output-dir", str(tmp_path / "d"), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"(dry run, {'slurm' if spec == 'cross_dataset.yaml' else 'local'} launcher): " \
           f"{runs} runs" in res.stdout
    trains = [ln for ln in res.stdout.splitlines() if ln.startswith("  train: ")]
    assert len(trains) == runs and not any(ln.startswith("  speed: ")
                                           for ln in res.stdout.splitlines())
    for line in trains:
        argv = shlex.split(line[len("  train: "):])
        assert argv[argv.index("DATASETS.TEST") + 1] == repr(tuple(targets))
        assert argv[argv.index("ZERO_SHOT.SETTING") + 1] == "inductive"
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_toy_cross_dataset_sweep_and_report(tmp_path):
    """The toy spec with one method, two seeds, 2 iterations, random CLIP weights (the
    plumbing is under test, not the accuracy): results.csv and the cross-dataset table hold
    each test dataset's metrics of every run's metrics.json."""
    from zsseg_bench.data.synthetic import prepare_synthetic

    datasets = tmp_path / "datasets"
    prepare_synthetic(str(datasets), num_train=8, num_val=3)
    spec = yaml.safe_load((SWEEPS / "toy_cross_dataset.yaml").read_text())
    spec.update(config_template=str(REPO / "configs" / "{dataset}" / "{method}.yaml"),
                methods=["two_stage"], seeds=[0, 1])
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "sweep"
    env = {**os.environ, "ZSSEG_DATASETS": str(datasets), "OMP_NUM_THREADS": "1",
           "TQDM_DISABLE": "1"}
    res = _zsseg("sweep", str(spec_path), "--output-dir", str(out), "SOLVER.MAX_ITER", "2",
                 "SOLVER.IMS_PER_BATCH", "2", "MODEL.CLIP.RANDOM_INIT", "True",
                 "MODEL.CLIP.WEIGHTS", "", env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = _zsseg("report", str(out), env=env)
    assert res.returncode == 0, res.stderr

    records = {}
    for path in sorted(out.glob("runs/*/train/metrics.json")):
        record = json.loads(path.read_text())
        assert record["dataset"] == "synthetic_val"
        assert set(record["other_datasets"]) == {"synthetic_ov_val"}
        records[json.loads((path.parents[1] / "cell.json").read_text())["seed"]] = record
    assert sorted(records) == [0, 1]

    def metric(record, target, key):
        metrics = record["metrics"] if target == record["dataset"] else \
            record["other_datasets"][target]
        return metrics[key]

    results = pd.read_csv(out / "results.csv").set_index("seed")
    keys = {"mIoU": "mIoU", "mIoU-S": "mIoU-seen", "mIoU-U": "mIoU-unseen", "hIoU": "hIoU"}
    for seed, record in records.items():
        for target in TOY_TARGETS:
            for col, key in keys.items():
                assert results.loc[seed, f"{target}/{col}"] == pytest.approx(
                    metric(record, target, key), nan_ok=True)
        ov = record["other_splits"]["synthetic_ov_val"]
        assert results.loc[seed, "synthetic_ov_val/n_unseen"] == len(ov["unseen_classes"]) == 5
        assert ov["cross_dataset"]["train_dataset"] == "synthetic_train"

    md = (out / "table.md").read_text()
    assert "| Two-stage (zsseg) | inductive | synthetic |" in md.split("(cross-dataset)")[0]
    header = ("| Method | Setting | Trained on | "
              + " | ".join(f"{t} {c}" for t in TOY_TARGETS for c in keys) + " |")
    assert header in md
    cells = []
    for target in TOY_TARGETS:
        for key in keys.values():
            values = [metric(r, target, key) for r in records.values()]
            cells.append(f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}")
    assert "| Two-stage (zsseg) | inductive | synthetic | " + " | ".join(cells) + " |" in md
    assert "Seen / unseen classes: synthetic_val 16 / 5; synthetic_ov_val 6 / 5." in md
