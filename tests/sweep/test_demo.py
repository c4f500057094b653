"""``zsseg-bench demo`` through the real CLI: fake stages always, the real toy methods (tiny
schedules) once their toy configs have landed."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.sweep.helpers import write_spec
from zsseg_bench.commands.demo import default_demo_spec

REPO = Path(__file__).resolve().parents[2]
TOY_CONFIGS = REPO / "configs" / "synthetic"


def _demo(*args, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "zsseg_bench", "demo", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout, env=env)


def test_demo_runs_the_sweep_then_the_report(tmp_path):
    spec = write_spec(tmp_path)
    out = tmp_path / "demo"
    res = _demo("--spec", str(spec), "--output-dir", str(out), "FAKE.QUALITY", "50")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "sweep fake: 2 runs, 0 already finished, 2 to run" in res.stdout
    assert "| Two-stage | inductive | fakeworld | 50.0 | 25.0 |" in res.stdout
    assert "| ZegCLIP | inductive | fakeworld | 50.0 | 25.0 |" in res.stdout
    for name in ("hiou_vs_fps.png", "per_class_iou.png", "speed_breakdown.png"):
        assert f"  {out / name}" in res.stdout and (out / name).is_file()
    # A second demo resumes: nothing is re-run.
    res = _demo("--spec", str(spec), "--output-dir", str(out), "FAKE.QUALITY", "50")
    assert res.returncode == 0 and "2 already finished, 0 to run" in res.stdout


def test_default_spec_is_the_toy_comparison():
    assert default_demo_spec() == REPO / "configs" / "sweeps" / "toy_comparison.yaml"


@pytest.mark.slow
def test_mini_demo_with_the_real_toy_methods(tmp_path):
    """Every toy method trains 2 iterations on a tiny toy world, is evaluated and timed, and
    is reported; random CLIP weights (the plumbing is under test, not the accuracy)."""
    methods = sorted(p.stem for p in TOY_CONFIGS.glob("*.yaml") if not p.stem.startswith("Base"))
    assert methods
    from zsseg_bench.data.synthetic import prepare_synthetic

    datasets = tmp_path / "datasets"
    prepare_synthetic(str(datasets), num_train=8, num_val=3)
    spec = yaml.safe_load(default_demo_spec().read_text())
    spec["config_template"] = str(TOY_CONFIGS.parent / spec["config_template"].split("/", 1)[1])
    spec["speed"]["args"] += ["--warmup", "1", "--iters", "2", "--repeats", "1"]
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "demo"
    env = {**os.environ, "ZSSEG_DATASETS": str(datasets), "OMP_NUM_THREADS": "1"}
    res = _demo("--spec", str(spec_path), "--output-dir", str(out), "SOLVER.MAX_ITER", "2",
                "SOLVER.IMS_PER_BATCH", "2", "MODEL.CLIP.RANDOM_INIT", "True",
                "MODEL.CLIP.WEIGHTS", "", timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "toy world: ready" in res.stdout
    assert "About these numbers (tiny.yaml):" in res.stdout
    assert "python scripts/reproduce_speedup.py" in res.stdout
    table = (out / "table.md").read_text()
    assert table.count("| inductive | synthetic |") == len(methods)
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["method"]) == methods
    assert results["fps"].notna().all() and (results["fps"] > 0).all()
    assert results["gflops"].notna().all()
    for name in ("hiou_vs_fps.png", "per_class_iou.png", "speed_breakdown.png"):
        assert f"  {out / name}" in res.stdout
