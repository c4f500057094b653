"""Speed presets as speed-only sweeps: the specs, their commands, the comparison, a tiny run."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from zsseg_bench.cli import build_parser
from zsseg_bench.commands.speed import request_from_args
from zsseg_bench.commands.speed_preset import request_from_preset_args, run_speed_sweep
from zsseg_bench.speed.presets import (
    PRESETS,
    PresetRun,
    compare,
    format_comparison,
    preset_speed_args,
)
from zsseg_bench.speed.request import SpeedRequest
from zsseg_bench.sweep.runner import build_stage_command
from zsseg_bench.sweep.spec import SweepSpecError, load_sweep_spec

CONFIGS = Path(__file__).parent / "configs"


def _raw(*_):  # noqa: ANN001, ANN202  (run ids from raw text: no config resolution needed)
    return "raw"


def _record(fps: float, gflops: float | None, learnable: int, cpu_ms: float,
            method: str = "Head") -> dict:
    return {"fps": fps, "repeats": [fps], "latency_ms": {"mean": 1000 / fps},
            "cpu_time_ms": cpu_ms, "gflops": gflops, "flops_uncounted_ops": {},
            "params": {"learnable": learnable, "total": 2 * learnable}, "method": method,
            "peak_memory_mb": 100.0, "memory_kind": "cpu_rss", "breakdown_ms": {"a": 1.0},
            "protocol": {"device": "cpu", "device_name": "test cpu", "precision": "fp32",
                         "input_size": [512, 512], "vocabulary_size": 21, "warmup": 0,
                         "iters": 1, "repeats": 1}}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_speed_only_sweeps_of_existing_configs(name):
    spec = load_sweep_spec(PRESETS[name])
    assert spec.stages() == ("speed",) and spec.baseline == "two_stage"
    cells = {c.method: c for c in spec.expand(resolver=_raw, extra_args={"speed": ["--x"]})}
    assert {"zegclip", "two_stage", "two_stage_loop"} <= set(cells)
    loop = build_stage_command(cells["two_stage_loop"], "speed", Path("/r"))
    batched = build_stage_command(cells["two_stage"], "speed", Path("/r"))
    assert "--no-flops" in loop and "--no-flops" not in batched
    assert "--random-init" in loop and loop[loop.index("--input-size") + 1:][:2] == ["512", "512"]
    assert loop[loop.index("MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE") + 1] == "loop"
    assert "--x" in loop and Path(cells["zegclip"].config_file).is_file()


def test_coco_preset_uses_zegclip_coco_config():
    cell = next(c for c in load_sweep_spec(PRESETS["paper-coco"]).expand(resolver=_raw)
                if c.method == "zegclip")
    text = Path(cell.config_file).read_text()
    assert "NUM_TOKENS: 100" in text and "coco_stuff" in text


def _request(*argv: str, command: str = "speed-preset") -> SpeedRequest:
    args = build_parser(only=command).parse_args([command, *argv])
    return request_from_preset_args(args) if command == "speed-preset" else \
        request_from_args(args)


def test_forwarded_speed_options_and_device_iterations():
    cpu = preset_speed_args(_request("paper-voc", "--precision", "bf16"), "cpu")
    assert cpu[:6] == ["--warmup", "0", "--iters", "1", "--repeats", "1"]
    assert cpu[cpu.index("--precision") + 1] == "bf16"
    gpu = preset_speed_args(_request("paper-voc", "--iters", "7", "--cuda-graphs"), "cuda")
    assert gpu.count("--iters") == 1 and gpu[gpu.index("--iters") + 1] == "7"
    assert gpu[gpu.index("--warmup") + 1] == "10" and "--cuda-graphs" in gpu
    # The defaults (the demo's paper-scale runs) as the command line's, to the argument: the
    # run ids of `speed-preset`, its older spelling `speed --preset` and the demo agree.
    default = preset_speed_args(SpeedRequest(), "cpu")
    assert default == preset_speed_args(_request("paper-voc"), "cpu") == preset_speed_args(
        _request("--preset", "paper-voc", command="speed"), "cpu") == [
        "--warmup", "0", "--iters", "1", "--repeats", "1", "--precision", "fp32",
        "--num-images", "4", "--sdpa", "auto"]
    flags = preset_speed_args(_request("paper-voc", "--no-flops", "--channels-last",
                                       "--input-size", "64", "32"), "cpu")
    assert flags[-5:] == ["--channels-last", "--no-flops", "--input-size", "64", "32"]
    # Options before or after NAME, and the overrides after it.
    mixed = _request("--device", "cpu", "paper-voc", "--threads", "3", "SEED", "2",
                     "--output-dir", "D")
    assert (mixed.device, mixed.threads, mixed.opts, mixed.output_dir) == (
        "cpu", 3, ("SEED", "2"), "D")


def test_comparison_speedups_over_both_crop_modes_and_published():
    runs = [PresetRun("zegclip", "ZegCLIP", "z.yaml", _record(2.0, 110.0, 10_000_000, 500)),
            PresetRun("two_stage", "two-stage batched", "t.yaml",
                      _record(0.5, 1800.0, 60_000_000, 2000)),
            PresetRun("two_stage_loop", "two-stage loop", "t.yaml",
                      _record(0.25, None, 60_000_000, 4000)),
            PresetRun("clip_encoder", "floor", "z.yaml",
                      _record(2.5, 100.0, 0, 400, method="Floor"))]
    comparison = compare(runs, "two_stage", "voc", "paper_voc")
    assert {(r["fast"], r["slow"]) for r in comparison["ratios"]} == {
        ("zegclip", "two_stage"), ("zegclip", "two_stage_loop"),  # over each crop mode
        ("two_stage", "two_stage_loop"), ("two_stage_loop", "two_stage")}
    ratios = {r["slow"]: r for r in comparison["ratios"] if r["fast"] == "zegclip"}
    loop = ratios["two_stage_loop"]
    assert loop["fps_ratio"] == pytest.approx(8.0) and loop["cpu_time_ratio"] == 8.0
    assert loop["fps_ratio_published"] == pytest.approx(9.0 / 1.7)
    assert loop["gflops_ratio"] == pytest.approx(1800.0 / 110.0)  # counted on the batched run
    assert loop["gflops_ratio_published"] == pytest.approx(1829.3 / 110.4)
    assert ratios["two_stage"]["fps_ratio"] == pytest.approx(4.0)
    rows = {r["name"]: r for r in comparison["rows"]}
    assert rows["two_stage_loop"]["gflops_from"] == "two_stage"
    assert rows["zegclip"]["gflops_vs_published"] == pytest.approx(110.0 / 110.4 - 1)
    assert rows["zegclip"]["latency_over_floor"] == pytest.approx(1.25)
    assert rows["clip_encoder"]["published"]["fps"] is None
    table = format_comparison(comparison)
    assert "| ZegCLIP / two-stage loop | 8.0x | 5.3x |" in table
    assert "1829.3" in table and "GTX 1080Ti" in table and "test cpu" in table
    assert "ZiqinZhou66/ZegCLIP README.md @ 9ba4bb5" in table


def test_a_spec_that_runs_nothing_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"methods": {"a": {"config": "a.yaml"}}, "datasets": ["x"],
                                   "train": {"enabled": False}, "speed": {"enabled": False}}))
    with pytest.raises(SweepSpecError, match="nothing to run"):
        load_sweep_spec(bad)


def test_tiny_preset_end_to_end_and_resume(tmp_path):
    tiny = str(CONFIGS / "tiny_zegclip.yaml")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "tiny", "datasets": ["synthetic"], "baseline": "zegclip",
        "train": {"enabled": False}, "speed": {"args": ["--random-init"]},
        "methods": {"zegclip": {"config": tiny, "label": "Z"}}}))
    args = ["--device", "cpu", "--threads", str(torch.get_num_threads()), "--warmup", "0",
            "--iters", "1", "--repeats", "2", "--input-size", "32", "32"]
    comparison = run_speed_sweep(spec, tmp_path / "out", args, "voc")
    assert json.loads((tmp_path / "out" / "comparison.json").read_text()) == comparison
    (row,) = comparison["rows"]
    assert row["gflops"] > 0 and row["published"]["fps"] == 9.0  # ZegCLIP's VOC row
    assert comparison["input_size"] == [32, 32] and len(row["fps_repeats"]) == 2
    assert "ZegCLIP" in (tmp_path / "out" / "comparison.md").read_text()
    runs = sorted((tmp_path / "out" / "runs").iterdir())
    stamps = [(r / "speed" / "speed.json").stat().st_mtime_ns for r in runs]
    run_speed_sweep(spec, tmp_path / "out", args, "voc")  # resumes: nothing re-timed
    assert [(r / "speed" / "speed.json").stat().st_mtime_ns for r in runs] == stamps
