"""Every ZegCLIP config loads, and carries the official recipe's constants."""

from pathlib import Path

import pytest
import torch

from zsseg_bench.config.command_line import setup_cfg
from zsseg_bench.modeling.clip import get_templates

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
# The method's configs and its ablation's (configs/*/zegclip_ablation/), not the sweep specs.
ZEGCLIP_CONFIGS = sorted(p for p in [*CONFIGS.glob("*/zegclip*.yaml"),
                                     *CONFIGS.glob("*/zegclip_ablation/*.yaml")]
                         if p.parent.name != "sweeps")


def _id(path: Path) -> str:
    return str(path.relative_to(CONFIGS).with_suffix(""))


def test_configs_exist_for_every_dataset_and_setting():
    names = {str(p.relative_to(CONFIGS)) for p in ZEGCLIP_CONFIGS}
    for dataset, iters in (("voc", "20k"), ("coco_stuff", "80k"), ("pcontext", "40k")):
        for setting in ("inductive", "transductive", "fully"):
            assert f"{dataset}/zegclip_vitb16_512x512_{iters}_{setting}.yaml" in names
    assert "synthetic/zegclip.yaml" in names


@pytest.mark.parametrize("path", ZEGCLIP_CONFIGS, ids=_id)
def test_config_loads(path):
    cfg = setup_cfg(str(path))
    assert cfg.MODEL.HEAD.NAME == "ZegCLIPHead"
    setting = path.stem.rsplit("_", 1)[-1]
    assert cfg.ZERO_SHOT.SETTING == (setting if setting in ("transductive", "fully")
                                     else "inductive")


def test_voc_recipe_constants():
    cfg = setup_cfg(str(CONFIGS / "voc" / "zegclip_vitb16_512x512_20k_transductive.yaml"))
    z = cfg.MODEL.ZEGCLIP
    assert (z.PROMPT.NUM_TOKENS, z.DECODER.NUM_LAYERS, z.DECODER.NUM_HEADS) == (10, 3, 8)
    assert (z.LOSS.FOCAL_WEIGHT, z.LOSS.DICE_WEIGHT, z.LOSS.SELF_TRAIN_FOCAL_WEIGHT) == (
        100.0, 1.0, 100.0)
    assert (z.SEEN_SCORE_CALIBRATION, z.SELF_TRAIN_SEEN_SCORE_CALIBRATION) == (0.1, 0.0)
    s = cfg.SOLVER
    assert (s.BASE_LR, s.MAX_ITER, s.IMS_PER_BATCH, s.WARMUP_ITERS) == (2e-5, 20000, 16, 1500)
    assert cfg.ZERO_SHOT.SELF_TRAIN_START_FRACTION == 0.5
    assert (cfg.TEST.MODE, tuple(cfg.TEST.SLIDE.STRIDE)) == ("slide", (426, 426))
    coco = setup_cfg(str(CONFIGS / "coco_stuff" / "zegclip_vitb16_512x512_80k_inductive.yaml"))
    assert (coco.MODEL.ZEGCLIP.PROMPT.NUM_TOKENS, coco.SOLVER.MAX_ITER) == (100, 80000)
    # Text embeddings: voc12_single.npy / coco_multi.npy prompts (get_embedding.ipynb).
    assert get_templates(cfg.MODEL.CLIP.TEMPLATES) == ("a photo of a {}",)
    coco_templates = get_templates(coco.MODEL.CLIP.TEMPLATES)
    assert len(coco_templates) == 15 and coco_templates[-1] == "This is one {} in the scene."


REFERENCE_CONFIGS = [p for p in ZEGCLIP_CONFIGS
                     if "synthetic" not in p.relative_to(CONFIGS).parts]


@pytest.mark.parametrize("path", REFERENCE_CONFIGS, ids=_id)
def test_reference_configs_use_the_official_image_encoder(path):
    """Doubled [CLS] embedding and bilinear positional interpolation (img_encoder.py)."""
    clip = setup_cfg(str(path)).MODEL.CLIP
    assert (clip.DOUBLE_CLS_EMBEDDING, clip.POS_EMBED_INTERPOLATION) == (True, "bilinear")


def test_other_methods_keep_plain_clip():
    others = [p for p in CONFIGS.glob("*/*.yaml") if not p.name.startswith("zegclip")
              and p.parent.name != "sweeps"]
    assert others
    for path in others:
        clip = setup_cfg(str(path)).MODEL.CLIP
        assert (clip.DOUBLE_CLS_EMBEDDING, clip.POS_EMBED_INTERPOLATION) == (False, "bicubic"), \
            path


@pytest.mark.parametrize("path", [p for p in REFERENCE_CONFIGS if "transductive" in p.stem],
                         ids=lambda p: p.parent.name)
def test_transductive_configs_restart_the_schedule_explicitly(path):
    """The official self-training is a second run: fresh optimizer, warm-up and poly."""
    assert "SELF_TRAIN_SCHEDULE: restart" in path.read_text()
    cfg = setup_cfg(str(path))
    assert cfg.ZERO_SHOT.SELF_TRAIN_SCHEDULE == "restart"
    assert cfg.MODEL.ZEGCLIP.LOSS.SELF_TRAIN_FOCAL_WEIGHT == 100.0


def _mmcv_poly_with_linear_warmup(base_lr, it, max_iters, warmup_iters=1500, ratio=1e-6,
                                  min_lr=1e-6, power=0.9):
    """mmcv's PolyLrUpdaterHook with linear warm-up (the official lr_config), at ``it``."""
    regular = (base_lr - min_lr) * (1 - it / max_iters) ** power + min_lr
    if it < warmup_iters:
        return regular * (1 - (1 - it / warmup_iters) * (1 - ratio))
    return regular


def test_voc_transductive_schedule_is_the_official_two_runs():
    """Iterations 0-10k: the inductive 20k run; 10k-20k: the ST run's own 10k schedule."""
    from zsseg_bench.engine.lr_scheduler import build_lr_scheduler
    from zsseg_bench.engine.phase_schedule import PhaseSchedule

    cfg = setup_cfg(str(CONFIGS / "voc" / "zegclip_vitb16_512x512_20k_transductive.yaml"))
    restart = PhaseSchedule.from_config(cfg).restart_iter
    assert restart == 10000
    head_lr = 2e-5 * 10  # lr_mult 10 for every learnable parameter
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=head_lr)
    sched = build_lr_scheduler(cfg, opt, restart_iter=restart)
    for it in (0, 700, 5000, 9999):
        assert sched.lr_at(head_lr, it) == pytest.approx(
            _mmcv_poly_with_linear_warmup(head_lr, it, 20000), rel=1e-9)
    for it in (0, 700, 1500, 6000, 9999):
        assert sched.lr_at(head_lr, restart + it) == pytest.approx(
            _mmcv_poly_with_linear_warmup(head_lr, it, 10000), rel=1e-9)


@pytest.mark.parametrize("path", REFERENCE_CONFIGS, ids=_id)
def test_reference_configs_initialise_the_decoder_as_official_training(path):
    """PyTorch's default init: official train.py never calls the decode head's init_weights."""
    assert setup_cfg(str(path)).MODEL.ZEGCLIP.DECODER.INIT == "pytorch"


def test_decoder_init_switch(clip):
    from zsseg_bench.projects.zegclip import ZegCLIPHead

    args = {"clip_width": clip.width, "clip_layers": clip.num_layers,
            "embed_dim": clip.embed_dim, "patch_size": clip.patch_size, "num_heads": 4,
            "hidden_dim": 64}
    torch.manual_seed(0)
    official = ZegCLIPHead(**args, decoder_init="pytorch")
    torch.manual_seed(0)
    never_called = ZegCLIPHead(**args, decoder_init="trunc_normal")
    linears = ("descriptor.proj", "decoder.layers.0.cross_attn.q", "decoder.layers.0.ffn.0")
    for name in linears:
        a, b = official.get_submodule(name), never_called.get_submodule(name)
        bound = a.weight.shape[1] ** -0.5  # Kaiming-uniform(a=sqrt(5)) and its bias bound
        assert a.bias.abs().max() > 0 and a.bias.abs().max() <= bound
        assert a.weight.abs().max() > 0.1 * bound and a.weight.abs().max() <= bound
        assert torch.equal(b.bias, torch.zeros_like(b.bias))
        assert 0.015 < float(b.weight.std()) < 0.025  # normal, std 0.02 (cut at +-2)
    for head in (official, never_called):  # use_proj=True input projection: trunc-normal
        assert 0.015 < float(head.input_proj[0].weight.std()) < 0.025
    cfg = setup_cfg(str(CONFIGS / "synthetic" / "zegclip.yaml"))
    assert cfg.MODEL.ZEGCLIP.DECODER.INIT == "trunc_normal"  # the toy's, stated there
    with pytest.raises(Exception, match="MODEL.ZEGCLIP.DECODER.INIT"):
        setup_cfg(str(CONFIGS / "synthetic" / "zegclip.yaml"), ["MODEL.ZEGCLIP.DECODER.INIT",
                                                                 "xavier"])
