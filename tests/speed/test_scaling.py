"""The scaling sweep on tiny configs: the grid, monotonic cost where it must be, resume, PNG."""

import json
from pathlib import Path

import pytest

from zsseg_bench.cli import build_parser
from zsseg_bench.commands.speed import request_from_args
from zsseg_bench.commands.speed_scaling import (
    SCALING_PNG,
    default_methods,
    method_labels,
    proposal_keys,
    run_scaling,
)
from zsseg_bench.config.projects import get_method, list_methods
from zsseg_bench.speed.request import SpeedRequest
from zsseg_bench.speed.scaling import FULL_GRID, QUICK_GRID, ScalingGrid, scaling_points
from zsseg_bench.utils.errors import UserError

CONFIGS = Path(__file__).parent / "configs"
TINY = ScalingGrid(vocabulary=(3, 24, 96), input=(32, 64), proposals=(2, 6, 12),
                   base_input=32, base_vocabulary=3)

pytestmark = pytest.mark.usefixtures("one_thread")


def _request(*argv: str) -> SpeedRequest:
    return request_from_args(build_parser(only="speed-scaling").parse_args(
        ["speed-scaling", *argv]))


def test_full_and_quick_grids():
    methods = {"zegclip": False, "two_stage": True}
    full = scaling_points(methods, FULL_GRID)
    assert FULL_GRID.vocabulary == (20, 59, 171, 847) and FULL_GRID.input == (512, 640, 768,
                                                                              1024)
    assert FULL_GRID.proposals == (25, 50, 100, 200)
    # zegclip: 4 vocabularies + 4 inputs x 2 modes; two_stage also 4 proposal counts.
    assert sum(p.method == "zegclip" for p in full) == 12
    assert sum(p.method == "two_stage" for p in full) == 16
    quick = scaling_points(methods, QUICK_GRID, quick=True)
    assert {p.key for p in quick if p.method == "two_stage"} == {
        "two_stage/proposals=25", "two_stage/proposals=100"}
    assert len([p for p in quick if p.method == "zegclip"]) == 6
    point = next(p for p in full if p.factor == "proposals" and p.value == 200)
    key = get_method("two_stage").speed.proposals_key
    options = point.speed_options(proposals_key=key)
    assert options["input_size"] == (512, 512) and options["dataset"].endswith("_20")
    assert options["opts"] == ["MODEL.CLIP.TEMPLATES", "single",
                               "MODEL.TWO_STAGE.DECODER.NUM_QUERIES", "200"]
    with pytest.raises(ValueError, match="no proposals key"):
        point.speed_options()


def test_default_methods_are_the_installed_ones_with_toy_and_voc_configs():
    methods = default_methods()
    expected = {m.name for m in list_methods()
                if m.toy_config is not None and m.config_file("voc") is not None}
    assert {"zegclip", "two_stage"} <= set(methods) == expected
    assert all(p.parent.name == "voc" and p.is_file() for p in methods.values())
    # The proposals factor is the methods' own knob, found by head.
    assert proposal_keys() == {"TwoStageHead": "MODEL.TWO_STAGE.DECODER.NUM_QUERIES"}
    assert method_labels()["two_stage"] == "Two-stage (zsseg)"


def test_quick_needs_scaling():
    from zsseg_bench.commands.speed import _check_args

    args = build_parser(only="speed").parse_args(["speed", "--quick"])
    with pytest.raises(UserError, match="--quick goes with --scaling"):
        _check_args(args)


def test_tiny_scaling_cost_grows_with_the_work_and_resumes(tmp_path):
    methods = {"zegclip": CONFIGS / "tiny_zegclip.yaml",
               "two_stage": CONFIGS / "tiny_two_stage.yaml"}
    request = _request("--device", "cpu", "--warmup", "0", "--iters", "1", "--repeats", "1",
                       "--no-breakdown")
    state = run_scaling(request, methods, tmp_path, grid=TINY)
    points = state["points"]
    assert len(points) == 2 * (3 + 4) + 3

    def gflops(method, factor, mode=None):
        keys = [k for k, p in points.items() if p["method"] == method
                and p["factor"] == factor and p["mode"] == mode]
        return [points[k]["gflops"] for k in sorted(keys, key=lambda k: points[k]["value"])]

    # ZegCLIP's decoder and the classification grow with the vocabulary; the two-stage cost
    # with its proposals (= CLIP crops); every method's with the input, whole-image inference.
    for series in (gflops("zegclip", "vocabulary"), gflops("two_stage", "proposals"),
                   gflops("zegclip", "input", "whole"), gflops("two_stage", "input", "whole")):
        assert all(a < b for a, b in zip(series, series[1:])), series
    assert points["zegclip/vocabulary=96"]["vocabulary_size"] == 96
    # The paper setting is reached by several factors: measured once (the tiny configs infer
    # whole images, so input=32/whole is the base point).
    base, same = points["zegclip/vocabulary=3"], points["zegclip/input=32/whole"]
    assert base["fps"] == same["fps"] and same["factor"] == "input" and same["mode"] == "whole"
    assert points["zegclip/input=64/slide"]["inference_mode"] == "slide"
    assert (tmp_path / SCALING_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = json.loads((tmp_path / "scaling.json").read_text())
    again = run_scaling(request, methods, tmp_path, grid=TINY)  # resumes: nothing re-measured
    assert again["points"] == before["points"]
