"""Speed knobs, applied the same way to every method.

- precision: ``fp32`` (no autocast), ``fp16`` / ``bf16`` (``torch.autocast`` around the call;
  weights stay fp32, matmuls and convolutions run in the low precision);
- channels-last memory format of the model's 4-d weights;
- ``torch.compile`` of the whole segmentor (optional; graph breaks fall back to eager);
- the scaled-dot-product-attention backend (``torch.nn.attention.sdpa_kernel``);
- CUDA graphs: the whole call captured once and replayed, where the model allows capture
  (no host synchronisation, static shapes); otherwise the run falls back to eager and records
  why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from zsseg_bench.utils.errors import OptionError

logger = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
SDPA_BACKENDS = ("auto", "math", "flash", "efficient", "cudnn")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def precision_context(precision: str, device: torch.device | str
                      ) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` for fp16/bf16 on ``device``; a no-op for fp32."""
    if precision not in PRECISIONS:
        raise OptionError(f"<<precision>> {precision!r} is not one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def sdpa_context(backend: str) -> contextlib.AbstractContextManager[Any]:
    """Restricts ``F.scaled_dot_product_attention`` to one backend (``auto``: PyTorch chooses)."""
    if backend not in SDPA_BACKENDS:
        raise OptionError(f"<<sdpa>> {backend!r} is not one of {', '.join(SDPA_BACKENDS)}")
    if backend == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    chosen = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
              "efficient": SDPBackend.EFFICIENT_ATTENTION,
              "cudnn": SDPBackend.CUDNN_ATTENTION}[backend]
    return sdpa_kernel([chosen])


def apply_channels_last(model: nn.Module) -> nn.Module:
    """Moves the model's 4-d parameters and buffers to the channels-last memory format."""
    return model.to(memory_format=torch.channels_last)


def compile_model(model: nn.Module, mode: str) -> Callable[..., Any]:
    """``torch.compile(model, mode=mode)``; compilation happens at the first (warm-up) call."""
    if mode not in COMPILE_MODES:
        raise OptionError(f"<<compile>> {mode!r} is not one of {', '.join(COMPILE_MODES)}")
    return torch.compile(model, mode=mode)


class CudaGraphRunner:
    """Replays one captured CUDA graph of ``fn(static_inputs)``; new images are copied into the
    static input tensors first (that copy is part of the timed call).

    Args:
        fn: the call to capture, ``fn(batched_inputs) -> outputs``.
        example: inputs to capture with (their ``image`` tensors become the static inputs).
        context: contexts to enter around warm-up and capture (precision, SDPA backend).
        warmup: eager calls on a side stream before capture (as PyTorch recommends).
    """

    def __init__(self, fn: Callable[[Any], Any], example: list[dict[str, Any]],
                 context: Callable[[], contextlib.AbstractContextManager[Any]],
                 warmup: int = 3):
        self.static_inputs = [{**item, "image": item["image"].clone()} for item in example]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), context():
            for _ in range(warmup):
                fn(self.static_inputs)
            # A call that waits for the GPU (.item(), nonzero, data-dependent shapes) cannot be
            # captured; find out before capturing, which would leave the device in a bad state.
            previous = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("error")
            try:
                fn(self.static_inputs)
            except RuntimeError as e:
                first_line = (str(e).splitlines() or [""])[0]
                raise RuntimeError("the model synchronises with the host during the call "
                                   f"({first_line})") from e
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), context():
            self.static_outputs = fn(self.static_inputs)

    def __call__(self, batched_inputs: list[dict[str, Any]]) -> Any:
        for static, item in zip(self.static_inputs, batched_inputs):
            static["image"].copy_(item["image"], non_blocking=True)
        self.graph.replay()
        return self.static_outputs


@contextlib.contextmanager
def entered(*contexts: Callable[[], contextlib.AbstractContextManager[Any]]) -> Iterator[None]:
    """Enters fresh instances of several context factories."""
    with contextlib.ExitStack() as stack:
        for make in contexts:
            stack.enter_context(make())
        yield
