"""The switches of ZegCLIP's ablation (issue 31): each changes what it claims, the defaults are
today's model, and every variant keeps the zero-shot contract."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from tests.projects.conftest import register_tiny_split, tiny_clip
from tests.projects.test_head_contract import (
    DATASET,
    check_inference,
    check_self_training,
    check_supervised,
)
from zsseg_bench.config import get_cfg
from zsseg_bench.config.projects import add_project_configs
from zsseg_bench.engine.checkpoint import trainable_state_dict
from zsseg_bench.engine.optimizer import param_settings
from zsseg_bench.modeling import build_head
from zsseg_bench.modeling.build import build_model
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.projects.zegclip import ZegCLIPHead, add_zegclip_config
from zsseg_bench.projects.zegclip.decoder import RelationshipDescriptor, TextQuery
from zsseg_bench.speed.resources import count_parameters
from zsseg_bench.utils.errors import UserError

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
NAMES = ["background", "red circle", "blue square", "green cross", "red square"]
IS_SEEN = torch.tensor([True, True, True, False, False])

pytestmark = pytest.mark.usefixtures("one_thread")


def _vocab(clip, seen_only: bool = False) -> ClassVocabulary:
    n = 3 if seen_only else len(NAMES)
    return ClassVocabulary(NAMES[:n], clip.embed_texts(NAMES[:n]), IS_SEEN[:n], torch.arange(n))


def _head(clip, **kw) -> ZegCLIPHead:
    torch.manual_seed(0)
    if kw.get("encoder_adaptation") == "finetune":
        kw.setdefault("finetune_encoder", clip.visual)
    return ZegCLIPHead(clip_width=clip.width, clip_layers=clip.num_layers,
                       embed_dim=clip.embed_dim, patch_size=clip.patch_size, num_heads=4, **kw)


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 32, 32, generator=g), torch.randint(0, 3, (2, 32, 32), generator=g)


def _learnable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------ defaults
def test_defaults_are_zegclip_and_today_s_model(clip):
    """Default switches: deep prompts, focal + dice, relationship descriptor -- and the losses
    and scores the head gave before the switches existed (recorded from commit 62551f8 with
    this seed; one thread)."""
    cfg = get_cfg()
    add_zegclip_config(cfg)
    z = cfg.MODEL.ZEGCLIP
    assert (z.ENCODER_ADAPTATION, z.LOSS.TYPE, z.CLASS_QUERY) == (
        "deep_prompts", "focal_dice", "relationship_descriptor")
    head = _head(clip)
    assert isinstance(head.descriptor, RelationshipDescriptor)
    assert head.prompts.embeddings.shape[0] == clip.num_layers
    assert _learnable(head) == 45_760
    images, labels = _inputs()
    torch.manual_seed(1)
    losses = head.train()(images, _vocab(clip, seen_only=True), clip, targets=labels)
    with torch.no_grad():
        scores = head.eval()(images, _vocab(clip), clip)
    assert float(losses["loss_focal"].detach()) == pytest.approx(10.400369644165039, rel=1e-5)
    assert float(losses["loss_dice"].detach()) == pytest.approx(0.5977451205253601, rel=1e-5)
    assert float(scores.sum()) == pytest.approx(4562.3701171875, rel=1e-5)


def test_unknown_switch_values_are_refused(clip):
    cfg = get_cfg()
    add_project_configs(cfg)
    cfg.MODEL.HEAD.NAME = "ZegCLIPHead"
    for key in ("ENCODER_ADAPTATION", "CLASS_QUERY"):
        bad = cfg.clone()
        bad.MODEL.ZEGCLIP[key] = "nope"
        with pytest.raises(UserError, match=key):
            build_head(bad, clip)
    bad = cfg.clone()
    bad.MODEL.ZEGCLIP.LOSS.TYPE = "nope"
    with pytest.raises(UserError, match="LOSS.TYPE"):
        build_head(bad, clip)


# ------------------------------------------------------------------ design 1: the encoder
def test_frozen_encoder_has_no_prompt_parameters(clip):
    head = _head(clip, encoder_adaptation="frozen")
    assert head.prompts is None
    assert not any("prompt" in n for n, _ in head.named_parameters())
    assert _learnable(head) == _learnable(_head(clip)) - _learnable(_head(clip).prompts)
    images, labels = _inputs()
    sum(head.train()(images, _vocab(clip, seen_only=True), clip, targets=labels).values()
        ).backward()
    assert not any(p.requires_grad or p.grad is not None for p in clip.parameters())


def test_shallow_prompts_enter_once_and_are_carried_through_every_layer(clip):
    head = _head(clip, encoder_adaptation="shallow_prompts").eval()
    deep = _head(clip).eval()
    assert head.prompts.embeddings.shape == (1, 10, clip.width)
    assert head.prompts.norm is None  # the official shallow path never applies prompt_norm
    assert _learnable(head.prompts) == 10 * clip.width + clip.width ** 2 + clip.width
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        frozen = clip.encode_dense(images)
        shallow = clip.encode_dense(images, deep_prompts=head.prompts(1))
        # The same tokens given to every layer by hand: inserted once, then carried on.
        carried = clip.encode_dense(images, deep_prompts=head.prompts(1)[:1])
        logits = head.mask_logits(images, clip.embed_texts(NAMES), clip)[-1]
        deep_logits = deep.mask_logits(images, clip.embed_texts(NAMES), clip)[-1]
    assert not torch.allclose(shallow.patch_embeddings, frozen.patch_embeddings)
    assert torch.equal(shallow.patch_embeddings, carried.patch_embeddings)
    assert not torch.allclose(logits, deep_logits)


def test_finetuning_trains_the_image_encoder_and_only_it():
    clip = tiny_clip()  # made trainable here: not the module's shared instance
    assert _learnable(clip.visual) == 0
    head = _head(clip, encoder_adaptation="finetune")
    assert head.prompts is None
    assert _learnable(clip.visual) == sum(p.numel() for p in clip.visual.parameters())
    text_side = [p for n, p in clip.named_parameters() if not n.startswith("model.visual.")]
    assert text_side and not any(p.requires_grad for p in text_side)
    images, labels = _inputs()
    sum(head.train()(images, _vocab(clip, seen_only=True), clip, targets=labels).values()
        ).backward()
    for name in ("conv1.weight", "transformer.resblocks.0.attn.in_proj_weight",
                 "transformer.resblocks.1.mlp.c_fc.weight", "ln_post.weight", "proj"):
        grad = dict(clip.visual.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert all(p.grad is None for p in text_side)
    with pytest.raises(ValueError, match="finetune_encoder"):
        ZegCLIPHead(clip_width=clip.width, clip_layers=clip.num_layers, embed_dim=clip.embed_dim,
                    patch_size=clip.patch_size, num_heads=4, encoder_adaptation="finetune")


def _toy_cfg(*overrides: str):
    cfg = get_cfg()
    add_project_configs(cfg)
    cfg.merge_from_file(str(CONFIGS / "synthetic" / "zegclip.yaml"))
    cfg.merge_from_list(list(overrides))
    return cfg


def test_finetuned_encoder_in_the_optimizer_checkpoint_and_parameter_count():
    """Built from the toy config: the encoder's parameters get the official 'backbone' lr x10,
    are saved with the trainable weights (the text tower is not), and count as learnable."""
    torch.manual_seed(0)
    default = build_model(_toy_cfg())
    cfg = _toy_cfg("MODEL.ZEGCLIP.ENCODER_ADAPTATION", "finetune")
    torch.manual_seed(0)
    model = build_model(cfg)
    visual = {f"clip.model.visual.{n}" for n, _ in model.clip.visual.named_parameters()}
    settings = {s.name: s for s in param_settings(cfg, model)}
    assert visual <= set(settings)
    assert {settings[n].lr for n in visual} == {cfg.SOLVER.BASE_LR * 10}
    assert not any(n.startswith("clip.") for n in
                   {s.name for s in param_settings(_toy_cfg(), default)})
    state = trainable_state_dict(model)
    assert visual <= set(state)
    assert not any(k.startswith("clip.model.transformer.") for k in state)  # the text tower
    assert not any(k.startswith("clip.") for k in trainable_state_dict(default))
    counts, base = count_parameters(model), count_parameters(default)
    encoder = sum(p.numel() for p in model.clip.visual.parameters())
    assert counts["by_module"]["clip.visual"]["learnable"] == encoder
    assert counts["learnable"] == base["learnable"] - _learnable(default.head.prompts) + encoder
    # The checkpoint loads back into a fresh fine-tuned model (the encoder's trained weights).
    with torch.no_grad():
        model.clip.visual.conv1.weight.add_(1.0)
    fresh = build_model(cfg)
    fresh.load_state_dict(trainable_state_dict(model), strict=False)
    assert torch.equal(fresh.clip.visual.conv1.weight, model.clip.visual.conv1.weight)


def test_vit_b16_learnable_parameters_per_encoder_adaptation():
    """Paper scale (VOC config, ViT-B/16): the counts of the ablation's variants, computed
    from the official modules (head side; the fine-tuned encoder is counted by the test
    above and in projects/zegclip/README.md)."""
    def head(**overrides):
        cfg = get_cfg()
        add_zegclip_config(cfg)
        cfg.merge_from_file(str(CONFIGS / "voc" / "zegclip_vitb16_512x512_20k_inductive.yaml"))
        cfg.merge_from_list([x for kv in overrides.items() for x in kv])
        vit_b16 = SimpleNamespace(width=768, num_layers=12, embed_dim=512, patch_size=16)
        return build_head(cfg, vit_b16)

    deep = _learnable(head())
    assert deep == 10_666_240
    assert _learnable(head(**{"MODEL.ZEGCLIP.ENCODER_ADAPTATION": "frozen"})) == deep - 684_288
    assert _learnable(head(**{"MODEL.ZEGCLIP.ENCODER_ADAPTATION": "shallow_prompts"})) == (
        deep - 684_288 + 10 * 768 + 768 * 768 + 768)
    assert _learnable(head(**{"MODEL.ZEGCLIP.CLASS_QUERY": "text"})) == deep - 512 * 512


# --------------------------------------------------------------------- design 2: the loss
def test_softmax_loss_is_cross_entropy_and_scores_sum_to_one(clip):
    head = _head(clip, loss_type="softmax_ce", seen_score_calibration=0.0)
    images, labels = _inputs()
    labels[0, :4] = 255
    vocab = _vocab(clip, seen_only=True)
    torch.manual_seed(1)
    losses = head.train()(images, vocab, clip, targets=labels)
    assert set(losses) == {"loss_ce"}
    torch.manual_seed(1)
    logits = F.interpolate(head.mask_logits(images, vocab.embeddings, clip)[-1], size=(32, 32),
                           mode="bilinear", align_corners=False)
    assert torch.allclose(losses["loss_ce"], F.cross_entropy(logits, labels, ignore_index=255))
    with torch.no_grad():
        scores = head.eval()(images, _vocab(clip), clip)
    assert torch.allclose(scores.sum(dim=1), torch.ones(2, 32, 32), atol=1e-6)
    # Sigmoid scores (the default) do not.
    with torch.no_grad():
        sigmoid = _head(clip, seen_score_calibration=0.0).eval()(images, _vocab(clip), clip)
    assert not torch.allclose(sigmoid.sum(dim=1), torch.ones(2, 32, 32), atol=1e-2)
    all_ignored = torch.full_like(labels, 255)
    loss = head.train()(images, vocab, clip, targets=all_ignored)["loss_ce"]
    assert float(loss.detach()) == 0.0 and loss.requires_grad


# ------------------------------------------------------------------ design 3: the queries
def test_text_query_does_not_depend_on_the_image(clip):
    head = _head(clip, class_query="text").eval()
    assert isinstance(head.descriptor, TextQuery)
    text = clip.embed_texts(NAMES)
    cls = F.normalize(torch.randn(2, clip.embed_dim), dim=-1).requires_grad_(True)
    queries = head.descriptor(cls, text)
    assert queries.shape == (2, len(NAMES), clip.embed_dim)
    assert torch.equal(queries[0], queries[1])
    assert torch.equal(queries, head.descriptor(torch.randn(2, clip.embed_dim), text))
    assert torch.autograd.grad(queries.sum(), cls, allow_unused=True)[0] is None  # no [CLS] path
    descriptor = _head(clip).descriptor
    other = descriptor(F.normalize(torch.randn(2, clip.embed_dim), dim=-1), text)
    assert not torch.allclose(other[0], other[1])  # the relationship descriptor does


# ------------------------------------------------------------------ the zero-shot contract
VARIANTS = {
    "baseline_fix": {"encoder_adaptation": "frozen", "loss_type": "softmax_ce",
                     "class_query": "text"},
    "baseline_ft": {"encoder_adaptation": "finetune", "loss_type": "softmax_ce",
                    "class_query": "text"},
    "shallow": {"encoder_adaptation": "shallow_prompts"},
    "no_nel": {"loss_type": "softmax_ce"},
    "no_rd": {"class_query": "text"},
}


@pytest.fixture(scope="module")
def _split():
    register_tiny_split(DATASET)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_keeps_the_zero_shot_contract(variant, _split):
    """No unseen name or label before self-training, the core's pseudo-labels after, the full
    vocabulary at inference -- the contract suite of every head, on each ablation variant."""
    for check in (check_supervised, check_self_training, check_inference):
        clip = tiny_clip()  # fresh: the fine-tuned variant makes its encoder trainable
        check(_head(clip, **VARIANTS[variant]), clip)


# ------------------------------------------------------------------------------ configs
ABLATION = {  # config name -> (ENCODER_ADAPTATION, LOSS.TYPE, CLASS_QUERY)
    "baseline_fix": ("frozen", "softmax_ce", "text"),
    "baseline_ft": ("finetune", "softmax_ce", "text"),
    "dpt": ("deep_prompts", "softmax_ce", "text"),
    "dpt_nel": ("deep_prompts", "focal_dice", "text"),
    "zegclip": ("deep_prompts", "focal_dice", "relationship_descriptor"),
    "zegclip_no_dpt_ft": ("finetune", "focal_dice", "relationship_descriptor"),
    "zegclip_no_dpt_fix": ("frozen", "focal_dice", "relationship_descriptor"),
    "zegclip_no_nel": ("deep_prompts", "softmax_ce", "relationship_descriptor"),
    "zegclip_shallow": ("shallow_prompts", "focal_dice", "relationship_descriptor"),
}
SWITCHES = ("MODEL.ZEGCLIP.ENCODER_ADAPTATION", "MODEL.ZEGCLIP.LOSS.TYPE",
            "MODEL.ZEGCLIP.CLASS_QUERY")


def _flat(node, prefix=""):  # noqa: ANN001, ANN202
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("dataset,base", [("synthetic", "synthetic/zegclip.yaml"),
                                          ("voc", "voc/zegclip_vitb16_512x512_20k_inductive.yaml")])
def test_ablation_configs_change_the_switches_only(dataset, base):
    """Each step of the ablation is the method's own config (toy, or the official VOC recipe)
    with only the three switches set; the sweep specs run exactly these steps."""
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.sweep.spec import load_sweep_spec

    files = {p.stem for p in (CONFIGS / dataset / "zegclip_ablation").glob("*.yaml")}
    assert files == set(ABLATION)
    reference = _flat(setup_cfg(str(CONFIGS / base)))
    for name, switches in ABLATION.items():
        cfg = _flat(setup_cfg(str(CONFIGS / dataset / "zegclip_ablation" / f"{name}.yaml")))
        assert tuple(cfg[k] for k in SWITCHES) == switches, name
        changed = {k for k in cfg if cfg[k] != reference[k]}
        assert changed <= set(SWITCHES), (name, changed)
    toy = [load_sweep_spec(str(CONFIGS / "sweeps" / f"zegclip_ablation{suffix}.yaml"))
           for suffix in ("", "_finetune")]
    fine_tuned = {"baseline_ft", "zegclip_no_dpt_ft"}
    assert {m.name for m in toy[0].methods} == set(ABLATION) - {"zegclip_shallow"} - fine_tuned
    assert {m.name for m in toy[1].methods} == fine_tuned
    for spec in toy:
        assert (list(spec.settings), spec.seeds, spec.overrides) == (["inductive"], [0, 1, 2], {})
    voc = load_sweep_spec(str(CONFIGS / "sweeps" / "zegclip_ablation_voc_speed.yaml"))
    assert {m.name for m in voc.methods} == set(ABLATION)
