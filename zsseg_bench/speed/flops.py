"""FLOPs with fvcore, plus handles for the attention ops fvcore misses.

Convention (fvcore's, also mmcv's ``get_flops`` used by ZegCLIP): one fused multiply-add is one
flop; element-wise ops (add, mul, activations, softmax) are not counted. fvcore's default
handles cover convolutions, linear layers, matmul/bmm/einsum, norms and bilinear upsampling;
this module adds:

- ``aten::scaled_dot_product_attention`` (and the backend-specific ``_scaled_dot_product_*``
  ops): the two matmuls ``q @ k^T`` and ``attn @ v``, i.e. ``B·H·L·S·(E + Ev)``;
- ``aten::_native_multi_head_attention``: the fused path ``nn.MultiheadAttention`` takes in
  inference (used by open_clip's ViT): the q/k/v and output projections plus both matmuls;
- ``aten::baddbmm`` (the matmul part) and ``aten::upsample_bicubic2d`` (16 taps per output).

Any other op fvcore has no handle for is listed with its number of occurrences
(:attr:`FlopsResult.uncounted_ops`); most are element-wise and uncounted by convention.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

with warnings.catch_warnings():  # fvcore.nn scripts a loss with the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import elementwise_flop_counter, get_shape

_SDPA_OPS = (
    "aten::scaled_dot_product_attention",
    "aten::_scaled_dot_product_attention_math",
    "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention",
)


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """``q @ k^T`` and ``attn @ v`` of scaled dot-product attention, as multiply-adds.

    ``q``: ``... x L x E``, ``k``: ``... x S x E``, ``v``: ``... x S x Ev`` (the batch dims of
    ``q`` count, so grouped-query attention with fewer k/v heads is handled).
    """
    q, k, v = (get_shape(x) for x in inputs[:3])
    if q is None or k is None or v is None:
        return 0
    batch = math.prod(q[:-2])
    length, dim = q[-2], q[-1]
    return batch * length * k[-2] * dim + batch * length * k[-2] * v[-1]


def native_mha_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::_native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight,
    qkv_bias, proj_weight, proj_bias, ...)``: q/k/v projections, attention, output projection.
    """
    query, key, value = (get_shape(x) for x in inputs[:3])
    qkv_weight, proj_weight = get_shape(inputs[5]), get_shape(inputs[7])
    if None in (query, key, value, qkv_weight, proj_weight):
        return 0
    embed = qkv_weight[-1]  # qkv_weight: 3E x E_in
    batch = math.prod(query[:-2]) if len(query) > 2 else 1
    lq, lk = query[-2], key[-2]
    projections = batch * (lq * query[-1] + lk * key[-1] + lk * value[-1]) * embed
    attention = 2 * batch * lq * lk * embed
    output = batch * lq * proj_weight[0] * proj_weight[1]
    return projections + attention + output


def baddbmm_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """``baddbmm(input, batch1, batch2)``: the ``B x N x M @ B x M x P`` product."""
    a, b = get_shape(inputs[1]), get_shape(inputs[2])
    if a is None or b is None:
        return 0
    return a[0] * a[1] * a[2] * b[2]


EXTRA_HANDLES: dict[str, Callable[[list[Any], list[Any]], Any]] = {
    **{op: sdpa_flop_jit for op in _SDPA_OPS},
    "aten::_native_multi_head_attention": native_mha_flop_jit,
    "aten::baddbmm": baddbmm_flop_jit,
    "aten::upsample_bicubic2d": elementwise_flop_counter(0, 16),
    "aten::_upsample_bilinear2d_aa": elementwise_flop_counter(0, 4),
}
"""Handles added to fvcore's defaults (op name -> jit handle)."""


@dataclass
class FlopsResult:
    """The outcome of :func:`count_flops`.

    Attributes:
        total: flops (multiply-adds) of one call, or None when counting failed.
        by_operator: flops per op type (fvcore's short names, e.g. ``linear``).
        by_module: flops per direct child module of the counted model.
        uncounted_ops: ops that ran but have no handle -> number of occurrences.
        error: why counting failed (None when it worked).
    """

    total: int | None
    by_operator: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, int] = field(default_factory=dict)
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def gflops(self) -> float | None:
        """Total in GFLOPs (1e9 multiply-adds), or None."""
        return None if self.total is None else self.total / 1e9


def flop_count_analysis(model: nn.Module, inputs: tuple) -> FlopCountAnalysis:
    """fvcore's ``FlopCountAnalysis`` with :data:`EXTRA_HANDLES`, quiet about unsupported ops."""
    analysis = FlopCountAnalysis(model, inputs).set_op_handle(**EXTRA_HANDLES)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


class _TensorInOut(nn.Module):
    """Adapts ``model(batched_inputs)`` to a tensor-in/tensor-out function for jit tracing."""

    def __init__(self, model: nn.Module, template: list[dict[str, Any]]):
        super().__init__()
        self.model = model
        self.template = template

    def forward(self, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs = [{**item, "image": img} for item, img in zip(self.template, images)]
        return tuple(out["sem_seg"] for out in self.model(inputs))


def count_flops(model: nn.Module, batched_inputs: list[dict[str, Any]]) -> FlopsResult:
    """Counts the flops of ``model(batched_inputs)`` (one call) by tracing it with fvcore.

    Args:
        model: a segmentor taking ``batched_inputs`` (list of dicts with an ``image`` tensor)
            and returning ``[{"sem_seg": Tensor}]``; counted as it is (eval mode, no grad).
        batched_inputs: one call's inputs.

    Returns:
        A :class:`FlopsResult`; tracing errors are caught and returned in ``error`` (a FLOP
        count is informative, the speed run must not fail because of it).
    """
    wrapper = _TensorInOut(model, batched_inputs)
    images = tuple(item["image"] for item in batched_inputs)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = flop_count_analysis(wrapper, images)
            total = int(analysis.total())
            by_operator = {k: int(v) for k, v in analysis.by_operator().items()}
            by_module = {name.removeprefix("model."): int(v)
                         for name, v in analysis.by_module().items()
                         if name.count(".") == 1 and name.startswith("model.")}
            uncounted = {k: int(v) for k, v in sorted(analysis.unsupported_ops().items())}
    except Exception as e:  # noqa: BLE001  (jit tracing fails in many model-specific ways)
        return FlopsResult(total=None, error=f"{type(e).__name__}: {e}".splitlines()[0])
    return FlopsResult(total=total, by_operator=by_operator, by_module=by_module,
                       uncounted_ops=uncounted)
