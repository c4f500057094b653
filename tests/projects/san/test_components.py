"""SAN's pieces, each against a hand-computed or independently written expectation: the side
ViT's positional table, the channels-first LayerNorm, the fusion, the attention mask of the
recognition blocks, the bias downsampling, point sampling, the matcher and the criterion."""

import pytest
import torch
import torch.nn.functional as F

from zsseg_bench.modeling.mlp import MLP
from zsseg_bench.projects.san.criterion import PointMatcher, SetCriterion
from zsseg_bench.projects.san.mask_decoder import MaskDecoder
from zsseg_bench.projects.san.point_sampling import point_sample, uncertain_points
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


def test_point_sample_reads_pixel_centres():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    coords = torch.tensor([[[0.5 / 4, 0.5 / 3], [3.5 / 4, 2.5 / 3], [1.5 / 4, 1.5 / 3]]])
    torch.testing.assert_close(point_sample(x, coords).flatten(), torch.tensor([0.0, 11.0, 5.0]))


def test_uncertain_points_take_the_most_uncertain_share_and_draw_in_order():
    logits = torch.full((2, 1, 8, 8), 10.0)
    logits[:, :, :, 4:] = 0.01  # the right half is uncertain
    torch.manual_seed(0)
    coords = uncertain_points(logits, 100, 3.0, 0.75)
    assert coords.shape == (2, 100, 2)
    assert bool((coords[:, :75, 0] > 0.5 - 1 / 16).all())  # importance-sampled: right half
    # the two draws of the global generator, in order: candidates, then the random rest
    torch.manual_seed(0)
    candidates = torch.rand(2, 300, 2)
    rest = torch.rand(2, 25, 2)
    torch.testing.assert_close(coords[:, 75:], rest)
    assert all(any(torch.equal(c, cand) for cand in candidates[0]) for c in coords[0, :5])


def _criterion(num_points=256) -> SetCriterion:
    matcher = PointMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=num_points)
    return SetCriterion(matcher=matcher, class_weight=2.0, mask_weight=5.0, dice_weight=5.0,
                        no_object_weight=0.1, num_points=num_points, oversample_ratio=3.0,
                        importance_sample_ratio=0.75)


def _target() -> list[dict[str, torch.Tensor]]:
    masks = torch.zeros(2, 16, 16)
    masks[0, :8], masks[1, 8:] = 1, 1
    return [{"labels": torch.tensor([2, 0]), "masks": masks}]


def test_matcher_finds_the_obvious_assignment():
    masks = torch.full((1, 3, 4, 4), -8.0)
    masks[0, 2, :2], masks[0, 0, 2:] = 8.0, 8.0  # query 2 = top half, query 0 = bottom half
    logits = torch.zeros(1, 3, 4)
    logits[0, 2, 2], logits[0, 0, 0] = 5.0, 5.0
    torch.manual_seed(0)
    (rows, cols), = _criterion().matcher(logits, masks, _target())
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 1, 2: 0}


def test_criterion_hand_checks():
    """Right classes: CE ~0; the no-object weight enters the CE as a class weight (weighted
    mean); mask losses of the right masks far below those of inverted ones (not 0: 75% of the
    points sit where the logits are least certain, on the mask boundary)."""
    target = _target()
    right = torch.where(target[0]["masks"].bool(), 20.0, -20.0)  # target 0 top, 1 bottom
    masks = torch.stack([right[1], torch.full((16, 16), -20.0), right[0]])[None]
    logits = torch.full((1, 3, 4), -20.0)
    logits[0, 2, 2], logits[0, 0, 0], logits[0, 1, 3] = 20.0, 20.0, 20.0
    criterion = _criterion()
    torch.manual_seed(0)
    assert float(criterion([(logits, masks)], target)["loss_ce"]) < 1e-6
    wrong = logits.clone()
    wrong[0, 1] = torch.tensor([20.0, -20.0, -20.0, -20.0])  # unmatched query says class 0
    torch.manual_seed(0)
    ce = float(criterion([(wrong, masks)], target)["loss_ce"])
    # two matched queries ~0 (weight 1 each), the no-object query 40 (weight 0.1), divided by
    # the weights' sum 2.1; times the class weight 2
    assert ce == pytest.approx(2.0 * 0.1 * 40.0 / 2.1, rel=1e-3)
    indices = [(torch.tensor([0, 2]), torch.tensor([1, 0]))]
    torch.manual_seed(0)
    good = criterion.loss_masks(masks, target, indices, 2.0)
    torch.manual_seed(0)
    bad = criterion.loss_masks(-masks, target, indices, 2.0)
    assert float(good["loss_dice"]) < 0.15 and float(bad["loss_dice"]) > 0.9
    assert float(good["loss_mask"]) * 5 < float(bad["loss_mask"])


def test_criterion_deep_supervision_names_and_an_image_without_targets():
    torch.manual_seed(0)
    logits, masks = torch.randn(2, 3, 4), torch.randn(2, 3, 4, 4)
    targets = _target() + [{"labels": torch.zeros(0, dtype=torch.long),
                            "masks": torch.zeros(0, 16, 16)}]
    losses = _criterion()([(logits, masks), (logits * 2, masks * 2)], targets)
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "loss_mask_0",
                           "loss_dice_0"}
    assert all(bool(torch.isfinite(v)) for v in losses.values())


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
