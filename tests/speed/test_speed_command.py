"""``zsseg-bench speed`` end to end on tiny random-init configs, and its argument errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zsseg_bench.cli import build_parser, main
from zsseg_bench.commands.speed import request_from_args
from zsseg_bench.config import get_cfg
from zsseg_bench.config.projects import add_project_configs
from zsseg_bench.speed import SpeedProtocol, benchmark_model
from zsseg_bench.speed.harness import PROTOCOL_FIELDS, RESULT_FIELDS
from zsseg_bench.speed.request import build_speed_cfg, build_speed_model, random_init_overrides

CONFIGS = Path(__file__).parent / "configs"
REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_cli_writes_speed_json_with_every_field(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-m", "zsseg_bench", "speed", "--config-file",
         str(CONFIGS / "tiny_zegclip.yaml"), "--random-init", "--warmup", "1", "--iters", "2",
         "--repeats", "2", "--threads", "1", "--output-dir", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    speed = json.loads((out / "speed.json").read_text())
    assert set(RESULT_FIELDS) <= set(speed) and set(PROTOCOL_FIELDS) <= set(speed["protocol"])
    assert speed["method"] == "ZegCLIPHead" and speed["weights"] == "random"
    assert speed["protocol"]["input_size"] == [64, 64]  # INPUT.CROP.SIZE of the config
    assert speed["protocol"]["vocabulary_size"] == 21  # the toy world's classes, no data needed
    assert speed["protocol"]["threads"] == 1
    assert {"clip_encoder", "decoder", "post_process", "other"} == set(speed["breakdown_ms"])
    assert speed["gflops"] > 0 and len(speed["repeats"]) == 2
    parts = speed["params"]["by_module"]
    assert parts["clip.visual"]["total"] + parts["clip.non_visual"]["total"] == \
        parts["clip"]["total"] > 0 == parts["clip"]["learnable"]  # frozen CLIP
    assert speed["params"]["learnable"] == parts["head"]["learnable"] > 0
    # open_clip's attention runs fused in inference; it is counted, not listed as missing
    assert not any("attention" in op for op in speed["flops_uncounted_ops"])
    assert speed["env"]["versions"]["torch"] and speed["protocol"]["device_name"]
    assert "RANDOM_INIT: true" in (out / "config.yaml").read_text()
    assert (out / "env.json").is_file() and (out / "log.jsonl").is_file()
    assert "FPS" in res.stdout and "speed.json" in res.stdout


def test_two_stage_breakdown_has_its_four_stages(tmp_path):
    args = build_parser(only="speed").parse_args(
        ["speed", "--config-file", str(CONFIGS / "tiny_two_stage.yaml"), "--random-init",
         "--output-dir", str(tmp_path)])
    cfg = build_speed_cfg(request_from_args(args))
    assert cfg.MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT and cfg.MODEL.CLIP.RANDOM_INIT
    model = build_speed_model(cfg, random_init=True)
    result = benchmark_model(model, SpeedProtocol(input_size=(64, 64), warmup=1, iters=1,
                                                  repeats=1, flops=False))
    stages = result["breakdown_ms"]
    assert {"proposal_network", "crop_preparation", "clip_crops", "fusion", "other"} <= \
        set(stages)
    top = sum(v for k, v in stages.items() if "/" not in k)
    assert top == pytest.approx(result["latency_ms"]["mean"], rel=1e-6)


def test_random_init_sets_every_random_init_key():
    opts = random_init_overrides(add_project_configs(get_cfg()))
    pairs = dict(zip(opts[0::2], opts[1::2]))
    assert pairs["MODEL.CLIP.RANDOM_INIT"] == "True"
    assert pairs["MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT"] == "True"
    assert pairs["MODEL.CLIP.WEIGHTS"] == pairs["MODEL.TWO_STAGE.BACKBONE.WEIGHTS"] == ""
    assert pairs["MODEL.WEIGHTS"] == ""


@pytest.mark.parametrize(("argv", "message"), [
    (["--iters", "0"], "--iters must be an integer >= 1"),
    (["--input-size", "0", "64"], "--input-size takes two positive integers"),
    (["--cuda-graphs"], "--cuda-graphs needs --device cuda"),
    (["--device", "tpu"], "--device 'tpu': use cpu, cuda or cuda:N"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--preset", "paper-voc"], "give --preset alone"),
])
def test_bad_arguments_are_one_line_errors(argv, message, capsys, tmp_path):
    code = main(["speed", "--config-file", str(CONFIGS / "tiny_zegclip.yaml"),
                 "--output-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "speed.json").exists()


def test_missing_config_and_preset_is_an_error(capsys):
    assert main(["speed"]) == 2
    assert "--config-file is required" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_is_an_error(capsys, tmp_path):
    code = main(["speed", "--config-file", str(CONFIGS / "tiny_zegclip.yaml"), "--device",
                 "cuda", "--output-dir", str(tmp_path)])
    assert code == 2 and "CUDA is not available" in capsys.readouterr().err


def test_bad_precision_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        main(["speed", "--config-file", "x.yaml", "--precision", "fp8"])
    assert e.value.code == 2 and "invalid choice: 'fp8'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["speed-preset", "paper-voc", "--threads", "0"],
    ["speed-scaling", "--quick", "--threads", "0"],
    ["speed", "--scaling", "--threads", "0"],  # the older spellings run the same code
    ["speed", "--preset", "paper-voc", "--threads", "0"],
])
def test_preset_and_scaling_commands_name_their_flags_in_errors(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--threads must be >= 1, got 0" in err and err.count("\n") == 1


def test_the_library_takes_a_request_and_names_its_fields():
    from zsseg_bench.speed.request import SpeedRequest
    from zsseg_bench.utils.errors import OptionError

    with pytest.raises(OptionError, match="give weights or random_init, not both"):
        SpeedRequest(config_file="x.yaml", weights="w.pth", random_init=True).validate()
    with pytest.raises(OptionError, match="a speed measurement needs config_file"):
        build_speed_cfg(SpeedRequest())
    request = SpeedRequest(config_file=str(CONFIGS / "tiny_zegclip.yaml"), random_init=True,
                           mode="slide", dataset="synthetic_val", opts=["SEED", "3"])
    cfg = build_speed_cfg(request)
    assert cfg.TEST.MODE == "slide" and cfg.SEED == 3 and cfg.MODEL.CLIP.RANDOM_INIT
    assert request.iterations("cuda:0") == {"warmup": 10, "iters": 100, "repeats": 3}
