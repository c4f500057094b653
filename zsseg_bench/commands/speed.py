"""``zsseg-bench speed``: FPS, latency, FLOPs, parameters, memory and stage times of a config.

Examples::

    zsseg-bench speed --config-file configs/voc/zegclip_vitb16_512x512_20k_inductive.yaml \\
        --random-init --input-size 512 512 --device cuda --precision fp16
    zsseg-bench speed --preset paper-voc          # ZegCLIP vs two-stage, beside the paper

Writes ``speed.json`` (plus ``config.yaml``, ``env.json``, ``log.jsonl``) in the run directory
(``--output-dir``, default ``OUTPUT_DIR``) and prints a summary.
"""

from __future__ import annotations

import argparse
import logging
import textwrap
from typing import Any

import torch

from zsseg_bench.config.allowed import allowed_values
from zsseg_bench.speed.harness import DEFAULT_ITERATIONS, SpeedProtocol, benchmark_model
from zsseg_bench.speed.knobs import COMPILE_MODES, PRECISIONS, SDPA_BACKENDS
from zsseg_bench.utils.errors import UserError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``zsseg-bench speed``."""
    from zsseg_bench.speed.presets import PRESETS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = textwrap.fill(
        "Protocol: batch 1, random uint8 images of --input-size already on the device (data "
        "loading excluded), model(batched_inputs) timed with post-processing and cached text "
        "embeddings, device synchronised around every call. Defaults of --warmup/--iters/"
        "--repeats: " + "; ".join(f"{d}: {v['warmup']}/{v['iters']}/{v['repeats']}"
                                  for d, v in DEFAULT_ITERATIONS.items()) + ".", width=79)
    parser.add_argument("--config-file", metavar="FILE",
                        help="the method's YAML config (required unless --preset)")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="run a preset comparison instead of one config (paper-voc / "
                             "paper-coco: every method at 512x512 with the VOC / COCO-Stuff "
                             "vocabulary, random init; configs/sweeps/paper_*.yaml)")
    parser.add_argument("--scaling", action="store_true",
                        help="time every method while vocabulary (20-847 classes), input size "
                             "(512-1024, whole/slide) or two-stage proposals (25-200) grow: "
                             "scaling.json + speed_scaling.png")
    parser.add_argument("--quick", action="store_true",
                        help="with --scaling: the reduced grid (two points per factor)")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="run directory (overrides OUTPUT_DIR)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="test image size (default: INPUT.CROP.SIZE of the config)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls first")
    parser.add_argument("--iters", type=int, default=None, help="timed calls per repeat")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats of --iters timed calls (FPS spread is over them)")
    parser.add_argument("--num-images", type=int, default=4,
                        help="distinct random images the calls rotate among (default 4)")
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                        help="fp32, or autocast to fp16/bf16 (default fp32)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: MODEL.DEVICE of the config)")
    parser.add_argument("--mode", choices=allowed_values("TEST.MODE"), default=None,
                        help="whole-image or sliding-window inference (default: TEST.MODE)")
    parser.add_argument("--random-init", action="store_true",
                        help="random weights everywhere (every MODEL.**.RANDOM_INIT key True and "
                             "its sibling WEIGHTS empty, MODEL.WEIGHTS empty): no weight file "
                             "needed")
    parser.add_argument("--weights", default=None, metavar="CKPT",
                        help="trained weights to time (a checkpoint of `zsseg-bench train` or "
                             "`zsseg-bench convert`); default: MODEL.WEIGHTS")
    parser.add_argument("--dataset", default=None,
                        help="dataset whose class list is the vocabulary (default: "
                             "DATASETS.TEST[0]); only its metadata is needed")
    parser.add_argument("--channels-last", action="store_true",
                        help="channels-last memory format for 4-d weights")
    parser.add_argument("--compile", nargs="?", const="default", default=None,
                        choices=list(COMPILE_MODES), metavar="MODE",
                        help="torch.compile the model (MODE: " + ", ".join(COMPILE_MODES) + ")")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="capture the call in a CUDA graph and replay it (falls back to "
                             "eager, recording why, where capture fails)")
    parser.add_argument("--sdpa", default="auto", choices=list(SDPA_BACKENDS),
                        help="scaled-dot-product-attention backend (default auto)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    parser.add_argument("--no-breakdown", action="store_true", help="skip per-stage times")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides, e.g. MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE loop")


def random_init_overrides(cfg: Any) -> list[str]:
    """Overrides that make the whole model random without reading a file.

    Every ``MODEL.**.RANDOM_INIT`` key becomes True and its sibling ``WEIGHTS`` key (if any)
    empty, and ``MODEL.WEIGHTS`` (a trained checkpoint) empty: the convention methods follow
    for their own pretrained parts (``MODEL.CLIP.*``, ``MODEL.TWO_STAGE.BACKBONE.*``).

    Returns:
        ``[KEY, VALUE, ...]`` for ``merge_from_list``.
    """
    opts: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for k, v in sorted(node.items()):
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            elif k == "RANDOM_INIT":
                opts.extend([f"{prefix}{k}", "True"])
                if "WEIGHTS" in node:
                    opts.extend([f"{prefix}WEIGHTS", ""])

    walk(cfg.MODEL, "MODEL.")
    return opts + ["MODEL.WEIGHTS", ""]


def _check_args(args: argparse.Namespace) -> None:
    if args.preset and (args.config_file or args.scaling):
        raise UserError("give --preset alone (not with --config-file or --scaling)")
    if getattr(args, "weights", None) and args.random_init:
        raise UserError("give --weights or --random-init, not both")
    if args.quick and not args.scaling:
        raise UserError("--quick goes with --scaling")
    if not args.preset and not args.config_file and not args.scaling:
        raise UserError("--config-file is required (or --preset NAME); e.g. --config-file "
                        "configs/voc/zegclip_vitb16_512x512_20k_inductive.yaml --random-init")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    if args.device is not None and args.device.split(":")[0] not in ("cpu", "cuda"):
        raise UserError(f"--device {args.device!r}: use cpu, cuda or cuda:N")


def protocol_from_args(args: argparse.Namespace, cfg: Any, device: str) -> SpeedProtocol:
    """The :class:`SpeedProtocol` of the command line (device-dependent defaults filled in)."""
    defaults = DEFAULT_ITERATIONS["cuda" if device.startswith("cuda") else "cpu"]
    size = args.input_size if args.input_size is not None else cfg.INPUT.CROP.SIZE
    protocol = SpeedProtocol(
        input_size=tuple(int(s) for s in size), device=device, precision=args.precision,
        warmup=defaults["warmup"] if args.warmup is None else args.warmup,
        iters=defaults["iters"] if args.iters is None else args.iters,
        repeats=defaults["repeats"] if args.repeats is None else args.repeats,
        num_images=args.num_images, channels_last=args.channels_last, compile=args.compile,
        cuda_graphs=args.cuda_graphs, sdpa=args.sdpa, breakdown=not args.no_breakdown,
        flops=not args.no_flops, seed=int(cfg.SEED))
    protocol.validate()
    return protocol


def build_speed_cfg(args: argparse.Namespace) -> Any:
    """The run's config: the file, the speed options that are config keys, the overrides."""
    from zsseg_bench.config import get_cfg
    from zsseg_bench.config.command_line import setup_cfg

    opts: list[str] = []
    if args.random_init:
        opts += random_init_overrides(get_cfg())
    if args.mode is not None:
        opts += ["TEST.MODE", args.mode]
    if args.device is not None:
        opts += ["MODEL.DEVICE", args.device]
    if args.dataset is not None:
        opts += ["DATASETS.TEST", f"('{args.dataset}',)"]
    if getattr(args, "weights", None):
        opts += ["MODEL.WEIGHTS", args.weights]
    return setup_cfg(args.config_file, opts + list(args.opts), args.output_dir)


def build_speed_model(cfg: Any, random_init: bool) -> torch.nn.Module:
    """Seeds with ``SEED``, builds the model of ``cfg`` (registering the built-in datasets'
    metadata first) and loads ``MODEL.WEIGHTS`` unless ``random_init``."""
    import zsseg_bench.data  # noqa: F401  (registers the built-in datasets' metadata)
    from zsseg_bench.engine.checkpoint import build_model_with_weights

    model, _ = build_model_with_weights(cfg, "" if random_init else cfg.MODEL.WEIGHTS)
    return model


def format_summary(result: dict[str, Any]) -> str:
    """A few human-readable lines of a ``speed.json`` record."""
    p = result["protocol"]
    lat = result["latency_ms"]
    spread = result["fps_spread"]
    lines = [
        f"{result.get('method', 'model')} on {p['device_name']} ({p['precision']}, "
        f"{p['input_size'][0]}x{p['input_size'][1]}, {p['mode']}, batch {p['batch_size']}, "
        f"{p['vocabulary_size']} classes)",
        f"  FPS {result['fps']:.3g} (repeats {spread['min']:.3g}-{spread['max']:.3g}, "
        f"std {spread['std']:.2g})  latency ms: mean {lat['mean']:.1f}  median "
        f"{lat['median']:.1f}  p90 {lat['p90']:.1f}  std {lat['std']:.1f}  min {lat['min']:.1f}",
    ]
    if result["gflops"] is not None:
        uncounted = ", ".join(f"{k} x{v}" for k, v in result["flops_uncounted_ops"].items())
        lines.append(f"  GFLOPs {result['gflops']:.1f}  (not counted: {uncounted or 'none'})")
    else:
        lines.append(f"  GFLOPs n/a ({result['flops_error']})")
    params = result["params"]
    lines.append(f"  params {params['total'] / 1e6:.2f}M total, {params['learnable'] / 1e6:.2f}M "
                 f"learnable  peak memory {result['peak_memory_mb']:.0f} MiB "
                 f"({result['memory_kind']})")
    if result["breakdown_ms"]:
        lines.append("  stages ms: " + ", ".join(f"{k} {v:.1f}"
                                                 for k, v in result["breakdown_ms"].items()))
    return "\n".join(lines)


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Runs one speed measurement from parsed arguments; returns the ``speed.json`` record."""
    from zsseg_bench.modeling.build import resolve_device
    from zsseg_bench.utils.env import collect_env
    from zsseg_bench.utils.file_io import atomic_write_json
    from zsseg_bench.utils.logger import setup_logger
    from zsseg_bench.utils.run_dir import SPEED_FILE, lock_run_dir, setup_run_dir

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = build_speed_cfg(args)
    device = resolve_device(cfg.MODEL.DEVICE)
    protocol = protocol_from_args(args, cfg, device)  # bad options fail before the model builds
    with lock_run_dir(cfg.OUTPUT_DIR, "speed") as out:
        setup_logger(out)
        model = build_speed_model(cfg, args.random_init)
        writer = setup_run_dir(out, cfg, device)
        result = benchmark_model(model, protocol,
                                 progress=lambda msg: logger.info("speed: %s", msg))
        result = {
            "method": cfg.MODEL.HEAD.NAME,
            "config_file": str(args.config_file),
            "weights": "random" if args.random_init else (cfg.MODEL.WEIGHTS or "config"),
            **result,
            "env": collect_env(device),
        }
        atomic_write_json(out / SPEED_FILE, result)
        writer.write({"event": "speed", "fps": result["fps"], "latency_ms": result["latency_ms"],
                      "gflops": result["gflops"]})
    print(format_summary(result))
    print(f"wrote {out / SPEED_FILE}")
    return result


def run(args: argparse.Namespace) -> int:
    """Entry point of ``zsseg-bench speed``."""
    _check_args(args)
    if args.preset:
        from zsseg_bench.commands.speed_preset import run_preset

        return run_preset(args.preset, args)
    if args.scaling:
        from zsseg_bench.commands.speed_scaling import run_scaling

        run_scaling(args)
        return 0
    run_speed(args)
    return 0
