"""The detectron2-layout ResNet (zsseg's R-101c): layout, names, dilations, weight files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from zsseg_bench.projects.two_stage.backbone import build_backbone
from zsseg_bench.projects.two_stage.detectron2_resnet import Detectron2ResNet
from zsseg_bench.utils.errors import UserError

from .conftest import tiny_cfg

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


def test_builder_picks_the_layout_and_needs_weights_or_random_init():
    cfg = tiny_cfg()
    assert type(build_backbone(cfg)).__name__ == "ResNetBackbone"
    b = cfg.MODEL.TWO_STAGE.BACKBONE
    b.NAME, b.DEPTH, b.NORM = "detectron2", 50, "FrozenBN"
    assert isinstance(build_backbone(cfg), Detectron2ResNet)
    b.RANDOM_INIT = False
    with pytest.raises(UserError, match="R-103.pkl"):
        build_backbone(cfg)
    b.RANDOM_INIT, b.DEPTH = True, 18
    with pytest.raises(UserError, match="DEPTH = 18"):
        build_backbone(cfg)
