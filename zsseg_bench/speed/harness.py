"""One speed protocol for every method: :class:`SpeedProtocol` and :func:`benchmark_model`.

:func:`benchmark_model` measures a built segmentor (``model(batched_inputs)`` in eval mode) and
returns the content of ``speed.json``: latency statistics and FPS with their spread over
repeats, FLOPs (fvcore, with attention handles) and the ops left uncounted, parameters,
peak memory, the time per named stage (:mod:`zsseg_bench.modeling.stage_timer`) and every
protocol field REFERENCES.md asks to record with a speed figure.
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
from zsseg_bench.speed.flops import count_flops
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
from zsseg_bench.speed.timing import synchronize, time_calls
from zsseg_bench.utils.env import device_name
from zsseg_bench.utils.errors import UserError

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
#: Keys of ``protocol``: everything REFERENCES.md asks to record with a speed figure.
PROTOCOL_FIELDS = (
    "device", "device_name", "precision", "input_size", "mode", "slide", "batch_size", "dataset",
    "vocabulary_size", "text_embeddings_cached", "timed_region", "warmup", "iters", "repeats",
    "num_images", "channels_last", "compile", "cuda_graphs", "sdpa", "seed", "breakdown_pass",
    "threads", "tf32_matmul",
)
# Defaults when --warmup / --iters / --repeats are not given. GPU: as mmseg's benchmark.py
# (REFERENCES.md) but 3 x 100 timed calls; CPU: few calls, a ViT-B/16 at 512 px takes seconds.
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
        """Raises :class:`UserError` naming the bad option and the valid values."""
        size = tuple(self.input_size)
        if len(size) != 2 or any(not isinstance(s, int) or s <= 0 for s in size):
            raise UserError(f"--input-size takes two positive integers H W, got {size}")
        for name, low in (("warmup", 0), ("iters", 1), ("repeats", 1), ("num_images", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise UserError(f"--{name.replace('_', '-')} must be an integer >= {low}, "
                                f"got {value!r}")
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision!r} is not one of "
                            f"{', '.join(PRECISIONS)}")
        if self.sdpa not in SDPA_BACKENDS:
            raise UserError(f"--sdpa {self.sdpa!r} is not one of {', '.join(SDPA_BACKENDS)}")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise UserError(f"--compile {self.compile!r} is not one of {', '.join(COMPILE_MODES)}")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            device = None
        if device is None or device.type not in ("cpu", "cuda"):
            raise UserError(f"--device {self.device!r}: use cpu or cuda")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"--device {self.device}: CUDA is not available on this machine; "
                            "use --device cpu")
        if self.cuda_graphs and device.type != "cuda":
            raise UserError("--cuda-graphs needs --device cuda")
        if self.cuda_graphs and self.compile is not None:
            raise UserError("--cuda-graphs and --compile cannot be combined (use "
                            "--compile reduce-overhead for compiled CUDA graphs)")


def make_inputs(protocol: SpeedProtocol) -> list[list[dict[str, Any]]]:
    """``num_images`` batches of one random uint8 RGB image each, already on the device."""
    g = torch.Generator().manual_seed(protocol.seed)
    height, width = protocol.input_size
    return [[{"image": torch.randint(0, 256, (3, height, width), generator=g,
                                     dtype=torch.uint8).to(protocol.device),
              "height": height, "width": width}] for _ in range(protocol.num_images)]


def _cache_vocabulary(model: nn.Module) -> int | None:
    """Computes and caches the test vocabulary's text embeddings; returns its size."""
    vocabulary = getattr(model, "vocabulary", None)
    if vocabulary is None or getattr(model, "test_dataset", None) is None:
        return None
    with torch.no_grad():
        return len(vocabulary(model.test_dataset, trainable_only=False))


def _breakdown(timer: StageTimer, calls: int, total_s: float) -> dict[str, float]:
    """Milliseconds per call for each stage, plus ``other`` (time outside top-level stages)."""
    if not timer.totals_s:
        return {}
    out = {name: t / calls * 1e3 for name, t in timer.totals_s.items()}
    out["other"] = max(total_s - timer.top_level_s(), 0.0) / calls * 1e3
    return out


def benchmark_model(model: nn.Module, protocol: SpeedProtocol,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measures ``model(batched_inputs)`` under ``protocol``.

    Args:
        model: a segmentor on ``protocol.device`` taking Detectron2-style ``batched_inputs``
            and returning ``[{"sem_seg": Tensor}]``; put in eval mode here. Its inference mode
            (whole/slide) and test dataset are whatever it was built with.
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
    vocabulary_size = _cache_vocabulary(model)

    def context() -> contextlib.AbstractContextManager[None]:
        """Fresh no-grad + precision + SDPA-backend contexts around one call."""
        return entered(torch.no_grad, lambda: precision_context(protocol.precision, device),
                       lambda: sdpa_context(protocol.sdpa))

    def eager(x: list[dict[str, Any]]) -> Any:
        with context():
            return model(x)

    call: Callable[[Any], Any] = eager
    if protocol.compile is not None:
        compiled = compile_model(model, protocol.compile)

        def compiled_call(x: list[dict[str, Any]]) -> Any:
            with context():
                return compiled(x)
        call = compiled_call
    cuda_graphs: bool | str = False
    if protocol.cuda_graphs:
        try:
            call = CudaGraphRunner(model, inputs[0], context)
            cuda_graphs = True
        except Exception as e:  # noqa: BLE001  (capture fails in many model-specific ways)
            reason = f"{type(e).__name__}: {e}".splitlines()[0]
            cuda_graphs = f"failed, ran eagerly: {reason}"
            logger.warning("CUDA graph capture failed (%s); timing the eager model", e)
            torch.cuda.synchronize(device)

    for i in range(protocol.warmup):
        call(inputs[i % len(inputs)])
    synchronize(device)
    say(f"warm-up done ({protocol.warmup} calls)")

    # On CPU synchronising is a no-op, so the stages are timed within the timed calls; on CUDA
    # (where per-stage synchronisation would slow the call) and for compiled or graphed calls
    # (where stages are invisible) in a separate eager pass.
    compiled_or_graphed = call is not eager
    breakdown_inline = protocol.breakdown and device.type == "cpu" and not compiled_or_graphed
    timer = StageTimer(device)
    reset_peak_memory(device)
    rotated = inputs[protocol.warmup % len(inputs):] + inputs[:protocol.warmup % len(inputs)]
    with timer if breakdown_inline else contextlib.nullcontext():
        stats = time_calls(call, rotated, warmup=0, iters=protocol.iters,
                           repeats=protocol.repeats, device=device, batch_size=BATCH_SIZE)
    memory_mb, memory_kind = peak_memory_mb(device)
    latency = stats.latency_ms()
    say(f"timed {protocol.iters * protocol.repeats} calls: {stats.fps:.3g} FPS, "
        f"{latency['mean']:.1f} ms mean")

    breakdown: dict[str, float] = {}
    breakdown_total_ms: float | None = None
    breakdown_pass = "none"
    if breakdown_inline:
        calls = protocol.iters * protocol.repeats
        breakdown = _breakdown(timer, calls, sum(stats.latencies_s))
        breakdown_total_ms = latency["mean"]
        breakdown_pass = "the timed calls (CPU: stage synchronisation is a no-op)"
    elif protocol.breakdown:
        calls = protocol.iters
        timer = StageTimer(device)
        with timer:
            start = time.perf_counter()
            for i in range(calls):
                eager(inputs[i % len(inputs)])
            synchronize(device)
            total_s = time.perf_counter() - start
        breakdown = _breakdown(timer, calls, total_s)
        breakdown_total_ms = total_s / calls * 1e3
        breakdown_pass = (f"a separate eager pass of {calls} calls with the device synchronised "
                          "at stage boundaries")
    if protocol.breakdown:
        say("breakdown: " + (", ".join(f"{k} {v:.1f} ms" for k, v in breakdown.items())
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
        "gflops": flops.gflops if flops else None,
        "flops_by_operator": flops.by_operator if flops else {},
        "flops_by_module": flops.by_module if flops else {},
        "flops_uncounted_ops": flops.uncounted_ops if flops else {},
        "flops_error": flops.error if flops else "not requested",
        "flops_convention": "fvcore: one multiply-add = one flop; element-wise ops not counted; "
                            "attention (SDPA, fused multi-head attention) counted by handles",
        "params": count_parameters(model),
        "peak_memory_mb": memory_mb,
        "memory_kind": memory_kind,
        "breakdown_ms": breakdown,
        "breakdown_total_ms": breakdown_total_ms,
        "protocol": {
            **{k: v for k, v in asdict(protocol).items() if k not in ("breakdown", "flops")},
            "input_size": list(protocol.input_size),
            "device_name": device_name(str(device)),
            "mode": getattr(model, "test_mode", None),
            "slide": ({"crop": list(model.slide_crop), "stride": list(model.slide_stride)}
                      if getattr(model, "test_mode", None) == "slide" else None),
            "batch_size": BATCH_SIZE,
            "dataset": getattr(model, "test_dataset", None),
            "vocabulary_size": vocabulary_size,
            "text_embeddings_cached": vocabulary_size is not None,
            "timed_region": TIMED_REGION,
            "cuda_graphs": cuda_graphs,
            "breakdown_pass": breakdown_pass,
            "threads": torch.get_num_threads(),
            "tf32_matmul": (torch.backends.cuda.matmul.allow_tf32
                            if device.type == "cuda" else None),
        },
    }
