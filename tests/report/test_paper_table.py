"""The demo's paper table on hand-made toy run directories and a hand-made comparison.json."""

import json

import matplotlib.image

from tests.report.test_report import PNG_SIGNATURE, make_run
from zsseg_bench.report import collect_results
from zsseg_bench.report.aggregate import aggregate_seeds
from zsseg_bench.report.paper_table import write_paper_table


def _speed_row(name, label, fps, gflops):
    return {"name": name, "label": label, "fps": fps, "latency_ms": 1000 / fps,
            "gflops": gflops, "learnable_params_m": 13.8, "total_params_m": 150.0}


COMPARISON = {
    "input_size": [512, 512], "vocabulary_size": 20, "device_name": "test cpu",
    "precision": "fp32", "iterations": {"warmup": 0, "iters": 1, "repeats": 1},
    "rows": [_speed_row("zegclip", "ZegCLIP", 0.12, 110.0),
             _speed_row("two_stage", "two-stage batched", 0.011, 1800.0),
             _speed_row("two_stage_loop", "two-stage loop", 0.0045, 1800.0)],
    "ratios": [{"fast": "zegclip", "slow": "two_stage", "fps_ratio": 0.12 / 0.011},
               {"fast": "zegclip", "slow": "two_stage_loop", "fps_ratio": 0.12 / 0.0045},
               {"fast": "two_stage_loop", "slow": "two_stage", "fps_ratio": 0.0045 / 0.011},
               {"fast": "two_stage", "slow": "two_stage_loop", "fps_ratio": 0.011 / 0.0045}],
}


def test_paper_table_text_and_plot(tmp_path):
    root = tmp_path / "toy"
    for seed, (s, u) in enumerate(((60.0, 40.0), (62.0, 44.0), (61.0, 42.0))):
        make_run(root, "zegclip", seed, s, u, fps=3.0 + seed, label="ZegCLIP")
        make_run(root, "two_stage", seed, s - 10, u - 10, fps=5.0, label="Two-stage")
    collected = collect_results(root)
    agg = aggregate_seeds(collected.runs)
    markdown, table, plot = write_paper_table(agg, COMPARISON, tmp_path / "out",
                                              runs=collected.runs)
    assert table.read_text() == markdown
    measured, published = markdown.split("## Published (not measured here)")
    lines = measured.splitlines()
    header = next(line for line in lines if line.startswith("| Method"))
    assert "| toy hIoU | toy training | FPS at paper scale (test cpu) |" in header
    assert header.endswith("| toy FPS (this device) |")
    assert "Speed-up vs two-stage batched | Speed-up vs two-stage loop" in header
    # Toy accuracy (mean ± std over 3 seeds), iterations, paper-scale speed, both speed-ups,
    # toy FPS.
    assert ("| ZegCLIP | 61.0 ± 1.0 | 42.0 ± 2.0 | 49.7 ± 1.7 | 100 it | 0.120 | 8333 | 110.0 "
            "| 13.8 | 150.0 | 10.9× | 26.7× | 4.00 ± 1.00 |") in lines
    assert "| two-stage loop | – | – | – | – | 0.0045 | 222222 |" in measured
    assert "GTX 1080Ti" not in header and "ZegFormer" not in measured
    # The published rows: own table and columns, the paper's GPU named, no ratio of ours.
    assert "| Method | VOC mIoU-S | VOC mIoU-U | VOC hIoU | FPS (GTX 1080Ti) |" in published
    assert "| Speed-up vs ZegFormer |" in published
    assert "| ZegFormer | 86.4 | 63.6 | 73.3 | 1.7 | 588 | 1829.3 | 60.3 | reference |" in \
        published
    assert "| ZegCLIP | 91.9 | 77.8 | 84.3 | 9.0 | 111 | 110.4 | 13.8 | 5.3× |" in published
    assert "mean ± sample std over 3 seeds" in measured and "warm-up 0, 1 x 1" in measured
    assert "arXiv:2212.03588v3" in published
    assert "Short runs" not in markdown
    assert plot.read_bytes()[:8] == PNG_SIGNATURE
    assert matplotlib.image.imread(str(plot)).shape[0] > 100


def test_short_runs_are_marked_and_a_quick_table_has_no_paper_scale_columns(tmp_path):
    root = tmp_path / "toy"
    config = tmp_path / "method.yaml"
    config.write_text("SOLVER:\n  MAX_ITER: 1000\n")
    run = make_run(root, "zegclip", 0, 60.0, 40.0, fps=3.0, label="ZegCLIP")  # 100 iterations
    cell = json.loads((run / "cell.json").read_text())
    (run / "cell.json").write_text(json.dumps({**cell, "config_file": str(config)}))
    agg = aggregate_seeds(collect_results(root).runs)
    markdown, _, plot = write_paper_table(agg, None, tmp_path / "out")
    assert "**Short runs (ZegCLIP): fewer iterations than their configs" in markdown
    assert "| ZegCLIP | 60.0 | 40.0 | 48.0 | 100 of 1000 it (short) | 3.00 |" in markdown
    assert "FPS at paper scale" not in markdown and "Paper-scale speed: not measured" in markdown
    assert plot.read_bytes()[:8] == PNG_SIGNATURE
