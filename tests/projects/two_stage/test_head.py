"""TwoStageHead: training losses, inference stages, pseudo-labels, backbone, configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zsseg_bench.modeling import build_head
from zsseg_bench.modeling.pseudo_label import PseudoLabelPolicy
from zsseg_bench.modeling.stage_timer import StageTimer
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.projects.two_stage import TwoStageHead
from zsseg_bench.utils.errors import UserError

from .conftest import tiny_cfg, vocabulary

STAGES = {"proposal_network", "crop_preparation", "clip_crops", "fusion"}


def _head(clip, **kw) -> TwoStageHead:
    torch.manual_seed(0)
    cfg = tiny_cfg(**kw)
    cfg.MODEL.HEAD.NAME = "TwoStageHead"
    return build_head(cfg, clip)


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 3, 64, 64, generator=g)
    targets = torch.zeros(2, 64, 64, dtype=torch.long)
    targets[0, 8:30, 10:40] = 1
    targets[1, 30:60, 5:25] = 3
    targets[1, :4] = 255
    return images, targets


@pytest.mark.parametrize("decoder", ["MaskFormerDecoder", "Mask2FormerDecoder"])
def test_training_losses_with_deep_supervision(clip, decoder):
    head = _head(clip, decoder=decoder).train()
    assert type(head.decoder).__name__ == decoder
    vocab = vocabulary(clip, names=["background", "red circle", "blue square", "green cross"],
                       seen=[True] * 4)
    images, targets = _batch()
    losses = head(images, vocab, clip, targets=targets)
    # 3 decoder layers: final + 2 auxiliary (MaskFormer), or + 3 (Mask2Former: initial queries)
    aux = 3 if decoder == "Mask2FormerDecoder" else 2
    assert len(losses) == 3 * (aux + 1)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert head.backbone.conv1.weight.grad is not None
    assert head.void_embedding.weight.grad is not None
    assert all(p.grad is None for p in clip.parameters())


def test_inference_scores_and_stages(clip):
    head = _head(clip).eval()
    vocab = vocabulary(clip)
    images, _ = _batch()
    with torch.no_grad(), StageTimer() as timer:
        scores = head(images, vocab, clip)
    # fused at image size, the sigmoid applied after upsampling the mask logits (zsseg)
    assert scores.shape == (2, len(vocab), 64, 64)
    assert torch.isfinite(scores).all() and (scores >= 0).all()
    assert STAGES <= set(timer.totals_s)
    head.ensemble = False
    with torch.no_grad():
        embeddings, logits = head.propose(images)[-1]
        p = head.classify_queries(embeddings, vocab.embeddings).softmax(-1)[..., :-1]
        up = torch.nn.functional.interpolate(logits, size=(64, 64), mode="bilinear")
        torch.testing.assert_close(head(images, vocab, clip),
                                   torch.einsum("bqk,bqhw->bkhw", p, up.sigmoid()))
    with torch.no_grad(), StageTimer() as timer:
        plain = head(images, vocab, clip)
    assert set(timer.totals_s) == {"proposal_network", "fusion"}
    assert not torch.allclose(plain, scores)


def test_seen_calibration_lowers_seen_scores_only(clip):
    head = _head(clip).eval()
    vocab = vocabulary(clip)
    images, _ = _batch()
    with torch.no_grad():
        base = head(images, vocab, clip)
        head.seen_calibration = 0.1
        cal = head(images, vocab, clip)
    diff = base - cal
    torch.testing.assert_close(diff[:, vocab.is_seen], torch.full_like(diff[:, vocab.is_seen],
                                                                        0.1))
    torch.testing.assert_close(diff[:, ~vocab.is_seen], torch.zeros_like(diff[:, ~vocab.is_seen]))


def _pseudo_labels(head, images, vocab, clip, predictions, targets, threshold=None):  # noqa: ANN001, ANN202
    """The core policy with the head's options on its labelling scores (as in its losses)."""
    policy = head.pseudo_label_policy if threshold is None else PseudoLabelPolicy(
        "normalised", threshold)
    scores = F.interpolate(head._pseudo_label_scores(images, vocab, clip, predictions),
                           size=targets.shape[-2:], mode="bilinear", align_corners=False)
    return policy(targets, scores, vocab.unseen_indices)


def test_pseudo_labels_only_unlabelled_pixels_and_unseen_classes(clip):
    head = _head(clip).train()
    assert head.pseudo_label_policy == PseudoLabelPolicy("normalised", 0.0)  # zsseg's options
    vocab = vocabulary(clip)  # class 4 unseen
    images, targets = _batch(1)
    targets[:, 40:, 40:] = 254
    predictions = head.propose(images)
    labels = _pseudo_labels(head, images, vocab, clip, predictions, targets, 0.0)
    region = labels[:, 40:, 40:]
    assert set(region.unique().tolist()) <= {4}
    assert torch.equal(labels[targets != 254], targets[targets != 254])
    # nothing confident enough: all ignored
    labels = _pseudo_labels(head, images, vocab, clip, predictions, targets, 1.01)
    assert set(labels[:, 40:, 40:].unique().tolist()) == {255}
    losses = head(images, vocab, clip, targets=targets,
                  phase=TrainingPhase.SELF_TRAINING)  # self-training path end to end
    assert all(torch.isfinite(v) for v in losses.values())


def test_config_errors_are_user_errors(clip):
    cfg = tiny_cfg()
    cfg.MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT = False
    with pytest.raises(UserError, match="RANDOM_INIT"):
        TwoStageHead(cfg, clip)
    cfg = tiny_cfg()
    cfg.MODEL.TWO_STAGE.BACKBONE.WEIGHTS = "/nonexistent/r101.pth"
    cfg.MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT = False  # (True: WEIGHTS is not read)
    with pytest.raises(UserError, match="not found"):
        TwoStageHead(cfg, clip)
    cfg = tiny_cfg()
    cfg.MODEL.TWO_STAGE.CLIP_ENSEMBLE.SQUARE_BOX = True  # zsseg's crops stretch the box
    with pytest.raises(UserError, match="SQUARE_BOX True needs CLIP_ENSEMBLE.CUT grid"):
        TwoStageHead(cfg, clip)
    cfg = tiny_cfg()
    cfg.MODEL.TWO_STAGE.CLIP_ENSEMBLE.CUT = "grid"
    cfg.MODEL.TWO_STAGE.CLIP_ENSEMBLE.MASK_EXPAND_RATIO = 1.5
    with pytest.raises(UserError, match="MASK_EXPAND_RATIO = 1.5"):
        TwoStageHead(cfg, clip)
    cfg = tiny_cfg()
    cfg.MODEL.TWO_STAGE.CLIP_ENSEMBLE.CROP = "box"
    with pytest.raises(UserError, match="CLIP_ENSEMBLE.CROP"):
        TwoStageHead(cfg, clip)
    cfg = tiny_cfg(decoder="DETRDecoder")
    with pytest.raises(UserError, match=r"DECODER.NAME = 'DETRDecoder'.*Mask2FormerDecoder"):
        TwoStageHead(cfg, clip)
    cfg = tiny_cfg()
    cfg.MODEL.TWO_STAGE.DECODER.TEMPERATURE = -0.01
    with pytest.raises(UserError, match="DECODER.TEMPERATURE = -0.01 must be > 0"):
        TwoStageHead(cfg, clip)


def test_query_temperature_zero_is_the_clip_models_logit_scale(clip):
    """0 = 1 / CLIP's learned logit scale (the toy configs; zsseg's 0.01 is OpenAI CLIP's)."""
    cfg = tiny_cfg()
    cfg.MODEL.TWO_STAGE.DECODER.TEMPERATURE = 0.0
    head = TwoStageHead(cfg, clip)
    assert head.temperature == pytest.approx(1.0 / float(clip.model.logit_scale.exp()))
    assert head.temperature != pytest.approx(0.01)
    assert TwoStageHead(tiny_cfg(), clip).temperature == 0.01


def _transductive_head(clip, recipe: str = "offline") -> TwoStageHead:
    torch.manual_seed(0)
    cfg = tiny_cfg()
    cfg.MODEL.HEAD.NAME = "TwoStageHead"
    cfg.ZERO_SHOT.SETTING = "transductive"
    cfg.MODEL.TWO_STAGE.SELF_TRAINING.RECIPE = recipe
    return build_head(cfg, clip)


def test_supervised_phase_classifies_over_seen_classes_only(clip):
    head = _transductive_head(clip).train()
    vocab = vocabulary(clip)  # class 4 (red square) unseen
    images, targets = _batch()
    targets[:, 40:, 40:] = 254  # unlabelled (unseen) pixels
    other = ClassVocabulary(vocab.names, vocab.embeddings.clone(), vocab.is_seen,
                            vocab.class_ids)
    other.embeddings[4] = -other.embeddings[4]  # a different unseen text embedding
    torch.manual_seed(3)
    losses = head(images, vocab, clip, targets=targets)
    torch.manual_seed(3)
    same = head(images, other, clip, targets=targets)
    # the unseen class is no negative: its embedding does not enter the supervised losses
    assert all(torch.equal(losses[k], same[k]) for k in losses)
    head.on_phase_change(TrainingPhase.SELF_TRAINING)
    torch.manual_seed(3)
    st = head(images, vocab, clip, targets=targets, phase=TrainingPhase.SELF_TRAINING)
    torch.manual_seed(3)
    st_other = head(images, other, clip, targets=targets, phase=TrainingPhase.SELF_TRAINING)
    assert not torch.equal(st["loss_ce"], st_other["loss_ce"])  # all classes in self-training
    leak = targets.clone()
    leak[0, :2, :2] = 4
    with pytest.raises(RuntimeError, match="unseen classes outside self-training"):
        head(images, vocab, clip, targets=leak)


def test_offline_teacher_is_frozen_at_self_training_start_and_checkpointed(clip):
    head = _transductive_head(clip).train()
    assert not any(n.startswith("teacher.") for n, _ in head.named_parameters())
    assert head.teacher.training is False
    vocab = vocabulary(clip)
    images, targets = _batch(1)
    targets[:, 40:, 40:] = 254
    with pytest.raises(RuntimeError, match="on_phase_change"):  # told by the phase schedule
        head(images, vocab, clip, targets=targets, phase=TrainingPhase.SELF_TRAINING)
    head.on_phase_change(TrainingPhase.SELF_TRAINING)  # the teacher is due ...
    assert not bool(head.teacher_ready)
    opt = torch.optim.SGD(head.parameters(), lr=1.0)
    losses = head(images, vocab, clip, targets=targets, phase=TrainingPhase.SELF_TRAINING)
    assert bool(head.teacher_ready)  # ... and taken at the first self-training step
    predictions = head.propose(images)
    first = _pseudo_labels(head, images, vocab, clip, predictions, targets)
    # threshold 0 (zsseg): every unlabelled pixel gets an unseen class, nothing else changes
    assert set(first[:, 40:, 40:].unique().tolist()) == {4}
    assert torch.equal(first[targets != 254], targets[targets != 254])
    sum(losses.values()).backward()
    opt.step()
    state = head.state_dict()
    assert not torch.equal(state["decoder.query_pos.weight"],
                           state["teacher.decoder.query_pos.weight"])  # the student moved
    head.on_phase_change(TrainingPhase.SELF_TRAINING)  # a resumed run re-enters the phase
    assert torch.equal(head.state_dict()["teacher.decoder.query_pos.weight"],
                       state["teacher.decoder.query_pos.weight"])  # the teacher stays
    predictions = head.propose(images)
    teacher_scores = head._pseudo_label_scores(images, vocab, clip, predictions)
    resumed = _transductive_head(clip)
    resumed.load_state_dict(state)  # as a resumed run: the teacher comes from the checkpoint
    resumed.on_phase_change(TrainingPhase.SELF_TRAINING)
    resumed_scores = resumed.eval()._pseudo_label_scores(images, vocab, clip, predictions)
    torch.testing.assert_close(resumed_scores, teacher_scores, rtol=0, atol=0)
    online = _transductive_head(clip, recipe="online")
    assert online.teacher is None and "teacher_ready" not in online.state_dict()
