"""``zsseg-bench speed``: FPS, latency, FLOPs, parameters, memory and stage times of a config.

Examples::

    zsseg-bench speed --config-file configs/voc/zegclip_vitb16_512x512_20k_inductive.yaml \\
        --random-init --input-size 512 512 --device cuda --precision fp16
    zsseg-bench speed-preset paper-voc            # every method at paper scale, beside the paper
    zsseg-bench speed-scaling --quick             # cost vs vocabulary, input size, proposals

Writes ``speed.json`` (plus ``config.yaml``, ``env.json``, ``log.jsonl``) in the run directory
(``--output-dir``, default ``OUTPUT_DIR``) and prints a summary. The command builds a
:class:`~zsseg_bench.speed.request.SpeedRequest` from its arguments
(:func:`request_from_args`, shared with ``speed-preset`` and ``speed-scaling``); the library
measures it. ``--preset NAME`` and ``--scaling [--quick]`` are the older spellings of the two
other commands: they still run them, with a note.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from zsseg_bench.config.allowed import allowed_values
from zsseg_bench.speed.harness import DEFAULT_ITERATIONS
from zsseg_bench.speed.knobs import COMPILE_MODES, PRECISIONS, SDPA_BACKENDS
from zsseg_bench.speed.request import SpeedRequest, measure_speed
from zsseg_bench.utils.errors import OptionError, UserError, cli_flag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``zsseg-bench speed``."""
    from zsseg_bench.speed.presets import PRESETS

    parser.add_argument("--config-file", metavar="FILE",
                        help="the method's YAML config")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="older spelling of `zsseg-bench speed-preset NAME`")
    parser.add_argument("--scaling", action="store_true",
                        help="older spelling of `zsseg-bench speed-scaling`")
    parser.add_argument("--quick", action="store_true",
                        help="with --scaling: older spelling of `speed-scaling --quick`")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="run directory (overrides OUTPUT_DIR)")
    add_protocol_arguments(parser)
    add_model_arguments(parser)
    add_overrides_argument(parser)


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of how to time (every speed command): image size, iterations, precision,
    device, inference mode, knobs, threads."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = textwrap.fill(
        "Protocol: batch 1, random uint8 images of --input-size already on the device (data "
        "loading excluded), model(batched_inputs) timed with post-processing and cached text "
        "embeddings, device synchronised around every call. Defaults of --warmup/--iters/"
        "--repeats: " + "; ".join(f"{d}: {v['warmup']}/{v['iters']}/{v['repeats']}"
                                  for d, v in DEFAULT_ITERATIONS.items()) + ".", width=79)
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


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of which weights and vocabulary (one config: ``zsseg-bench speed``)."""
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


def add_overrides_argument(parser: argparse.ArgumentParser) -> None:
    """The trailing ``KEY VALUE ...`` config overrides."""
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides, e.g. TEST.MODE slide")


def request_from_args(args: argparse.Namespace) -> SpeedRequest:
    """The :class:`SpeedRequest` of parsed speed options (those a command does not have keep
    their defaults)."""
    def get(name: str, default: Any = None) -> Any:
        return getattr(args, name, default)

    return SpeedRequest(
        config_file=get("config_file"), opts=tuple(get("opts") or ()),
        output_dir=get("output_dir"),
        input_size=tuple(args.input_size) if get("input_size") else None,
        warmup=get("warmup"), iters=get("iters"), repeats=get("repeats"),
        num_images=get("num_images", 4), precision=get("precision", "fp32"),
        device=get("device"), mode=get("mode"), random_init=bool(get("random_init", False)),
        weights=get("weights"), dataset=get("dataset"),
        channels_last=bool(get("channels_last", False)), compile=get("compile"),
        cuda_graphs=bool(get("cuda_graphs", False)), sdpa=get("sdpa", "auto"),
        threads=get("threads"), flops=not get("no_flops", False),
        breakdown=not get("no_breakdown", False))


def flag_errors(error: OptionError) -> UserError:
    """A library error about request fields, as the command line's flags name them."""
    return UserError(error.named(cli_flag))


def _check_args(args: argparse.Namespace) -> None:
    """The older spellings' combinations, and a config file for one measurement."""
    if args.preset and (args.config_file or args.scaling):
        raise UserError("give --preset alone (not with --config-file or --scaling); or use "
                        "`zsseg-bench speed-preset NAME`")
    if args.quick and not args.scaling:
        raise UserError("--quick goes with --scaling (`zsseg-bench speed-scaling --quick`)")
    if not args.preset and not args.config_file and not args.scaling:
        raise UserError("--config-file is required; e.g. --config-file "
                        "configs/voc/<method>.yaml --random-init (every method at paper "
                        "scale: `zsseg-bench speed-preset paper-voc`)")


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


def run_speed(request: SpeedRequest) -> dict[str, Any]:
    """Runs one speed measurement and prints its summary; returns the ``speed.json`` record."""
    result, path = measure_speed(request)
    print(format_summary(result))
    print(f"wrote {path}")
    return result


def _older_spelling(old: str, new: str) -> None:
    print(f"zsseg-bench speed: note: `speed {old}` is `zsseg-bench {new}` now; running that",
          file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``zsseg-bench speed`` (and of its older spellings)."""
    _check_args(args)
    request = request_from_args(args)
    try:
        request.validate()
        if args.preset:
            from zsseg_bench.commands.speed_preset import run_preset

            _older_spelling(f"--preset {args.preset}", f"speed-preset {args.preset}")
            run_preset(args.preset, request)
        elif args.scaling:
            from zsseg_bench.commands.speed_scaling import run_scaling

            _older_spelling("--scaling" + (" --quick" if args.quick else ""),
                            "speed-scaling" + (" --quick" if args.quick else ""))
            run_scaling(request, quick=args.quick)
        else:
            run_speed(request)
    except OptionError as e:
        raise flag_errors(e) from e
    return 0
