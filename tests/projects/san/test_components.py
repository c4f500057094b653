"""SAN's pieces, each against a hand-computed or independently written expectation: the side
ViT's positional table, the channels-first LayerNorm, the fusion, the attention mask of the
recognition blocks, the bias downsampling (its point-sampled matcher and criterion are the
core's: tests/modeling/test_point_criterion.py)."""

import pytest
import torch
import torch.nn.functional as F

from zsseg_bench.modeling.mlp import MLP
from zsseg_bench.projects.san.mask_decoder import MaskDecoder
from zsseg_bench.projects.san.recognition import attention_mask, downsample_bias
from zsseg_bench.projects.san.side_adapter import AddFusion, ChannelLayerNorm, parse_fusion_map
from zsseg_bench.projects.san.side_vit import SideViT

pytestmark = pytest.mark.usefixtures("one_thread")


def _vit(image_size=64) -> SideViT:
    torch.manual_seed(0)
    return SideViT(patch_size=8, width=16, depth=1, num_heads=2, mlp_ratio=4.0,
                   image_size=image_size)


def test_side_positional_table_is_resized_only_when_the_token_count_differs():
    vit = _vit()  # an 8 x 8 table
    assert vit.positional_embedding(8, 8) is vit.pos_embed
    # 4 x 16 has 64 cells too: SAN's test is on the count, the table is used as it is
    assert vit.positional_embedding(4, 16) is vit.pos_embed
    grid = vit.pos_embed.reshape(1, 8, 8, 16).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(5, 7), mode="bicubic", align_corners=False)
    torch.testing.assert_close(vit.positional_embedding(5, 7),
                               expected.flatten(2).transpose(1, 2))


def test_side_vit_keeps_timm_names():
    names = {n for n, _ in _vit().named_parameters()}
    assert {"pos_embed", "patch_embed.proj.weight", "blocks.0.norm1.weight",
            "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias", "blocks.0.mlp.fc1.weight",
            "blocks.0.mlp.fc2.bias", "blocks.0.norm2.bias"} <= names


def test_channel_layer_norm_equals_layer_norm_over_channels():
    torch.manual_seed(0)
    norm = ChannelLayerNorm(6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 6, 3, 4) * 3 + 1
    expected = F.layer_norm(x.permute(0, 2, 3, 1), (6,), norm.weight, norm.bias, eps=1e-6)
    torch.testing.assert_close(norm(x), expected.permute(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


def test_fusion_projects_at_clip_resolution_then_upsamples_and_adds_to_patches():
    torch.manual_seed(0)
    fusion = AddFusion(clip_channels=6, side_channels=4)
    patches = torch.randn(2, 4 * 6, 4)
    clip = torch.randn(2, 6, 2, 3)
    y = F.interpolate(fusion.proj(fusion.norm(clip)), size=(4, 6), mode="bilinear",
                      align_corners=False)
    expected = patches + y.permute(0, 2, 3, 1).reshape(2, 24, 4)
    torch.testing.assert_close(fusion(patches, clip, (4, 6)), expected)


def test_fusion_map_is_clip_to_side():
    assert parse_fusion_map(["0->0", "3->1", "6->2", "9->3"]) == {0: 0, 1: 3, 2: 6, 3: 9}


def test_attention_mask_layout():
    """[SOS x Q, CLS, patches]: SOS tokens see themselves and the patches (with the bias),
    nobody else sees them, CLS and patches see CLS and patches; per image then head."""
    q, heads, h, w = 2, 3, 2, 2
    bias = torch.arange(2 * heads * q * h * w, dtype=torch.float32).reshape(2, heads, q, h, w)
    mask = attention_mask(bias, (h, w), heads, "max", -100.0)
    n = q + 1 + h * w
    assert mask.shape == (2 * heads, n, n)
    for b in range(2):
        for head in range(heads):
            m = mask[b * heads + head]
            torch.testing.assert_close(m[:q, q + 1:], bias[b, head].reshape(q, h * w))
            assert torch.equal(m[:q, :q], torch.tensor([[0.0, -100.0], [-100.0, 0.0]]))
            assert bool((m[:q, q] == -100).all())  # SOS does not see CLS
            assert bool((m[q:, :q] == -100).all())  # nobody sees SOS
            assert bool((m[q:, q:] == 0).all())  # CLS and patches: plain CLIP


def test_one_bias_for_every_head_is_repeated_and_a_wrong_count_is_an_error():
    bias = torch.randn(1, 1, 2, 2, 2)
    mask = attention_mask(bias, (2, 2), 3, "max", -100.0)
    assert torch.equal(mask[0], mask[1]) and torch.equal(mask[1], mask[2])
    with pytest.raises(ValueError, match="heads"):
        attention_mask(torch.randn(1, 2, 2, 2, 2), (2, 2), 3, "max", -100.0)


def test_bias_downsampling_methods():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert downsample_bias(x, (2, 2), "max").flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
    assert downsample_bias(x, (2, 2), "avg").flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    torch.testing.assert_close(downsample_bias(x, (2, 2), "bilinear"),
                               F.interpolate(x, size=(2, 2), mode="bilinear",
                                             align_corners=False))
    # adaptive windows [floor(i*5/3), ceil((i+1)*5/3)) overlap when the sizes do not divide
    # (ViT-L/14's 0.7 ratio): rows / columns 0-1, 1-3, 3-4
    y = downsample_bias(torch.arange(25.0).reshape(1, 1, 5, 5), (3, 3), "max")
    assert y.flatten().tolist() == [6.0, 8.0, 9.0, 16.0, 18.0, 19.0, 21.0, 23.0, 24.0]


def test_mlp_and_decoder_shapes():
    mlp = MLP(in_dim=4, hidden_dim=8, out_dim=3, num_layers=3, dense=True)
    assert [type(m).__name__ for m in mlp.layers] == ["Conv2d"] * 3
    assert mlp(torch.randn(2, 4, 5, 5)).shape == (2, 3, 5, 5)
    with pytest.raises(ValueError):
        MLP(in_dim=4, hidden_dim=8, out_dim=3, num_layers=0)
    decoder = MaskDecoder(in_channels=4, num_heads=3, num_layers=2, embed_channels=6,
                          mlp_channels=8, rescale_attn_bias=True)
    masks, biases = decoder(torch.randn(2, 5, 4), torch.randn(2, 4, 3, 7))
    assert masks.shape == (2, 5, 3, 7) and len(biases) == 2
    assert all(b.shape == (2, 3, 5, 3, 7) for b in biases)
