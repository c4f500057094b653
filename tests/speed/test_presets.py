"""Speed presets: the paper-voc preset, its commands, the comparison table, a tiny end-to-end."""

import argparse
import json
from pathlib import Path

import pytest
import torch

from zsseg_bench.cli import build_parser, main
from zsseg_bench.speed.presets import (
    PRESETS,
    compare,
    format_comparison,
    load_preset,
    run_commands,
    run_preset_spec,
)
from zsseg_bench.utils.errors import UserError

CONFIGS = Path(__file__).parent / "configs"


def _args(*argv: str) -> argparse.Namespace:
    return build_parser(only="speed").parse_args(["speed", "--preset", "paper-voc", *argv])


def _record(fps: float, gflops: float | None, learnable: int, cpu_ms: float) -> dict:
    return {"fps": fps, "repeats": [fps], "latency_ms": {"mean": 1000 / fps},
            "cpu_time_ms": cpu_ms, "gflops": gflops, "flops_uncounted_ops": {},
            "params": {"learnable": learnable, "total": 2 * learnable},
            "peak_memory_mb": 100.0, "memory_kind": "cpu_rss", "breakdown_ms": {"a": 1.0},
            "protocol": {"device": "cpu", "device_name": "test cpu", "precision": "fp32",
                         "input_size": [512, 512]}}


def test_paper_voc_preset_holds_the_published_figures():
    spec = load_preset(PRESETS["paper-voc"])
    rows = spec["published"]["rows"]
    assert (rows["zegclip"]["fps"], rows["two_stage"]["fps"]) == (9.0, 1.7)
    assert (rows["zegclip"]["gflops"], rows["two_stage"]["gflops"]) == (110.4, 1829.3)
    assert {r["name"] for r in spec["runs"]} >= {"zegclip", "two_stage_batched",
                                                  "two_stage_loop"}
    assert spec["input_size"] == [512, 512]


def test_paper_voc_commands(tmp_path):
    spec = load_preset(PRESETS["paper-voc"])
    for run in spec["runs"]:  # the configs are the methods' own; pretend they exist here
        run["config"] = str(CONFIGS / "tiny_zegclip.yaml")
    cmds = run_commands(spec, _args("--device", "cpu", "--precision", "bf16", "--iters", "7"),
                        tmp_path)
    loop = cmds["two_stage_loop"]
    assert "--random-init" in loop and loop[loop.index("--input-size") + 1:][:2] == ["512", "512"]
    assert loop[-2:] == ["MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE", "loop"]
    assert "--no-flops" in loop and "--no-flops" not in cmds["two_stage_batched"]
    assert loop[loop.index("--iters") + 1] == "7" and loop.count("--iters") == 1
    assert loop[loop.index("--precision") + 1] == "bf16"
    assert loop[loop.index("--output-dir") + 1] == str(tmp_path / "two_stage_loop")


def test_paper_voc_configs_exist():
    spec = load_preset(PRESETS["paper-voc"])
    root = Path(__file__).resolve().parents[2]
    missing = [r["config"] for r in spec["runs"] if not (root / r["config"]).is_file()]
    assert not missing, f"configs of the paper-voc preset are missing: {missing}"


def test_comparison_ratios_and_table():
    spec = load_preset(PRESETS["paper-voc"])
    results = {"zegclip": _record(2.0, 110.0, 10_000_000, 500),
               "two_stage_batched": _record(0.5, 1800.0, 60_000_000, 2000),
               "two_stage_loop": _record(0.25, None, 60_000_000, 4000),
               "clip_encoder": _record(2.5, 100.0, 0, 400)}
    comparison = compare(spec, results)
    ratios = {r["label"]: r for r in comparison["ratios"]}
    loop = ratios["ZegCLIP / two-stage (loop)"]
    assert loop["fps_ratio"] == pytest.approx(8.0)
    assert loop["fps_ratio_published"] == pytest.approx(9.0 / 1.7)
    assert loop["cpu_time_ratio"] == pytest.approx(8.0)
    assert loop["gflops_ratio"] == pytest.approx(1800.0 / 110.0)  # flops_from the batched run
    assert loop["gflops_ratio_published"] == pytest.approx(1829.3 / 110.4)
    assert ratios["ZegCLIP / two-stage (batched)"]["fps_ratio"] == pytest.approx(4.0)
    rows = {r["name"]: r for r in comparison["rows"]}
    assert rows["zegclip"]["gflops_vs_published"] == pytest.approx(110.0 / 110.4 - 1)
    table = format_comparison(comparison)
    assert "| ZegCLIP / two-stage (loop) | 8.0x | 5.3x |" in table
    assert "1829.3" in table and "GTX 1080Ti" in table and "test cpu" in table


def test_bad_preset_files_are_user_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrunz: []\n")
    with pytest.raises(UserError, match="unknown keys"):
        load_preset(bad)
    bad.write_text("runs: [{name: a, config: c.yaml}]\nratios: [{fast: a, slow: b}]\n")
    with pytest.raises(UserError, match="must name two runs"):
        load_preset(bad)


def _in_process(cmd: list[str]) -> int:
    assert cmd[1:4] == ["-m", "zsseg_bench", "speed"]
    return main(cmd[3:])


def test_tiny_preset_end_to_end(tmp_path):
    spec = {
        "name": "tiny", "input_size": [32, 32], "args": ["--random-init"],
        "iterations": {"cpu": {"warmup": 0, "iters": 1, "repeats": 2}},
        "published": {"hardware": "paper GPU", "rows": {"z": {"label": "Z", "fps": 2.0,
                                                              "gflops": 1.0}}},
        "runs": [
            {"name": "zegclip", "published": "z", "config": str(CONFIGS / "tiny_zegclip.yaml")},
            {"name": "floor", "config": str(CONFIGS / "tiny_zegclip.yaml"),
             "opts": ["MODEL.HEAD.NAME", "CLIPEncoderFloorHead"], "flops_from": "zegclip"},
        ],
        "ratios": [{"label": "floor / ZegCLIP", "fast": "floor", "slow": "zegclip"}],
    }
    args = _args("--device", "cpu", "--threads", str(torch.get_num_threads()))
    comparison = run_preset_spec(spec, args, tmp_path, runner=_in_process)
    assert json.loads((tmp_path / "comparison.json").read_text()) == comparison
    assert "floor / ZegCLIP" in (tmp_path / "comparison.md").read_text()
    floor = json.loads((tmp_path / "floor" / "speed.json").read_text())
    assert floor["method"] == "CLIPEncoderFloorHead" and floor["gflops"] is None
    assert floor["protocol"]["input_size"] == [32, 32] and len(floor["repeats"]) == 2
    assert set(floor["breakdown_ms"]) == {"clip_encoder", "post_process", "other"}
    assert comparison["rows"][1]["gflops"] == comparison["rows"][0]["gflops"] > 0
