"""The timing loop: warm-up, synchronised timed calls in repeats, latency statistics.

Protocol: untimed warm-up calls, then ``repeats`` groups of ``iters`` timed calls; the device
is synchronised before and after every timed call and the wall time between the two
synchronisations is the call's latency (as detectron2's ``inference_on_dataset`` in
``detectron2/evaluation/evaluator.py`` and mmseg's ``tools/analysis_tools/benchmark.py`` do).
Inputs rotate among a few pre-generated images, so no call re-uses the previous call's input.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def synchronize(device: torch.device | str) -> None:
    """Waits for all queued work on ``device`` (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class LatencyStats:
    """Latencies of the timed calls and throughput per repeat.

    Attributes:
        latencies_s: every timed call's latency, in order.
        repeat_fps: throughput of each repeat (calls x batch size / repeat's total latency).
        batch_size: images per call.
        cpu_times_s: process CPU time (all threads) of every timed call; on a shared CPU it is
            less disturbed by other processes than the wall time.
    """

    latencies_s: list[float]
    repeat_fps: list[float]
    batch_size: int = 1
    cpu_times_s: list[float] | None = None

    @property
    def fps(self) -> float:
        """Images per second: batch size / mean latency over all timed calls."""
        return self.batch_size / statistics.fmean(self.latencies_s)

    def latency_ms(self) -> dict[str, float]:
        """Mean, median, p90, std (population), min and max latency in milliseconds."""
        ms = np.asarray(self.latencies_s) * 1e3
        return {
            "mean": float(ms.mean()),
            "median": float(np.median(ms)),
            "p90": float(np.percentile(ms, 90)),
            "std": float(ms.std()),
            "min": float(ms.min()),
            "max": float(ms.max()),
        }

    def cpu_time_ms(self) -> float | None:
        """Mean process CPU time per call in milliseconds (None if not recorded)."""
        if not self.cpu_times_s:
            return None
        return statistics.fmean(self.cpu_times_s) * 1e3

    def fps_spread(self) -> dict[str, float]:
        """Mean, std, min and max of the per-repeat throughput."""
        fps = np.asarray(self.repeat_fps)
        return {"mean": float(fps.mean()), "std": float(fps.std()), "min": float(fps.min()),
                "max": float(fps.max())}


def time_calls(fn: Callable[[Any], Any], inputs: Sequence[Any], *, warmup: int, iters: int,
               repeats: int, device: torch.device | str, batch_size: int = 1,
               on_call: Callable[[], None] | None = None) -> LatencyStats:
    """Times ``fn(inputs[i % len(inputs)])`` with warm-up and synchronisation.

    Args:
        fn: the call to time (e.g. ``model`` under ``torch.no_grad``).
        inputs: the inputs to rotate among (at least one).
        warmup: untimed calls first.
        iters: timed calls per repeat.
        repeats: groups of timed calls (the spread of throughput is over them).
        device: the device to synchronise.
        batch_size: images per call (for throughput).
        on_call: called after each timed call, outside the timed region (e.g. a progress log).

    Returns:
        The latencies of the ``iters x repeats`` timed calls.
    """
    if not inputs:
        raise ValueError("time_calls needs at least one input")
    n = len(inputs)
    for i in range(warmup):
        fn(inputs[i % n])
    synchronize(device)
    latencies: list[float] = []
    cpu_times: list[float] = []
    repeat_fps: list[float] = []
    call = warmup
    for _ in range(repeats):
        elapsed = 0.0
        for _ in range(iters):
            x = inputs[call % n]
            call += 1
            synchronize(device)
            cpu_start = time.process_time()
            start = time.perf_counter()
            fn(x)
            synchronize(device)
            latency = time.perf_counter() - start
            cpu_times.append(time.process_time() - cpu_start)
            latencies.append(latency)
            elapsed += latency
            if on_call is not None:
                on_call()
        repeat_fps.append(iters * batch_size / elapsed)
    return LatencyStats(latencies_s=latencies, repeat_fps=repeat_fps, batch_size=batch_size,
                        cpu_times_s=cpu_times)
