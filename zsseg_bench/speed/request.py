"""One speed measurement asked for: :class:`SpeedRequest`, and what turns it into a record.

The commands (``zsseg-bench speed``, ``speed-preset``, ``speed-scaling``) build a request from
their arguments; the library takes the request, never a command line: :func:`build_speed_cfg`
(the run's config), :func:`speed_protocol` (the harness's :class:`SpeedProtocol`, device
defaults filled in) and :func:`measure_speed` (build, time, write ``speed.json``). A preset or
the scaling grid derives the request of each run or point with ``dataclasses.replace``. Bad
values raise :class:`~zsseg_bench.utils.errors.OptionError` naming the request's fields.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from zsseg_bench.speed.harness import DEFAULT_ITERATIONS, SpeedProtocol, benchmark_model
from zsseg_bench.utils.errors import OptionError

logger = logging.getLogger(__name__)
#: The fields that set how many calls are made (defaults per device type when None).
ITERATION_FIELDS = ("warmup", "iters", "repeats")


@dataclasses.dataclass(frozen=True)
class SpeedRequest:
    """What to time and how (one ``speed.json``; presets and scaling points derive theirs).

    Attributes:
        config_file: the method's config (None for a preset or the scaling grid, whose runs
            name theirs).
        opts: ``KEY VALUE ...`` config overrides.
        output_dir: the run directory (None: the config's ``OUTPUT_DIR``).
        input_size: (H, W) of the random test images (None: the config's ``INPUT.CROP.SIZE``).
        warmup, iters, repeats: untimed calls, timed calls per repeat, repeats (None: the
            defaults of the device type).
        num_images: distinct random images the calls rotate among.
        precision: ``fp32``, or autocast to ``fp16``/``bf16``.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (None: the config's ``MODEL.DEVICE``).
        mode: ``whole`` or ``slide`` inference (None: the config's ``TEST.MODE``).
        random_init: random weights everywhere (no weight file read).
        weights: trained weights to time (None: ``MODEL.WEIGHTS``).
        dataset: the dataset whose class list is the vocabulary (None: ``DATASETS.TEST[0]``).
        channels_last, compile, cuda_graphs, sdpa: the speed knobs
            (:mod:`zsseg_bench.speed.knobs`).
        threads: torch CPU threads (None: torch's choice).
        flops: count FLOPs.
        breakdown: measure time per stage.
    """

    config_file: str | None = None
    opts: tuple[str, ...] = ()
    output_dir: str | None = None
    input_size: tuple[int, int] | None = None
    warmup: int | None = None
    iters: int | None = None
    repeats: int | None = None
    num_images: int = 4
    precision: str = "fp32"
    device: str | None = None
    mode: str | None = None
    random_init: bool = False
    weights: str | None = None
    dataset: str | None = None
    channels_last: bool = False
    compile: str | None = None
    cuda_graphs: bool = False
    sdpa: str = "auto"
    threads: int | None = None
    flops: bool = True
    breakdown: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "opts", tuple(str(o) for o in self.opts))
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(self.input_size))

    def validate(self) -> None:
        """Checks what does not need the config; raises OptionError naming the field."""
        if self.weights and self.random_init:
            raise OptionError("give <<weights>> or <<random_init>>, not both")
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"<<threads>> must be >= 1, got {self.threads}")
        if self.device is not None and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise OptionError(f"<<device>> {self.device!r}: use cpu, cuda or cuda:N")

    def iterations(self, device: str, defaults: dict[str, dict[str, int]] | None = None
                   ) -> dict[str, int]:
        """``warmup``/``iters``/``repeats``: the request's, else ``defaults`` of the device type
        (default :data:`~zsseg_bench.speed.harness.DEFAULT_ITERATIONS`)."""
        table = (defaults or DEFAULT_ITERATIONS)["cuda" if device.startswith("cuda") else "cpu"]
        return {k: table[k] if getattr(self, k) is None else getattr(self, k)
                for k in ITERATION_FIELDS}


def random_init_overrides(cfg: Any) -> list[str]:
    """Overrides that make the whole model random without reading a file.

    Every ``MODEL.**.RANDOM_INIT`` key becomes True and its sibling ``WEIGHTS`` key (if any)
    empty, and ``MODEL.WEIGHTS`` (a trained checkpoint) empty: the convention methods follow
    for their own pretrained parts (``MODEL.CLIP.*`` and each method's backbone keys).

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


def build_speed_cfg(request: SpeedRequest) -> Any:
    """The run's config: the file, the request's options that are config keys, the
    overrides."""
    from zsseg_bench.config import get_cfg
    from zsseg_bench.config.command_line import setup_cfg

    if request.config_file is None:
        raise OptionError("a speed measurement needs <<config_file>>")
    opts: list[str] = []
    if request.random_init:
        opts += random_init_overrides(get_cfg())
    if request.mode is not None:
        opts += ["TEST.MODE", request.mode]
    if request.device is not None:
        opts += ["MODEL.DEVICE", request.device]
    if request.dataset is not None:
        opts += ["DATASETS.TEST", f"('{request.dataset}',)"]
    if request.weights:
        opts += ["MODEL.WEIGHTS", request.weights]
    return setup_cfg(request.config_file, opts + list(request.opts), request.output_dir)


def build_speed_model(cfg: Any, random_init: bool) -> torch.nn.Module:
    """Seeds with ``SEED``, builds the model of ``cfg`` (registering the built-in datasets'
    metadata first) and loads ``MODEL.WEIGHTS`` unless ``random_init``."""
    import zsseg_bench.data  # noqa: F401  (registers the built-in datasets' metadata)
    from zsseg_bench.engine.checkpoint import build_model_with_weights

    model, _ = build_model_with_weights(cfg, "" if random_init else cfg.MODEL.WEIGHTS)
    return model


def speed_protocol(request: SpeedRequest, cfg: Any, device: str) -> SpeedProtocol:
    """The :class:`SpeedProtocol` of the request (device-dependent defaults filled in)."""
    size = request.input_size if request.input_size is not None else cfg.INPUT.CROP.SIZE
    protocol = SpeedProtocol(
        input_size=tuple(int(s) for s in size), device=device, precision=request.precision,
        **request.iterations(device), num_images=request.num_images,
        channels_last=request.channels_last, compile=request.compile,
        cuda_graphs=request.cuda_graphs, sdpa=request.sdpa, breakdown=request.breakdown,
        flops=request.flops, seed=int(cfg.SEED))
    protocol.validate()
    return protocol


def measure_speed(request: SpeedRequest) -> tuple[dict[str, Any], Path]:
    """Runs one speed measurement into its run directory.

    Returns:
        The ``speed.json`` record and the path it was written to.
    """
    from zsseg_bench.modeling.build import resolve_device
    from zsseg_bench.utils.env import collect_env
    from zsseg_bench.utils.file_io import atomic_write_json
    from zsseg_bench.utils.logger import setup_logger
    from zsseg_bench.utils.run_dir import SPEED_FILE, lock_run_dir, setup_run_dir

    request.validate()
    if request.threads is not None:
        torch.set_num_threads(request.threads)
    cfg = build_speed_cfg(request)
    device = resolve_device(cfg.MODEL.DEVICE)
    protocol = speed_protocol(request, cfg, device)  # bad options fail before the model builds
    with lock_run_dir(cfg.OUTPUT_DIR, "speed") as out:
        setup_logger(out)
        model = build_speed_model(cfg, request.random_init)
        writer = setup_run_dir(out, cfg, device)
        result = benchmark_model(model, protocol,
                                 progress=lambda msg: logger.info("speed: %s", msg))
        result = {
            "method": cfg.MODEL.HEAD.NAME,
            "config_file": str(request.config_file),
            "weights": "random" if request.random_init else (cfg.MODEL.WEIGHTS or "config"),
            **result,
            "env": collect_env(device),
        }
        atomic_write_json(out / SPEED_FILE, result)
        writer.write({"event": "speed", "fps": result["fps"], "latency_ms": result["latency_ms"],
                      "gflops": result["gflops"]})
    return result, out / SPEED_FILE
