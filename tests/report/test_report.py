"""Reports on hand-made run directories: values, seed aggregation, table text, errors, plots."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from zsseg_bench.report import ResultFileError, collect_results, write_report
from zsseg_bench.report.published import canonical_dataset, published_rows
from zsseg_bench.report.tables import format_value, latex_escape
from zsseg_bench.utils.errors import UserError

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_run(root, method, seed, seen, unseen, fps=None, dataset="toy", setting="inductive",
             label=None, pacc=90.0, baseline="two_stage", breakdown=None, variant="default",
             mode="whole", data=None, speed_only=False):
    """A run directory as the sweep + engine + speed harness would leave it (``data``: the
    fingerprint of its test dataset; ``speed_only``: a run of a speed preset)."""
    run_id = f"{method}-{dataset}-{setting}-s{seed}-{variant}"
    d = Path(root) / "runs" / run_id
    d.mkdir(parents=True)
    (d / "cell.json").write_text(json.dumps({
        "run_id": run_id, "method": method, "method_label": label or method,
        "dataset": dataset, "setting": setting, "seed": seed, "variant": variant,
        "baseline": baseline, "stages": ["speed"] if speed_only else ["train", "speed"]}))
    hiou = 2 * seen * unseen / (seen + unseen)
    record = {
        "iteration": 100, "wall_time_s": 12.5, "dataset": f"{dataset}_val",
        "seen_classes": ["background", "red circle"], "unseen_classes": ["blue square"],
        "metrics": {"mIoU": (seen * 2 + unseen) / 3, "mIoU-seen": seen, "mIoU-unseen": unseen,
                    "hIoU": hiou, "pAcc": pacc, "mAcc": 50.0, "IoU-background": seen,
                    "IoU-red circle": seen, "IoU-blue square": unseen}}
    if data is not None:
        record["data"] = {"train": [], "test": [{"name": f"{dataset}_val", "root": "/d",
                                                 "images": 4, "fingerprint": data}]}
    if not speed_only:
        (d / "train").mkdir()
        (d / "train" / "metrics.json").write_text(json.dumps(record))
    if fps is not None:
        (d / "speed").mkdir()
        (d / "speed" / "speed.json").write_text(json.dumps({
            "fps": fps, "latency_ms": {"mean": 1000 / fps, "median": 1000 / fps,
                                       "p90": 1100 / fps, "std": 1.0},
            "gflops": 12.34, "params": {"total": 9_000_000, "learnable": 1_500_000},
            "peak_memory_mb": 321.0,
            "breakdown_ms": breakdown or {"clip": 600 / fps, "decoder": 400 / fps},
            "protocol": {"device": "cpu", "precision": "fp32", "input_size": [224, 224],
                         "mode": mode, "slide": {"crop": [64, 64], "stride": [32, 32]},
                         "batch_size": 1, "vocabulary_size": 3}}))
    return d


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "sweep"
    make_run(root, "two_stage", 0, 40.0, 20.0, fps=2.0, label="Two-stage",
             breakdown={"proposals": 300.0, "crops": 200.0})
    make_run(root, "two_stage", 1, 42.0, 24.0, fps=2.5, label="Two-stage",
             breakdown={"proposals": 250.0, "crops": 150.0})
    make_run(root, "zegclip", 0, 60.0, 30.0, fps=10.0, label="ZegCLIP", mode="slide")
    make_run(root, "zegclip", 1, 62.0, 34.0, fps=11.0, label="ZegCLIP", mode="slide")
    return root


@pytest.fixture(scope="module")
def report(sweep_dir):
    return write_report(sweep_dir, title="Toy")


def test_results_csv_holds_every_run_with_its_values(report):
    out = report
    df = pd.read_csv(out.results_csv)
    assert len(df) == 4
    row = df[(df["method"] == "zegclip") & (df["seed"] == 1)].iloc[0]
    assert row["mIoU-S"] == 62.0 and row["mIoU-U"] == 34.0 and row["fps"] == 11.0
    assert row["hIoU"] == pytest.approx(2 * 62 * 34 / 96)
    assert row["params_learnable"] == 1_500_000 and row["protocol.device"] == "cpu"
    assert row["iteration"] == 100 and row["eval_dataset"] == "toy_val"


def test_seeds_are_aggregated_and_speedup_is_relative_to_the_two_stage_baseline(report):
    out = report
    agg = pd.read_csv(out.aggregate_csv).set_index("method")
    z, t = agg.loc["zegclip"], agg.loc["two_stage"]
    assert z["n_seeds"] == 2 and z["mIoU-U_mean"] == 32.0
    assert z["mIoU-U_std"] == pytest.approx(math.sqrt(8.0))  # sample std of 30, 34
    assert z["fps_mean"] == 10.5 and t["fps_mean"] == 2.25
    assert z["speedup"] == pytest.approx(10.5 / 2.25) and t["speedup"] == 1.0
    assert bool(t["is_baseline"]) and not bool(z["is_baseline"])


def test_table_text_markdown_and_latex(report):
    out = report
    md = out.table_md.read_text()
    assert md.startswith("# Toy\n")
    assert ("| Method | Setting | Dataset | mIoU-S | mIoU-U | hIoU | pAcc | FPS | GFLOPs | "
            "Learnable params (M) | Speed-up |") in md
    # Baseline first; mean ± sample std over seeds; 3 significant digits for speed columns.
    lines = [ln for ln in md.splitlines() if ln.startswith("| Two-stage") or
             ln.startswith("| ZegCLIP")]
    assert lines[0] == ("| Two-stage | inductive | toy | 41.0 ± 1.4 | 22.0 ± 2.8 | 28.6 ± 2.7 | "
                        "90.0 ± 0.0 | 2.25 ± 0.35 | 12.3 | 1.50 | 1.00× |")
    assert lines[1].startswith("| ZegCLIP | inductive | toy | 61.0 ± 1.4 | 32.0 ± 2.8 | ")
    assert "| 10.5 ± 0.7 | 12.3 | 1.50 | 4.67 ± 0.80× |" in lines[1]
    assert "Speed-up: FPS relative to Two-stage" in md
    assert ("Speed protocol: device=cpu, precision=fp32, input_size=[224, 224], batch_size=1, "
            "vocabulary_size=3.") in md
    assert ("Speed protocol, per method: mode: Two-stage whole; ZegCLIP slide (64×64 windows, "
            "stride 32×32).") in md
    assert "published" not in md  # the toy dataset has no published numbers
    tex = out.table_tex.read_text()
    assert r"\begin{tabular}{lllrrrrrrrr}" in tex and r"\toprule" in tex
    assert r"ZegCLIP & inductive & toy & 61.0 $\pm$ 1.4 & 32.0 $\pm$ 2.8" in tex
    assert r"1.00$\times$ \\" in tex


def test_published_rows_are_marked_and_only_for_matching_datasets(tmp_path):
    root = tmp_path / "voc"
    make_run(root, "zegclip", 0, 90.0, 70.0, fps=5.0, dataset="voc", baseline=None)
    out = write_report(root)
    md = out.table_md.read_text()
    # The published speed-up is the paper's own, over its baseline (named), not over ours.
    assert "| ZegCLIP (published) | inductive | VOC | 91.9 | 77.8 | 84.3 | 94.6 | 9.00 | 110 | " \
           "13.8 | 5.29× vs ZegFormer |" in md
    assert "| ZegFormer (published) | inductive | VOC | 86.4 | 63.6 | 73.3 | – | 1.70 | 1829 | " \
           "60.3 | reference (published) |" in md
    assert "COCO-Stuff" not in md and "not measured here" in md
    assert "arXiv:2212.03588" in md
    tex = out.table_tex.read_text()
    assert r"\textit{Published (reference, not measured here)}" in tex
    assert r"\textit{ZegCLIP (published)}" in tex
    none = write_report(root, published="none").table_md.read_text()
    assert "(published)" not in none
    assert len(published_rows(None)) == 14 and canonical_dataset("coco_stuff_zs_val") == \
        "coco_stuff" and canonical_dataset("synthetic") is None


def test_missing_speed_json_leaves_fps_blank(tmp_path):
    root = tmp_path / "s"
    make_run(root, "two_stage", 0, 40.0, 20.0, fps=None)
    make_run(root, "zegclip", 0, 60.0, 30.0, fps=8.0)
    out = write_report(root)
    md = out.table_md.read_text()
    two = next(ln for ln in md.splitlines() if ln.startswith("| two_stage"))
    assert two.endswith("| – | – | – | – |")
    assert "No speed.json for: two_stage (FPS blank)." in md
    zeg = next(ln for ln in md.splitlines() if ln.startswith("| zegclip"))
    assert zeg.endswith("| 8.00 | 12.3 | 1.50 | – |")  # no baseline FPS: no speed-up


def test_unfinished_and_duplicate_runs_are_left_out_with_a_warning(tmp_path):
    root = tmp_path / "s"
    make_run(root, "zegclip", 0, 60.0, 30.0, fps=8.0)
    make_run(root / "again", "zegclip", 0, 70.0, 35.0, fps=8.0)  # same labels, newer
    d = root / "runs" / "alone"
    d.mkdir()
    (d / "cell.json").write_text(json.dumps({"method": "zegclip", "dataset": "toy",
                                             "setting": "inductive", "seed": 5}))
    collected = collect_results(root)
    assert collected.unfinished == [str(d)]
    assert collected.duplicates == [str(root / "runs" / "zegclip-toy-inductive-s0-default")]
    assert collected.runs["mIoU-S"].tolist() == [70.0]
    assert len(collected.per_class) == 3 and set(collected.per_class["iou"]) == {70.0, 35.0}


@pytest.mark.parametrize("which, content, match", [
    ("train/metrics.json", "{not json", "is not valid JSON"),
    ("train/metrics.json", json.dumps({"metrics": {"mIoU-seen": 1.0}}), "no 'mIoU-unseen'"),
    ("train/metrics.json", json.dumps([1, 2]), "must hold a JSON object"),
    ("speed/speed.json", json.dumps({"latency_ms": {}}), "missing 'fps'"),
    ("speed/speed.json", json.dumps({"fps": "fast"}), "fps must be a number"),
    ("cell.json", json.dumps({"method": "x"}), "missing dataset, setting, seed"),
])
def test_malformed_files_are_errors_naming_the_file(tmp_path, which, content, match):
    make_run(tmp_path, "zegclip", 0, 60.0, 30.0, fps=8.0)
    path = tmp_path / "runs" / "zegclip-toy-inductive-s0-default" / which
    path.write_text(content)
    with pytest.raises(ResultFileError, match=match) as info:
        collect_results(tmp_path)
    assert str(path) in str(info.value)


def test_runs_on_other_data_are_left_out_not_mixed(tmp_path):
    root = tmp_path / "s"
    old = [make_run(root, "zegclip", s, 60.0, 30.0, data="aaaa") for s in (0, 1)]
    new = make_run(root / "again", "zegclip", 0, 70.0, 35.0, data="bbbb")  # relaunched
    legacy = make_run(root, "two_stage", 0, 40.0, 20.0)  # an older run without a record
    for d in old + [legacy]:
        os.utime(d / "train" / "metrics.json", (1, 1))
    collected = collect_results(root)
    assert sorted(collected.other_data) == sorted(str(d) for d in old)
    assert sorted(collected.runs["run_dir"]) == sorted([str(new), str(legacy)])
    out = write_report(root)
    assert any("2 run(s) on other (older) data" in w for w in out.warnings)
    assert "70.0" in out.markdown and "60.0" not in out.markdown


def test_a_finished_speed_only_sweep_is_reported(tmp_path):
    for method, fps in (("two_stage", 0.5), ("zegclip", 4.0)):
        make_run(tmp_path, method, 0, 1, 1, fps=fps, dataset="voc", speed_only=True)
    out = write_report(tmp_path, published="none")
    assert not out.warnings
    rows = [line for line in out.markdown.splitlines() if line.startswith("| zegclip")]
    assert len(rows) == 1 and "4.00" in rows[0] and "8.0" in rows[0]  # FPS and speed-up


def test_empty_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no runs under"):
        write_report(tmp_path)


def test_plots_are_valid_pngs(report):
    out = report
    assert [p.name for p in out.plots] == ["hiou_vs_fps.png", "per_class_iou.png",
                                           "speed_breakdown.png", "seen_vs_unseen.png"]
    for p in out.plots:
        assert p.read_bytes()[:8] == PNG_SIGNATURE
        img = matplotlib.image.imread(p)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img.std() > 0.01  # something was drawn


def test_formatting_helpers():
    assert format_value(float("nan")) == "–"
    assert format_value(1829.3) == "1829" and format_value(0.41) == "0.410"
    assert format_value(41.0, 1.414, decimals=1) == "41.0 ± 1.4"
    assert latex_escape("a_b & 5% ± 2×") == r"a\_b \& 5\% $\pm$ 2$\times$"


def test_report_cli_prints_table_and_paths(sweep_dir, tmp_path):
    res = subprocess.run([sys.executable, "-m", "zsseg_bench", "report", str(sweep_dir),
                          "--output", str(tmp_path / "rep")], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "| ZegCLIP | inductive | toy |" in res.stdout
    assert str(tmp_path / "rep" / "hiou_vs_fps.png") in res.stdout


def test_nan_is_written_as_null_and_read_back_as_missing(tmp_path):
    from zsseg_bench.utils.file_io import atomic_write_json

    d = make_run(tmp_path, "zegclip", 0, 60.0, 30.0, fps=8.0)
    path = d / "train" / "metrics.json"
    record = json.loads(path.read_text())
    record["metrics"]["hIoU"] = math.nan  # e.g. a test set without unseen classes
    record["metrics"]["IoU-blue square"] = float("inf")
    atomic_write_json(path, record)

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    strict = json.loads(path.read_text(), parse_constant=refuse)  # valid JSON
    assert strict["metrics"]["hIoU"] is None and strict["metrics"]["IoU-blue square"] is None
    runs = collect_results(tmp_path).runs
    assert math.isnan(runs["hIoU"].iloc[0]) and runs["mIoU-S"].iloc[0] == 60.0
