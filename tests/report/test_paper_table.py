"""The demo's paper table on hand-made toy run directories and a hand-made comparison.json."""

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
    agg = aggregate_seeds(collect_results(root).runs)
    markdown, table, plot = write_paper_table(agg, COMPARISON, tmp_path / "out")
    assert table.read_text() == markdown
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| Method"))
    assert "FPS (paper scale)" in header and header.endswith("| toy FPS |")
    assert "Speed-up vs two-stage batched | Speed-up vs two-stage loop" in header
    # Toy accuracy (mean ± std over 3 seeds), paper-scale speed, both speed-ups, toy FPS.
    assert ("| ZegCLIP | 61.0 ± 1.0 | 42.0 ± 2.0 | 49.7 ± 1.7 | 0.120 | 8333 | 110.0 | 13.8 "
            "| 150.0 | 10.9× | 26.7× | 4.00 ± 1.00 |") in lines
    assert "| two-stage loop | – | – | – | 0.0045 | 222222 |" in markdown
    assert ("| ZegFormer (published, GTX 1080Ti) | 86.4 | 63.6 | 73.3 | 1.7 | 588 | 1829.3 | "
            "60.3 | – | 1.0× |") in markdown
    assert "| ZegCLIP (published, GTX 1080Ti) | 91.9 | 77.8 | 84.3 | 9.0 |" in markdown
    assert "mean ± sample std over 3 seeds" in markdown and "warm-up 0, 1 x 1" in markdown
    assert "arXiv:2212.03588v3" in markdown
    assert plot.read_bytes()[:8] == PNG_SIGNATURE
    assert matplotlib.image.imread(str(plot)).shape[0] > 100
