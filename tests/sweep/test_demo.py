"""``zsseg-bench demo`` through the real CLI: fake stages always, the real toy methods (tiny
schedules) once their toy configs have landed."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.sweep.helpers import write_spec
from zsseg_bench.commands.demo import default_demo_spec, default_speed_spec

REPO = Path(__file__).resolve().parents[2]
TOY_CONFIGS = REPO / "configs" / "synthetic"


def _demo(*args, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "zsseg_bench", "demo", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout, env=env)


def _fake_speed_spec(root):
    """A speed-only spec over the fake world: the two-stage model batched (FPS 2, its config)
    and in a loop (FPS 1); the demo adds ZegCLIP (FPS 10) from the toy sweep."""
    path = write_spec(root, "paper.yaml", train={"enabled": False},
                      methods={"two_stage": {"label": "Two-stage, batched"},
                               "two_stage_loop": {"label": "Two-stage, loop",
                                                  "config": "../fakeworld/two_stage.yaml",
                                                  "overrides": {"FAKE.FPS": 1.0}}})
    path.write_text(path.read_text().replace("name: fake\n", "name: fake_paper\n", 1))
    return path


def test_demo_runs_both_sweeps_then_the_paper_table(tmp_path):
    spec, paper = write_spec(tmp_path), _fake_speed_spec(tmp_path)
    out = tmp_path / "demo"
    argv = ("--spec", str(spec), "--speed-spec", str(paper), "--output-dir", str(out),
            "--seeds", "2", "FAKE.QUALITY", "50")
    res = _demo(*argv)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "sweep fake: 4 runs, 0 already finished, 4 to run" in res.stdout
    assert "sweep fake_paper: 3 runs, 0 already finished, 3 to run" in res.stdout
    # Toy accuracy over seeds 0 and 1 (unseen = 25 + seed), iterations, paper-scale FPS and
    # speed-ups over both crop modes, toy FPS (10 + seed) as the last column.
    assert ("| ZegCLIP | 50.0 ± 0.0 | 25.5 ± 0.7 | 33.8 ± 0.6 | 10 it | 10.0 | 100 | 1.5 | 0.5 "
            "| 2.0 | 5.0× | 10.0× | 10.5 ± 0.7 |") in res.stdout
    assert ("| Two-stage | 50.0 ± 0.0 | 25.5 ± 0.7 | 33.8 ± 0.6 | 10 it | 2.00 | 500 | 1.5 | "
            "0.5 | 2.0 | 1.0× | 2.0× | 2.50 ± 0.71 |") in res.stdout
    assert ("| Two-stage, loop | – | – | – | – | 1.00 | 1000 | 1.5 | 0.5 | 2.0 | 0.5× | 1.0× "
            "| – |") in res.stdout
    # The published rows: their own table, their own columns, the paper's GPU named.
    published = res.stdout[res.stdout.index("## Published (not measured here)"):]
    assert "| Method | VOC mIoU-S | VOC mIoU-U | VOC hIoU | FPS (GTX 1080Ti) |" in published
    assert "| ZegCLIP | 91.9 | 77.8 | 84.3 | 9.0 | 111 | 110.4 | 13.8 | 5.3× |" in published
    assert "| ZegFormer | 86.4 | 63.6 | 73.3 | 1.7 | 588 | 1829.3 | 60.3 | reference |" in \
        published
    measured = res.stdout[res.stdout.index("## Measured here"):res.stdout.index(
        "## Published")]
    assert "published" not in measured.split("\n- ")[0]  # no published row among ours
    assert "ZiqinZhou66/ZegCLIP README.md @ 9ba4bb5" in res.stdout
    assert "toy FPS: the toy models" in res.stdout
    for name in ("table.md", "hiou_vs_fps.png"):
        assert f"  {out / name}" in res.stdout
    assert (out / "hiou_vs_fps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A second demo resumes: nothing is re-run.
    res = _demo(*argv)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 already finished, 0 to run" in res.stdout
    assert "3 already finished, 0 to run" in res.stdout


def test_default_spec_is_the_toy_comparison():
    assert default_demo_spec() == REPO / "configs" / "sweeps" / "toy_comparison.yaml"


@pytest.mark.slow
def test_mini_demo_with_the_real_toy_methods(tmp_path):
    """Every toy method trains 2 iterations on a tiny toy world, is evaluated and timed, and
    is reported; random CLIP weights (the plumbing is under test, not the accuracy)."""
    from zsseg_bench.config.projects import list_methods

    methods = sorted(m.name for m in list_methods() if m.toy_config is not None)
    assert methods
    from zsseg_bench.data.synthetic import prepare_synthetic

    datasets = tmp_path / "datasets"
    prepare_synthetic(str(datasets), num_train=8, num_val=3)
    spec = yaml.safe_load(default_demo_spec().read_text())
    spec["config_template"] = str(TOY_CONFIGS.parent / spec["config_template"].split("/", 1)[1])
    spec["speed"]["args"] += ["--warmup", "1", "--iters", "2", "--repeats", "1"]
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    # Paper-scale speed on the tiny speed-test configs (a toy method without one is skipped).
    speed = yaml.safe_load(default_speed_spec().read_text())
    speed["config_template"] = str(REPO / "tests" / "speed" / "configs" / "tiny_{method}.yaml")
    speed["methods"] = {m: {} for m in ("zegclip", "two_stage")}
    speed["speed"]["args"] = ["--random-init", "--input-size", "64", "64"]
    speed_path = tmp_path / "tiny_speed.yaml"
    speed_path.write_text(yaml.safe_dump(speed))
    out = tmp_path / "demo"
    env = {**os.environ, "ZSSEG_DATASETS": str(datasets), "OMP_NUM_THREADS": "1"}
    res = _demo("--spec", str(spec_path), "--speed-spec", str(speed_path), "--output-dir",
                str(out), "SOLVER.MAX_ITER", "2",
                "SOLVER.IMS_PER_BATCH", "2", "MODEL.CLIP.RANDOM_INIT", "True",
                "MODEL.CLIP.WEIGHTS", "", timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "toy world: ready" in res.stdout
    assert "About the toy numbers (tiny.yaml):" in res.stdout
    table = (out / "toy_comparison" / "table.md").read_text()
    assert table.count("| inductive | synthetic |") == len(methods)
    results = pd.read_csv(out / "toy_comparison" / "results.csv")
    assert sorted(results["method"]) == methods
    assert results["fps"].notna().all() and (results["fps"] > 0).all()
    assert results["gflops"].notna().all()
    assert "| ZegCLIP |" in (out / "table.md").read_text()
    assert (out / "hiou_vs_fps.png").is_file()


def test_quick_look_is_labelled_and_skips_the_paper_scale_speed(tmp_path):
    spec = write_spec(tmp_path)
    out = tmp_path / "quick"
    res = _demo("--quick", "--spec", str(spec), "--speed-spec", str(_fake_speed_spec(tmp_path)),
                "--output-dir", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("demo --quick: a look at the plumbing, NOT meaningful")
    assert "sweep fake_paper" not in res.stdout  # no paper-scale speed
    table = (out / "table.md").read_text()
    assert "**Quick look (demo --quick): 10 training iterations, synthetic_val_16" in table
    assert "FPS at paper scale" not in table and "Paper-scale speed: not measured" in table
    cell = json.loads(next((out / "toy_comparison" / "runs").glob("*/cell.json")).read_text())
    train = cell["opts"]["train"]
    assert train[train.index("SOLVER.MAX_ITER") + 1] == "10"
    assert train[train.index("DATASETS.TEST") + 1] == "('synthetic_val_16',)"
    assert cell["args"]["speed"][-6:] == ["--warmup", "0", "--iters", "1", "--repeats", "1"]


def test_progress_lines_name_the_run_its_stage_iteration_and_eta(tmp_path):
    from zsseg_bench.sweep.progress import ProgressMonitor, run_progress

    run = tmp_path / "runs" / "zegclip-synthetic-inductive-s0-abc"
    (run / "train").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps(
        {"state": "running", "stages": {"train": {"state": "running"}, "speed": {}}}))
    log = run / "train" / "log.jsonl"
    start = {"time": 1.0, "type": "event", "event": "start", "start_iter": 0, "max_iter": 1000,
             "log_period": 50}
    log.write_text(json.dumps(start) + "\n")
    assert run_progress(run).startswith("train: started at 0/1000 ")
    assert run_progress(run).endswith(" ago (iterations are logged every 50)")
    log.write_text("\n".join(json.dumps(r) for r in (
        start, {"time": 2.0, "type": "train", "iteration": 350, "eta_s": 185.0})) + "\n")
    stream = io.StringIO()
    idle = tmp_path / "runs" / "two_stage-synthetic-inductive-s0-def"
    idle.mkdir()
    (idle / "status.json").write_text(json.dumps({"state": "pending", "stages": {}}))
    monitor = ProgressMonitor([run, idle], stream)
    assert [line.split("] ", 1)[1] for line in monitor.report()] == [
        "zegclip-synthetic-inductive-s0-abc: train 350/1000 (ETA 3:05)"]
    with log.open("a") as f:
        f.write(json.dumps({"time": 3.0, "type": "train", "iteration": 1000, "eta_s": 0}) + "\n")
    assert monitor.report()[0].endswith(": evaluating (trained 1000/1000)")
    assert stream.getvalue().count("[progress ") == 2
    # A long log (its start event far from its end) is followed too.
    log.write_text("\n".join(json.dumps(r) for r in [start] + [
        {"time": 2.0 + i, "type": "train", "iteration": i, "eta_s": 1.0, "loss": [0.5] * 20}
        for i in range(1, 301)]) + "\n")
    assert log.stat().st_size > 50_000 and run_progress(run) == "train 300/1000 (ETA 0:01)"


def test_paper_speed_takes_a_plugins_own_reference_config(tmp_path, monkeypatch):
    from zsseg_bench.commands.demo import speed_spec
    from zsseg_bench.config import projects

    own = tmp_path / "plug" / "configs"
    (own / "voc").mkdir(parents=True)
    (own / "voc" / "plug.yaml").write_text("SEED: 1\n")
    plug = projects.Method(name="plug", add_config=lambda cfg: None, configs=own)
    monkeypatch.setattr(projects, "find_method", {"plug": plug}.get)
    stream = io.StringIO()
    path = speed_spec(default_speed_spec(), {"plug": "Plug", "lost": "Lost"}, tmp_path / "out",
                      stream=stream)
    methods = yaml.safe_load(path.read_text())["methods"]
    assert methods["plug"] == {"label": "Plug", "config": str(own / "voc" / "plug.yaml")}
    assert "lost" not in methods and "lost has no paper-scale config" in stream.getvalue()
