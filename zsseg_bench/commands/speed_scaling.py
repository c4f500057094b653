"""``zsseg-bench speed --scaling [--quick]``: how cost grows with vocabulary, input size and
proposals (:mod:`zsseg_bench.speed.scaling`), every method in this process, one point after the
other, random weights; ``scaling.json`` + ``speed_scaling.png`` in the output directory.

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
from zsseg_bench.utils.errors import UserError
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


def _point_args(args: argparse.Namespace, config: Path, options: dict[str, Any]
                ) -> argparse.Namespace:
    ns = argparse.Namespace(**vars(args))
    ns.config_file = str(config)
    ns.random_init = True
    ns.input_size = list(options["input_size"])
    ns.mode = options["mode"]
    ns.dataset = options["dataset"]
    ns.opts = list(args.opts or []) + options["opts"]
    return ns


def _protocol_key(args: argparse.Namespace, device: str, iterations: dict[str, int]
                  ) -> dict[str, Any]:
    """What must match for a saved point to be reused."""
    return {"device": device, "precision": args.precision, "threads": args.threads,
            "iterations": iterations, "opts": list(args.opts or [])}


def run_scaling(args: argparse.Namespace, methods: dict[str, Path] | None = None,
                output_dir: str | Path | None = None, grid: Any = None) -> dict[str, Any]:
    """Measures every point of the grid (resuming from ``scaling.json``); returns its content.

    Args:
        args: parsed ``zsseg-bench speed`` options (device, precision, iterations, ...).
        methods: name -> config file (default: :func:`default_methods`, or ``--config-file``).
        output_dir: where ``scaling.json``/``speed_scaling.png`` go (default ``--output-dir``,
            else ``output/speed_scaling``).
        grid: a :class:`~zsseg_bench.speed.scaling.ScalingGrid` (default: the full grid, or
            the quick one with ``--quick``).
    """
    import torch

    from zsseg_bench.commands.speed import build_speed_cfg, build_speed_model, protocol_from_args
    from zsseg_bench.modeling.build import resolve_device
    from zsseg_bench.speed.harness import benchmark_model
    from zsseg_bench.speed.presets import PAPER_SCALE_ITERATIONS
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
        methods = ({Path(args.config_file).stem: Path(args.config_file)} if args.config_file
                   else default_methods())
    if not methods:
        raise UserError("speed --scaling: no installed method has both a toy config "
                        "(synthetic/<m>.yaml) and a reference VOC config (voc/<m>.yaml); pass "
                        "--config-file")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = Path(output_dir or args.output_dir or Path("output") / "speed_scaling")
    make_output_dir(out)
    device = args.device or resolve_device("auto")
    iterations = {k: v if getattr(args, k) is None else getattr(args, k)
                  for k, v in PAPER_SCALE_ITERATIONS["cuda" if device.startswith("cuda")
                                                     else "cpu"].items()}
    base_cfgs = {m: build_speed_cfg(_point_args(args, c, {"input_size": (1, 1), "mode": None,
                                                          "dataset": None, "opts": []}))
                 for m, c in methods.items()}
    keys = proposal_keys()
    proposals = {m: keys.get(cfg.MODEL.HEAD.NAME) for m, cfg in base_cfgs.items()}
    grid = grid or (QUICK_GRID if args.quick else FULL_GRID)
    points = scaling_points({m: proposals[m] is not None for m in methods}, grid,
                            quick=args.quick)
    key = {**_protocol_key(args, device, iterations),
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
        ns = _point_args(args, methods[point.method], options)
        for k, v in iterations.items():
            setattr(ns, k, v)
        start = time.time()
        cfg = build_speed_cfg(ns)
        model = build_speed_model(cfg, random_init=True)
        record = benchmark_model(model, protocol_from_args(ns, cfg, device))
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
                 f"Cost vs work, {device}, {args.precision}, random weights, batch 1 "
                 "(other factors at 512x512, 20 classes, the config's proposals)",
                 labels=method_labels())
    print(f"wrote {path} and {out / SCALING_PNG}")
    return state
