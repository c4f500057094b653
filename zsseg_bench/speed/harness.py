"""One speed protocol for every method: :class:`SpeedProtocol` and :func:`benchmark_model`.

:func:`benchmark_model` measures a built segmentor (``model(batched_inputs)`` in eval mode) and
returns the content of ``speed.json``: latency statistics and FPS with their spread over
repeats, FLOPs (fvcore, with attention handles) and the ops left uncounted, parameters,
peak memory, the time per named stage (:mod:`zsseg_bench.modeling.stage_timer`) and every
protocol field needed to reproduce a speed figure. The model describes its own inference
(``inference_protocol()``: mode, slide windows, dataset, vocabulary size); the harness reads
nothing else of it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from zsseg_bench.modeling.stage_timer import StageTimer
from zsseg_bench.speed.flops import FlopsResult, count_flops
from zsseg_bench.speed.knobs import (
    COMPILE_MODES,
    PRECISIONS,
    SDPA_BACKENDS,
    CudaGraphRunner,
    apply_channels_last,
    compile_model,
    entered,
    precision_context,
    sdpa_context,
)
from zsseg_bench.speed.resources import count_parameters, peak_memory_mb, reset_peak_memory
from zsseg_bench.speed.timing import LatencyStats, synchronize, time_calls
from zsseg_bench.utils.env import device_name
from zsseg_bench.utils.errors import OptionError

logger = logging.getLogger(__name__)

BATCH_SIZE = 1
TIMED_REGION = (
    "model(batched_inputs) at batch 1: pixel normalisation, padding, the method's head with "
    "cached text embeddings, upsampling of the scores to the input size (post-processing); "
    "excluded: data loading, decoding, resizing and host-to-device copy (random uint8 images "
    "already on the device); the device is synchronised before and after each timed call"
)
#: Keys of the record :func:`benchmark_model` returns (``speed.json`` adds method, config_file,
#: weights and env).
RESULT_FIELDS = (
    "fps", "fps_spread", "latency_ms", "repeats", "cpu_time_ms", "gflops", "flops_by_operator",
    "flops_by_module", "flops_uncounted_ops", "flops_error", "flops_convention", "params",
    "peak_memory_mb", "memory_kind", "breakdown_ms", "breakdown_total_ms", "protocol",
)
#: Keys of ``protocol``: everything needed to reproduce a speed figure.
PROTOCOL_FIELDS = (
    "device", "device_name", "precision", "input_size", "mode", "slide", "batch_size", "dataset",
    "vocabulary_size", "text_embeddings_cached", "timed_region", "warmup", "iters", "repeats",
    "num_images", "channels_last", "compile", "cuda_graphs", "sdpa", "seed", "breakdown_pass",
    "threads", "tf32_matmul",
)
FLOPS_CONVENTION = ("fvcore: one multiply-add = one flop; element-wise ops not counted; "
                    "attention (SDPA, fused multi-head attention) counted by handles")
# Defaults when --warmup / --iters / --repeats are not given. GPU: warm-up as mmseg's
# tools/analysis_tools/benchmark.py (open-mmlab/mmsegmentation) but 3 x 100 timed calls;
# CPU: few calls, a ViT-B/16 at 512 px takes seconds.
DEFAULT_ITERATIONS = {
    "cuda": {"warmup": 10, "iters": 100, "repeats": 3},
    "cpu": {"warmup": 2, "iters": 5, "repeats": 3},
}


@dataclass
class SpeedProtocol:
    """How a speed run measures (recorded in ``speed.json`` under ``protocol``).

    Attributes:
        input_size: (height, width) of the random test images.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``fp16`` or ``bf16`` (autocast).
        warmup: untimed calls before timing.
        iters: timed calls per repeat.
        repeats: groups of timed calls; FPS spread is over them.
        num_images: distinct random images the calls rotate among.
        channels_last: channels-last memory format for the model's 4-d weights.
        compile: a ``torch.compile`` mode, or None for eager.
        cuda_graphs: capture the call in a CUDA graph and replay it.
        sdpa: the scaled-dot-product-attention backend (``auto`` lets PyTorch choose).
        breakdown: measure time per named stage.
        flops: count FLOPs.
        seed: seed of the random images.
    """

    input_size: tuple[int, int] = (512, 512)
    device: str = "cpu"
    precision: str = "fp32"
    warmup: int = 2
    iters: int = 5
    repeats: int = 3
    num_images: int = 4
    channels_last: bool = False
    compile: str | None = None
    cuda_graphs: bool = False
    sdpa: str = "auto"
    breakdown: bool = True
    flops: bool = True
    seed: int = 0

    def validate(self) -> None:
        """Raises :class:`~zsseg_bench.utils.errors.OptionError` naming the bad field and the
        valid values."""
        size = tuple(self.input_size)
        if len(size) != 2 or any(not isinstance(s, int) or s <= 0 for s in size):
            raise OptionError(f"<<input_size>> takes two positive integers H W, got {size}")
        for name, low in (("warmup", 0), ("iters", 1), ("repeats", 1), ("num_images", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise OptionError(f"<<{name}>> must be an integer >= {low}, got {value!r}")
        if self.precision not in PRECISIONS:
            raise OptionError(f"<<precision>> {self.precision!r} is not one of "
                              f"{', '.join(PRECISIONS)}")
        if self.sdpa not in SDPA_BACKENDS:
            raise OptionError(f"<<sdpa>> {self.sdpa!r} is not one of {', '.join(SDPA_BACKENDS)}")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise OptionError(f"<<compile>> {self.compile!r} is not one of "
                              f"{', '.join(COMPILE_MODES)}")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            device = None
        if device is None or device.type not in ("cpu", "cuda"):
            raise OptionError(f"<<device>> {self.device!r}: use cpu or cuda")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise OptionError(f"<<device>> {self.device}: CUDA is not available on this "
                              "machine; use <<device>> cpu")
        if self.cuda_graphs and device.type != "cuda":
            raise OptionError("<<cuda_graphs>> needs <<device>> cuda")
        if self.cuda_graphs and self.compile is not None:
            raise OptionError("<<cuda_graphs>> and <<compile>> cannot be combined (use "
                              "<<compile>> reduce-overhead for compiled CUDA graphs)")


def make_inputs(protocol: SpeedProtocol) -> list[list[dict[str, Any]]]:
    """``num_images`` batches of one random uint8 RGB image each, already on the device."""
    g = torch.Generator().manual_seed(protocol.seed)
    height, width = protocol.input_size
    return [[{"image": torch.randint(0, 256, (3, height, width), generator=g,
                                     dtype=torch.uint8).to(protocol.device),
              "height": height, "width": width}] for _ in range(protocol.num_images)]


#: What a model that does not describe itself (no ``inference_protocol()``) records.
UNDESCRIBED_INFERENCE = {"mode": None, "slide": None, "dataset": None, "vocabulary_size": None,
                         "text_embeddings_cached": False}


def describe_inference(model: nn.Module) -> dict[str, Any]:
    """The model's own description of how it infers (``model.inference_protocol()``: mode,
    slide windows, test dataset, vocabulary size); computing it caches the text embeddings."""
    describe = getattr(model, "inference_protocol", None)
    if describe is None:
        return dict(UNDESCRIBED_INFERENCE)
    with torch.no_grad():
        return {**UNDESCRIBED_INFERENCE, **describe()}


Call = Callable[[list[dict[str, Any]]], Any]


def _build_calls(model: nn.Module, protocol: SpeedProtocol, example: list[dict[str, Any]]
                 ) -> tuple[Call, Call, bool | str]:
    """The eager call and the timed call (eager, compiled or CUDA-graphed), and what became of
    the CUDA-graph request (False, True, or why capture failed)."""
    device = torch.device(protocol.device)

    def context() -> contextlib.AbstractContextManager[None]:
        """Fresh no-grad + precision + SDPA-backend contexts around one call."""
        return entered(torch.no_grad, lambda: precision_context(protocol.precision, device),
                       lambda: sdpa_context(protocol.sdpa))

    def eager(x: list[dict[str, Any]]) -> Any:
        with context():
            return model(x)

    if protocol.compile is not None:
        compiled = compile_model(model, protocol.compile)

        def compiled_call(x: list[dict[str, Any]]) -> Any:
            with context():
                return compiled(x)
        return eager, compiled_call, False
    if not protocol.cuda_graphs:
        return eager, eager, False
    try:
        return eager, CudaGraphRunner(model, example, context), True
    except Exception as e:  # noqa: BLE001  (capture fails in many model-specific ways)
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        logger.warning("CUDA graph capture failed (%s); timing the eager model", e)
        torch.cuda.synchronize(device)
        return eager, eager, f"failed, ran eagerly: {reason}"


def _stage_ms(timer: StageTimer, calls: int, total_s: float) -> dict[str, float]:
    """Milliseconds per call for each stage, plus ``other`` (time outside top-level stages)."""
    if not timer.totals_s:
        return {}
    out = {name: t / calls * 1e3 for name, t in timer.totals_s.items()}
    out["other"] = max(total_s - timer.top_level_s(), 0.0) / calls * 1e3
    return out


@dataclass
class Breakdown:
    """Time per named stage: ms per call, the mean call time it divides, how it was measured."""

    stages_ms: dict[str, float]
    total_ms: float | None
    measured_in: str


NO_BREAKDOWN = Breakdown({}, None, "none")


def inline_breakdown_possible(protocol: SpeedProtocol, graphed_or_compiled: bool) -> bool:
    """Whether stages are timed within the timed calls: on CPU, where synchronising is a
    no-op, and only for eager calls (stages are invisible in compiled or graphed ones)."""
    return (protocol.breakdown and torch.device(protocol.device).type == "cpu"
            and not graphed_or_compiled)


def separate_breakdown(eager: Call, inputs: list[list[dict[str, Any]]], calls: int,
                       device: torch.device) -> Breakdown:
    """Stage times from a separate eager pass of ``calls`` calls, the device synchronised at
    stage boundaries (CUDA, where that would slow the timed calls; compiled/graphed calls)."""
    timer = StageTimer(device)
    with timer:
        start = time.perf_counter()
        for i in range(calls):
            eager(inputs[i % len(inputs)])
        synchronize(device)
        total_s = time.perf_counter() - start
    return Breakdown(_stage_ms(timer, calls, total_s), total_s / calls * 1e3,
                     f"a separate eager pass of {calls} calls with the device synchronised at "
                     "stage boundaries")


def warm_up(call: Call, inputs: list[list[dict[str, Any]]], protocol: SpeedProtocol) -> None:
    """The untimed calls, rotating among the inputs, then a device synchronisation."""
    for i in range(protocol.warmup):
        call(inputs[i % len(inputs)])
    synchronize(torch.device(protocol.device))


def time_protocol(call: Call, inputs: list[list[dict[str, Any]]], protocol: SpeedProtocol,
                  timer: StageTimer | None) -> LatencyStats:
    """``repeats x iters`` timed calls continuing the rotation of the inputs after the warm-up;
    stages are recorded by ``timer`` when one is given."""
    device = torch.device(protocol.device)
    shift = protocol.warmup % len(inputs)
    rotated = inputs[shift:] + inputs[:shift]
    with timer if timer is not None else contextlib.nullcontext():
        return time_calls(call, rotated, warmup=0, iters=protocol.iters,
                          repeats=protocol.repeats, device=device, batch_size=BATCH_SIZE)


def flops_record(flops: FlopsResult | None) -> dict[str, Any]:
    """The FLOP fields of the record (blank when not counted)."""
    return {
        "gflops": flops.gflops if flops else None,
        "flops_by_operator": flops.by_operator if flops else {},
        "flops_by_module": flops.by_module if flops else {},
        "flops_uncounted_ops": flops.uncounted_ops if flops else {},
        "flops_error": flops.error if flops else "not requested",
        "flops_convention": FLOPS_CONVENTION,
    }


def protocol_record(protocol: SpeedProtocol, inference: dict[str, Any], cuda_graphs: bool | str,
                    breakdown: Breakdown) -> dict[str, Any]:
    """The ``protocol`` field of the record (keys of :data:`PROTOCOL_FIELDS`)."""
    device = torch.device(protocol.device)
    return {
        **{k: v for k, v in asdict(protocol).items() if k not in ("breakdown", "flops")},
        "input_size": list(protocol.input_size),
        "device_name": device_name(str(device)),
        **inference,
        "batch_size": BATCH_SIZE,
        "timed_region": TIMED_REGION,
        "cuda_graphs": cuda_graphs,
        "breakdown_pass": breakdown.measured_in,
        "threads": torch.get_num_threads(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if device.type == "cuda" else None,
    }


def benchmark_model(model: nn.Module, protocol: SpeedProtocol,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measures ``model(batched_inputs)`` under ``protocol``.

    Args:
        model: a segmentor on ``protocol.device`` taking Detectron2-style ``batched_inputs``
            and returning ``[{"sem_seg": Tensor}]``; put in eval mode here. Its inference mode
            (whole/slide), test dataset and vocabulary are what its ``inference_protocol()``
            reports (:func:`describe_inference`).
        protocol: the measurement protocol (validated here).
        progress: called with a one-line message after each phase (e.g. ``print``).

    Returns:
        The ``speed.json`` record without the run's config and environment: the keys of
        :data:`RESULT_FIELDS` (``protocol`` holds those of :data:`PROTOCOL_FIELDS`).
    """
    protocol.validate()
    say = progress or (lambda msg: logger.info(msg))
    device = torch.device(protocol.device)
    model.eval()
    if protocol.channels_last:
        model = apply_channels_last(model)
    inputs = make_inputs(protocol)
    inference = describe_inference(model)
    eager, call, cuda_graphs = _build_calls(model, protocol, inputs[0])

    inline = inline_breakdown_possible(protocol, call is not eager)
    warm_up(call, inputs, protocol)
    say(f"warm-up done ({protocol.warmup} calls)")
    timer = StageTimer(device) if inline else None
    reset_peak_memory(device)
    stats = time_protocol(call, inputs, protocol, timer)
    memory_mb, memory_kind = peak_memory_mb(device)
    latency = stats.latency_ms()
    say(f"timed {protocol.iters * protocol.repeats} calls: {stats.fps:.3g} FPS, "
        f"{latency['mean']:.1f} ms mean")

    breakdown = NO_BREAKDOWN
    if timer is not None:
        breakdown = Breakdown(_stage_ms(timer, len(stats.latencies_s), sum(stats.latencies_s)),
                              latency["mean"],
                              "the timed calls (CPU: stage synchronisation is a no-op)")
    elif protocol.breakdown:
        breakdown = separate_breakdown(eager, inputs, protocol.iters, device)
    if protocol.breakdown:
        say("breakdown: " + (", ".join(f"{k} {v:.1f} ms" for k, v in breakdown.stages_ms.items())
                             or "the model marks no stages"))

    flops = None
    if protocol.flops:
        flops = count_flops(model, inputs[0])  # fp32 eager: flops do not depend on precision
        say(f"FLOPs: {flops.gflops:.1f} G" if flops.total is not None
            else f"FLOPs not counted: {flops.error}")

    return {
        "fps": stats.fps,
        "fps_spread": stats.fps_spread(),
        "latency_ms": latency,
        "repeats": stats.repeat_fps,
        "cpu_time_ms": stats.cpu_time_ms(),
        **flops_record(flops),
        "params": count_parameters(model),
        "peak_memory_mb": memory_mb,
        "memory_kind": memory_kind,
        "breakdown_ms": breakdown.stages_ms,
        "breakdown_total_ms": breakdown.total_ms,
        "protocol": protocol_record(protocol, inference, cuda_graphs, breakdown),
    }
