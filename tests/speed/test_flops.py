"""FLOP counting: attention ops fvcore misses are counted, the rest is listed as uncounted."""

import torch
import torch.nn.functional as F
from open_clip.model import CLIPVisionCfg, _build_vision_tower
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from zsseg_bench.speed.flops import count_flops, flop_count_analysis


class SDPA(nn.Module):
    def forward(self, q, k, v):  # noqa: ANN001, ANN201
        return F.scaled_dot_product_attention(q, k, v)


class Segmentor(nn.Module):
    """A model with the speed harness's call signature: linear + SDPA + upsampling."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 8)

    def forward(self, batched_inputs):  # noqa: ANN001, ANN201
        x = batched_inputs[0]["image"].float()[None]  # 1 x 3 x H x W
        tokens = self.proj(x.flatten(2).transpose(1, 2))  # 1 x HW x 8
        q = tokens.view(1, -1, 2, 4).transpose(1, 2)  # 1 x 2 heads x HW x 4
        out = F.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(1, -1, 8)
        scores = out.transpose(1, 2).reshape(1, 8, *x.shape[-2:])
        return [{"sem_seg": F.interpolate(scores, scale_factor=2.0, mode="bilinear")[0]}]


def test_sdpa_counts_both_matmuls():
    torch.manual_seed(0)
    b, h, lq, s, e, ev = 2, 3, 5, 7, 4, 6
    q, k, v = torch.randn(b, h, lq, e), torch.randn(b, h, s, e), torch.randn(b, h, s, ev)
    analysis = flop_count_analysis(SDPA(), (q, k, v))
    assert analysis.total() == b * h * lq * s * e + b * h * lq * s * ev
    assert not analysis.unsupported_ops()


def test_fused_multi_head_attention_counts_projections_and_attention():
    torch.manual_seed(0)
    embed, tokens = 16, 5
    mha = nn.MultiheadAttention(embed, 2, batch_first=True).eval()
    x = torch.randn(1, tokens, embed)
    with torch.no_grad():  # inference takes the fused aten::_native_multi_head_attention path
        analysis = flop_count_analysis(mha, (x, x, x))
        total = analysis.total()
    expected = 4 * tokens * embed * embed + 2 * tokens * tokens * embed
    assert total == expected
    # torch's own counter (2 flops per multiply-add) agrees on the unfused path (with grad)
    with FlopCounterMode(display=False) as counter:
        mha(x, x, x)
    assert counter.get_total_flops() == 2 * expected


def test_open_clip_vit_attention_is_counted():
    torch.manual_seed(0)
    width, layers, grid = 32, 2, 4
    vit = _build_vision_tower(16, CLIPVisionCfg(layers=layers, width=width, head_width=16,
                                                patch_size=8, image_size=8 * grid)).eval()
    with torch.no_grad():
        analysis = flop_count_analysis(vit, (torch.randn(1, 3, 8 * grid, 8 * grid),))
        analysis.total()
    ops = analysis.by_operator()
    assert "aten::_native_multi_head_attention" not in analysis.unsupported_ops()
    n = grid * grid + 1
    per_layer = 4 * n * width * width + 2 * n * n * width
    assert ops["_native_multi_head_attention"] == layers * per_layer


def test_count_flops_on_a_segmentor_lists_uncounted_ops():
    model = Segmentor().eval()
    image = torch.randint(0, 256, (3, 4, 6), dtype=torch.uint8)
    result = count_flops(model, [{"image": image, "height": 4, "width": 6}])
    hw = 4 * 6
    linear = hw * 3 * 8
    sdpa = 2 * 2 * hw * hw * 4
    upsample = 8 * 8 * 12 * 4  # fvcore: 4 flops per bilinear output element
    assert result.error is None
    assert result.total == linear + sdpa + upsample
    assert result.by_operator["scaled_dot_product_attention"] == sdpa
    assert result.by_module == {"proj": linear}
    assert result.uncounted_ops == {}  # everything else here is ignored by fvcore convention
    assert result.gflops == result.total / 1e9


def test_count_flops_reports_untraceable_models_instead_of_raising():
    class Bad(nn.Module):
        def forward(self, batched_inputs):  # noqa: ANN001, ANN201
            if torch.jit.is_tracing():
                raise RuntimeError("this model cannot be traced")
            return [{"sem_seg": batched_inputs[0]["image"]}]

    result = count_flops(Bad(), [{"image": torch.zeros(3, 2, 2), "height": 2, "width": 2}])
    assert result.total is None and result.gflops is None
    assert result.error == "RuntimeError: this model cannot be traced"
