"""``zsseg-bench eval``: evaluate trained weights on ``DATASETS.TEST``, write the run directory.

The model is built from the config (CLIP weights from ``MODEL.CLIP.WEIGHTS``) and the
checkpoint's trainable weights are loaded into it. Works under torchrun as well (each rank
evaluates a shard; the confusion matrices are summed).
"""

from __future__ import annotations

import argparse
import time

from zsseg_bench.utils.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config-file``, ``--weights``, ``--vis``, ``--output-dir``, ``KEY VALUE`` overrides."""
    from zsseg_bench.config.command_line import add_config_arguments

    parser.add_argument("--weights", default=None, metavar="CKPT",
                        help="a checkpoint written by `zsseg-bench train` (model_final.pth); "
                             "default: MODEL.WEIGHTS")
    parser.add_argument("--vis", type=int, default=0, metavar="N",
                        help="save image | ground truth | prediction pictures of the first N "
                             "images to OUTPUT_DIR/vis")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Evaluates; returns the exit code."""
    from zsseg_bench.engine.checkpoint import build_model_with_weights
    from zsseg_bench.engine.evaluate import (
        evaluate_datasets,
        format_record,
        metrics_record,
        write_metrics,
    )
    from zsseg_bench.engine.session import command_session
    from zsseg_bench.engine.writers import JSONLMetricsWriter

    if args.vis < 0:
        raise UserError(f"--vis {args.vis}: the number of pictures must be >= 0")
    opts = list(args.opts or [])
    if args.weights:
        opts += ["MODEL.WEIGHTS", args.weights]
    with command_session(args.config_file, opts, args.output_dir, command="eval",
                         data="test") as session:
        cfg = session.cfg
        if not cfg.MODEL.WEIGHTS:
            raise UserError("no weights to evaluate: pass --weights CKPT (a model_final.pth "
                            "written by `zsseg-bench train`) or set MODEL.WEIGHTS")
        start = time.perf_counter()
        model, extra = build_model_with_weights(cfg, cfg.MODEL.WEIGHTS)
        results = evaluate_datasets(cfg, model, output_dir=session.output_dir, num_vis=args.vis)
        record = metrics_record(cfg, results, iteration=int(extra.get("iteration", -1)) + 1,
                                wall_time_s=time.perf_counter() - start,
                                train_time_s=float(extra.get("train_time_s", 0.0)),
                                data=session.data)
        record["weights"] = cfg.MODEL.WEIGHTS
        path = write_metrics(session.output_dir, record)
        if session.is_main_process:
            writer = JSONLMetricsWriter(session.log)
            for name, res in results.items():
                writer.write_eval(record["iteration"], name, res)
            print(f"{format_record(record)} -> {path}")
    return 0
