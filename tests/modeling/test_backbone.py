"""The backbones: the detectron2-layout ResNet (zsseg's R-101c: layout, names, dilations,
weight files), torchvision's (weights, renormalisation), and the config fragment mounted under
a method's prefix (its errors name that prefix)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torchvision

from zsseg_bench.config import CfgNode as CN
from zsseg_bench.config import get_cfg
from zsseg_bench.config.allowed import allowed_values
from zsseg_bench.modeling.backbone import (
    Detectron2ResNet,
    ResNetBackbone,
    add_backbone_config,
    backbone_choices,
    build_backbone,
)
from zsseg_bench.utils.errors import UserError

#: Names and shapes of a zsseg R-101c checkpoint's backbone (MendelXu/zsseg.baseline @ d77c3af,
#: configs/voc-11k-15/zero_shot_maskformer_R101c_*: detectron2's build_resnet_deeplab_backbone,
#: STEM_OUT_CHANNELS 128; read from a checkpoint the official code saved).
R101C = {"stem.conv1.weight": (64, 3, 3, 3), "stem.conv2.weight": (64, 64, 3, 3),
         "stem.conv3.weight": (128, 64, 3, 3), "stem.conv3.norm.running_var": (128,),
         "res2.0.shortcut.weight": (256, 128, 1, 1), "res2.0.conv1.weight": (64, 128, 1, 1),
         "res3.0.conv2.weight": (128, 128, 3, 3), "res4.22.conv3.weight": (1024, 256, 1, 1),
         "res5.0.conv2.weight": (512, 512, 3, 3), "res5.2.conv3.norm.bias": (2048,)}


@pytest.fixture(scope="module")
def r101c() -> Detectron2ResNet:
    torch.manual_seed(0)
    return Detectron2ResNet().eval()


def test_r101c_layout_names_and_multi_grid(r101c):
    state = r101c.state_dict()
    assert len(state) == 530  # the official checkpoint's backbone.* tensors
    for key, shape in R101C.items():
        assert tuple(state[key].shape) == shape, key
    assert [len(getattr(r101c, f"res{i}")) for i in range(2, 6)] == [3, 4, 23, 3]
    # res5: stride 2 in its first block's 3x3 conv, dilations 1, 2, 4 (RES5_MULTI_GRID)
    res5 = r101c.res5
    assert [b.conv2.dilation for b in res5] == [(1, 1), (2, 2), (4, 4)]
    assert [b.conv2.stride for b in res5] == [(2, 2), (1, 1), (1, 1)]
    assert r101c.res2[0].conv1.stride == (1, 1)  # STRIDE_IN_1X1 False
    with torch.no_grad():
        out = r101c(torch.randn(1, 3, 64, 96))
    assert {k: tuple(v.shape[-2:]) for k, v in out.items()} == {
        "res2": (16, 24), "res3": (8, 12), "res4": (4, 6), "res5": (2, 3)}
    assert r101c.out_channels == {"res2": 256, "res3": 512, "res4": 1024, "res5": 2048}


def test_loads_detectron2_model_zoo_pickles_and_zsseg_checkpoints(r101c, tmp_path):
    # detectron2's DeepLab/R-103.pkl layout: {"model": {name: ndarray}, "__author__", ...},
    # with the ImageNet classifier, which the backbone drops
    torch.manual_seed(1)
    src = Detectron2ResNet(depth=50)
    arrays = {k: v.numpy() for k, v in src.state_dict().items()}
    arrays["fc.weight"] = np.zeros((1000, 2048), dtype=np.float32)
    path = tmp_path / "R-50c.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": arrays, "__author__": "test", "matching_heuristics": True}, f)
    dst = Detectron2ResNet(depth=50)
    dst.load_weights(str(path))
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    # a whole zsseg checkpoint: its backbone.* tensors
    ckpt = tmp_path / "model_final.pth"
    torch.save({"model": {**{f"backbone.{k}": v for k, v in src.state_dict().items()},
                          "sem_seg_head.x": torch.zeros(1)}}, ckpt)
    Detectron2ResNet(depth=50).load_weights(str(ckpt))


def test_weight_files_that_do_not_fit_are_user_errors(tmp_path):
    r50c = Detectron2ResNet(depth=50)
    state = {k: v for k, v in r50c.state_dict().items() if k != "res5.2.conv3.weight"}
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(UserError, match=r"missing keys 1 \(res5\.2\.conv3\.weight\)"):
        r50c.load_weights(str(path))
    with pytest.raises(UserError, match="shape mismatch"):  # an R-50 with the 7x7 stem
        Detectron2ResNet(depth=50, stem_type="basic", stem_out_channels=64).load_weights(
            str(path))

    class Evil:
        def __reduce__(self):
            return (print, ("never run",))

    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"model": {"stem.conv1.weight": Evil()}}, f)
    with pytest.raises(UserError, match="cannot read"):
        r50c.load_weights(str(tmp_path / "evil.pkl"))
    with pytest.raises(UserError, match="file not found"):
        r50c.load_weights(str(tmp_path / "none.pkl"))


def test_backbone_loads_torchvision_weights_and_renormalises(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    clip_mean, clip_std = [122.8, 116.7, 104.1], [68.5, 66.6, 70.3]
    in_mean, in_std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    bb = ResNetBackbone(depth=18, weights=str(path), renormalize=True, input_mean=clip_mean,
                        input_std=clip_std, pixel_mean=in_mean, pixel_std=in_std).eval()
    raw = torch.rand(1, 3, 64, 64) * 255
    clip_in = (raw - torch.tensor(clip_mean).view(1, 3, 1, 1)) / torch.tensor(clip_std).view(
        1, 3, 1, 1)
    imnet_in = (raw - torch.tensor(in_mean).view(1, 3, 1, 1)) / torch.tensor(in_std).view(
        1, 3, 1, 1)
    with torch.no_grad():
        res5 = bb(clip_in)["res5"]
        x = ref.maxpool(ref.relu(ref.bn1(ref.conv1(imnet_in))))
        expected = ref.layer4(ref.layer3(ref.layer2(ref.layer1(x))))
    torch.testing.assert_close(res5, expected, atol=1e-4, rtol=1e-4)
    assert bb.out_channels == {"res2": 64, "res3": 128, "res4": 256, "res5": 512}
    frozen = ResNetBackbone(depth=18, norm="FrozenBN", weights=str(path)).eval()
    torch.testing.assert_close(frozen.bn1.running_var, ref.bn1.running_var)
    with pytest.raises(UserError, match=r"does not match.*missing keys"):
        ResNetBackbone(depth=50, weights=str(path))
    with pytest.raises(UserError, match=r"does not match.*shape mismatch"):
        ResNetBackbone(depth=18, width=32, weights=str(path))
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        ResNetBackbone(depth=18, weights=str(tmp_path / "garbage.pth"))


def _cfg(prefix: str, **kw):  # noqa: ANN202
    cfg = get_cfg()
    cfg.MODEL.MYHEAD = CN()
    add_backbone_config(cfg, prefix, **kw)
    return cfg


def test_fragment_mounts_under_the_prefix_and_keeps_an_existing_node():
    cfg = _cfg("MODEL.MYHEAD.BACKBONE", depth=101)
    b = cfg.MODEL.MYHEAD.BACKBONE
    assert (b.NAME, b.DEPTH, b.STEM_TYPE, b.NORM, b.WIDTH) == ("detectron2", 101, "deeplab",
                                                              "FrozenBN", 64)
    b.DEPTH = 50
    add_backbone_config(cfg, "MODEL.MYHEAD.BACKBONE", depth=101)  # a second call: a no-op
    assert b.DEPTH == 50
    only = _cfg("MODEL.MYHEAD.ENCODER", depth=50, layouts=("torchvision",)).MODEL.MYHEAD.ENCODER
    assert "NAME" not in only and "STEM_TYPE" not in only and only.DEPTH == 50
    assert set(only) == set(b) - {"NAME", "STEM_TYPE", "STEM_OUT_CHANNELS", "STRIDE_IN_1X1",
                                   "RES5_MULTI_GRID", "RES5_DILATION"}
    assert backbone_choices("P", ("torchvision",)) == {"P.NORM": ("BN", "FrozenBN")}
    assert backbone_choices("P")["P.NAME"] == ("detectron2", "torchvision")
    with pytest.raises(ValueError, match="layouts"):
        add_backbone_config(cfg, "MODEL.MYHEAD.X", depth=50, layouts=("timm",))


def test_builder_picks_the_layout_and_its_errors_name_the_prefix(tmp_path):
    prefix = "MODEL.MYHEAD.BACKBONE"
    cfg = _cfg(prefix, depth=18, layouts=("torchvision", "detectron2"))
    b = cfg.MODEL.MYHEAD.BACKBONE
    b.WIDTH, b.NORM, b.RANDOM_INIT = 8, "BN", True
    built = build_backbone(cfg, prefix)
    assert type(built) is ResNetBackbone and built.out_channels["res5"] == 64
    b.NAME, b.DEPTH, b.NORM = "detectron2", 50, "FrozenBN"
    assert isinstance(build_backbone(cfg, prefix), Detectron2ResNet)
    b.RANDOM_INIT = False
    with pytest.raises(UserError, match=r"^MODEL\.MYHEAD\.BACKBONE\.WEIGHTS is empty.*R-103.pkl"):
        build_backbone(cfg, prefix)
    b.WEIGHTS = str(tmp_path / "none.pkl")
    with pytest.raises(UserError, match=r"^MODEL\.MYHEAD\.BACKBONE\.WEIGHTS: file not found"):
        build_backbone(cfg, prefix)
    b.RANDOM_INIT, b.DEPTH = True, 18
    with pytest.raises(UserError, match=r"^MODEL\.MYHEAD\.BACKBONE\.DEPTH = 18"):
        build_backbone(cfg, prefix)
    b.NAME, b.RANDOM_INIT, b.WEIGHTS = "torchvision", False, ""
    with pytest.raises(UserError, match=r"^MODEL\.MYHEAD\.BACKBONE\.WEIGHTS is empty"):
        build_backbone(cfg, prefix)
    b.WEIGHTS = str(tmp_path / "none.pth")
    with pytest.raises(UserError, match=r"^MODEL\.MYHEAD\.BACKBONE\.WEIGHTS: file not found"):
        build_backbone(cfg, prefix)
    b.DEPTH = 20
    with pytest.raises(UserError, match=r"^MODEL\.MYHEAD\.BACKBONE\.DEPTH = 20"):
        build_backbone(cfg, prefix)


def test_methods_mount_the_fragment_under_their_own_prefix():
    from zsseg_bench.config.projects import add_project_configs

    cfg = add_project_configs(get_cfg())
    assert cfg.MODEL.TWO_STAGE.BACKBONE.NAME == "detectron2"
    assert cfg.MODEL.TWO_STAGE.BACKBONE.DEPTH == 101
    assert "NAME" not in cfg.MODEL.ALIGNZEG.BACKBONE and cfg.MODEL.ALIGNZEG.BACKBONE.DEPTH == 50
    assert allowed_values("MODEL.ALIGNZEG.BACKBONE.NORM") == ("BN", "FrozenBN")
