"""``zsseg-bench speed-scaling [--quick]`` (older spelling ``speed --scaling``): how cost grows
with vocabulary, input size and proposals (:mod:`zsseg_bench.speed.scaling`), every method in
this process, one point after the other, random weights; ``scaling.json`` +
``speed_scaling.png`` in the output directory.

Methods: every installed method (:func:`~zsseg_bench.config.projects.list_methods`, plug-ins
included) with a toy config and a reference VOC config (``Method.config_file``: the suite's
``configs/synthetic/<method>.yaml`` and ``configs/voc/<method>.yaml``, or a plug-in's own), or
the one ``--config-file`` names.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from zsseg_bench.config.projects import list_methods
from zsseg_bench.speed.request import SpeedRequest
from zsseg_bench.utils.errors import OptionError, UserError
from zsseg_bench.utils.run_dir import make_output_dir

logger = logging.getLogger(__name__)
SCALING_JSON = "scaling.json"
SCALING_PNG = "speed_scaling.png"
#: The dataset of the reference configs the grid starts from (the paper setting).
REFERENCE_DATASET = "voc"


def default_methods() -> dict[str, Path]:
    """Every installed method with a toy config and a reference VOC config: name -> the VOC
    config."""
    return {m.name: m.config_file(REFERENCE_DATASET) for m in list_methods()
            if m.toy_config is not None and m.config_file(REFERENCE_DATASET) is not None}


def method_labels() -> dict[str, str]:
    """Display names of the installed methods (``Method.label``), by method name."""
    return {m.name: m.label for m in list_methods()}


def proposal_keys() -> dict[str, str]:
    """Head name -> the config key of its proposal count, for every installed method that has
    one (``Method.speed.proposals_key``)."""
    return {m.head: m.speed.proposals_key for m in list_methods()
            if m.head is not None and m.speed.proposals_key is not None}


def _protocol_key(request: SpeedRequest, device: str, iterations: dict[str, int]
                  ) -> dict[str, Any]:
    """What must match for a saved point to be reused."""
    return {"device": device, "precision": request.precision, "threads": request.threads,
            "iterations": iterations, "opts": list(request.opts)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``zsseg-bench speed-scaling``."""
    from zsseg_bench.commands.speed import add_overrides_argument, add_protocol_arguments

    parser.add_argument("--quick", action="store_true",
                        help="the reduced grid (two points per factor)")
    parser.add_argument("--config-file", metavar="FILE",
                        help="scale this config only (default: every installed method with a "
                             "toy and a reference VOC config)")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="where scaling.json and speed_scaling.png go (default: "
                             "output/speed_scaling)")
    add_protocol_arguments(parser)
    add_overrides_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``zsseg-bench speed-scaling``."""
    from zsseg_bench.commands.speed import flag_errors, request_from_args

    request = request_from_args(args)
    try:
        request.validate()
        run_scaling(request, quick=args.quick)
    except OptionError as e:
        raise flag_errors(e) from e
    return 0


def run_scaling(request: SpeedRequest, methods: dict[str, Path] | None = None,
                output_dir: str | Path | None = None, grid: Any = None, quick: bool = False
                ) -> dict[str, Any]:
    """Measures every point of the grid (resuming from ``scaling.json``); returns its content.

    Args:
        request: how to time (device, precision, iterations, threads, overrides, ...); its
            ``config_file``, if any, is the one method to scale; each point's request is
            derived from it (``dataclasses.replace``: random weights, the point's input size,
            inference mode, vocabulary and overrides).
        methods: name -> config file (default: :func:`default_methods`, or the request's
            config file).
        output_dir: where ``scaling.json``/``speed_scaling.png`` go (default: the request's
            ``output_dir``, else ``output/speed_scaling``).
        grid: a :class:`~zsseg_bench.speed.scaling.ScalingGrid` (default: the full grid, or
            the quick one with ``quick``).
        quick: the quick grid, and a model with proposals scaled in proposals only.
    """
    import torch

    from zsseg_bench.modeling.build import resolve_device
    from zsseg_bench.speed.harness import benchmark_model
    from zsseg_bench.speed.presets import PAPER_SCALE_ITERATIONS
    from zsseg_bench.speed.request import build_speed_cfg, build_speed_model, speed_protocol
    from zsseg_bench.speed.scaling import (
        FULL_GRID,
        QUICK_GRID,
        plot_scaling,
        point_record,
        register_vocabulary,
        scaling_points,
    )
    from zsseg_bench.utils.file_io import atomic_write_json

    if methods is None:
        methods = ({Path(request.config_file).stem: Path(request.config_file)}
                   if request.config_file else default_methods())
    if not methods:
        raise UserError("speed scaling: no installed method has both a toy config "
                        "(synthetic/<m>.yaml) and a reference VOC config (voc/<m>.yaml); give "
                        "a config file")
    if request.threads is not None:
        torch.set_num_threads(request.threads)
    out = Path(output_dir or request.output_dir or Path("output") / "speed_scaling")
    make_output_dir(out)
    device = request.device or resolve_device("auto")
    iterations = request.iterations(device, PAPER_SCALE_ITERATIONS)

    def point_request(config: Path, options: dict[str, Any]) -> SpeedRequest:
        return dataclasses.replace(
            request, config_file=str(config), random_init=True,
            input_size=tuple(options["input_size"]), mode=options["mode"],
            dataset=options["dataset"], opts=(*request.opts, *options["opts"]), **iterations)

    base_cfgs = {m: build_speed_cfg(point_request(c, {"input_size": (1, 1), "mode": None,
                                                      "dataset": None, "opts": []}))
                 for m, c in methods.items()}
    keys = proposal_keys()
    proposals = {m: keys.get(cfg.MODEL.HEAD.NAME) for m, cfg in base_cfgs.items()}
    grid = grid or (QUICK_GRID if quick else FULL_GRID)
    points = scaling_points({m: proposals[m] is not None for m in methods}, grid, quick=quick)
    key = {**_protocol_key(request, device, iterations),
           "base": [grid.base_input, grid.base_vocabulary],
           "configs": {m: str(c) for m, c in methods.items()}}
    path = out / SCALING_JSON
    state = json.loads(path.read_text()) if path.is_file() else {}
    if state.get("protocol") != key:
        state = {"protocol": key, "points": {}}
    measured: dict[str, str] = {}  # the same run reached by two factors (the paper setting)
    for i, point in enumerate(points):
        options = point.speed_options(grid, proposals[point.method])
        mode = options["mode"] or base_cfgs[point.method].TEST.MODE
        same = json.dumps([point.method, options["input_size"], mode,
                           options["dataset"], options["opts"]])
        if point.key not in state["points"] and same in measured:
            state["points"][point.key] = {**state["points"][measured[same]],
                                          **dataclasses.asdict(point)}
        measured.setdefault(same, point.key)
        if point.key in state["points"]:
            continue
        register_vocabulary(int(options["dataset"].rsplit("_", 1)[1]))
        point_req = point_request(methods[point.method], options)
        start = time.time()
        cfg = build_speed_cfg(point_req)
        model = build_speed_model(cfg, random_init=True)
        record = benchmark_model(model, speed_protocol(point_req, cfg, device))
        state["points"][point.key] = {**point_record(point, record),
                                      "wall_s": time.time() - start}
        atomic_write_json(path, state)
        print(f"[{i + 1}/{len(points)}] {point.key}: {record['fps']:.3g} FPS, "
              f"{record['gflops'] or float('nan'):.1f} GFLOPs ({time.time() - start:.0f} s)",
              flush=True)
        del model
    state["points"] = {p.key: state["points"][p.key] for p in points}
    atomic_write_json(path, state)
    plot_scaling(list(state["points"].values()), out / SCALING_PNG,
                 f"Cost vs work, {device}, {request.precision}, random weights, batch 1 "
                 "(other factors at 512x512, 20 classes, the config's proposals)",
                 labels=method_labels())
    print(f"wrote {path} and {out / SCALING_PNG}")
    return state
