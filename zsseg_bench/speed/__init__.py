"""The speed harness: one protocol (FPS, latency, FLOPs, parameters, memory, stage times) for
every method (``zsseg-bench speed``)."""

from zsseg_bench.speed import floor  # noqa: F401  (registers CLIPEncoderFloorHead)
from zsseg_bench.speed.flops import FlopsResult, count_flops
from zsseg_bench.speed.harness import SpeedProtocol, benchmark_model, make_inputs

__all__ = ["FlopsResult", "SpeedProtocol", "benchmark_model", "count_flops", "make_inputs"]
