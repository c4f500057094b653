"""Checkpoints of the official zsseg.baseline code -> the two-stage head's weights.

The official code (MendelXu/zsseg.baseline @ d77c3af, detectron2) saves the whole
``ZeroShotMaskFormer`` as ``{"model": state_dict, ...}`` (detectron2's ``Checkpointer``). Its
``model`` holds

- the learned tensors, renamed into ``TwoStageHead``'s (under ``head.``):

  - ``backbone.*`` -> ``backbone.*`` (detectron2's ResNet layout, the same names:
    :mod:`.detectron2_resnet`; the FrozenBN statistics included);
  - ``sem_seg_head.pixel_decoder.`` (``BasePixelDecoder``; its features sorted by stride, so
    ``adapter_i`` / ``layer_i`` belong to ``res{i+1}`` and ``layer_4`` to ``res5``):
    ``adapter_i.weight`` / ``adapter_i.norm.*`` -> ``pixel_decoder.lateral.res{i+1}.0.weight`` /
    ``.1.*``; ``layer_i.weight`` / ``layer_i.norm.*`` -> ``pixel_decoder.output.res{i+1}.0.weight``
    / ``.1.*``; ``mask_features.*`` -> ``pixel_decoder.mask_features.*``;
  - ``sem_seg_head.predictor.`` (``ZeroShotTransformerPredictor``): ``query_embed`` ->
    ``decoder.query_pos``; ``input_proj`` -> ``decoder.input_proj.0``;
    ``transformer.decoder.layers.i.``: ``self_attn`` / ``norm1`` -> ``decoder.layers.i.self.body``
    / ``.self.norm``, ``multihead_attn`` / ``norm2`` -> ``.cross.body`` / ``.cross.norm``,
    ``linear1`` / ``linear2`` / ``norm3`` -> ``.ffn.body.0`` / ``.ffn.body.3`` / ``.ffn.norm``;
    ``transformer.decoder.norm`` -> ``decoder.decoder_norm``; ``class_embed`` / ``mask_embed`` ->
    ``decoder.class_embed`` / ``decoder.mask_embed``;
  - ``clip_adapter.non_object_embedding`` (the query classifier's "void" text) ->
    ``void_embedding.weight``;
- the frozen CLIP (``clip_adapter.clip_model.*``, OpenAI's names, which open_clip keeps): compared
  with the model's CLIP layer (``MODEL.CLIP.WEIGHTS``), not written;
- constants, dropped: ``clip_adapter.pixel_mean`` / ``pixel_std`` (CLIP's normalisation),
  ``criterion.empty_weight`` (the no-object weight, ``LOSS.NO_OBJECT_WEIGHT``).

Learned prompts (``PROMPT_LEARNER "learnable"``, zsseg's released zero-shot model): the
``prompt_learner.prefix_prompt`` / ``suffix_prompt`` of ``clip_adapter`` (the query classifier and
the CLIP crops share them: ``MODEL.TWO_STAGE.PROMPT_LEARNER.FOR both``) or of
``_region_clip_adapter`` (``SEPERATE_ADAPTER True``, learned for the crops only: ``FOR crops``)
-> ``prompt_learner.*``; their ``start/dot/end/pad_signal`` buffers (token embeddings of CLIP's)
are compared with the model's CLIP; the separate adapter's ``non_object_embedding`` is dropped
(zsseg drops the crops' non-object score before their softmax), its CLIP compared, its constants
dropped. A separate adapter whose crop texts come from templates cannot be expressed (the suite
has one template list): an error.

:func:`convert_zsseg` is the mapping, registered as the checkpoint format ``zsseg``
(``zsseg-bench convert --from zsseg``: :mod:`zsseg_bench.engine.convert` adds the strict checks);
:func:`converted_state` runs both on a checkpoint already loaded.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from zsseg_bench.engine.convert import (
    Converted,
    convert_state,
    extract_weights,
    register_checkpoint_format,
)
from zsseg_bench.utils.errors import UserError

#: Official names -> the head's (regular expressions, applied in order; ``head.`` is prepended).
_RULES: tuple[tuple[str, str], ...] = (
    (r"^backbone\.", "backbone."),
    (r"^sem_seg_head\.pixel_decoder\.mask_features\.", "pixel_decoder.mask_features."),
    (r"^sem_seg_head\.predictor\.query_embed\.", "decoder.query_pos."),
    (r"^sem_seg_head\.predictor\.input_proj\.", "decoder.input_proj.0."),
    (r"^sem_seg_head\.predictor\.transformer\.decoder\.layers\.(\d+)\.self_attn\.",
     r"decoder.layers.\1.self.body."),
    (r"^sem_seg_head\.predictor\.transformer\.decoder\.layers\.(\d+)\.norm1\.",
     r"decoder.layers.\1.self.norm."),
    (r"^sem_seg_head\.predictor\.transformer\.decoder\.layers\.(\d+)\.multihead_attn\.",
     r"decoder.layers.\1.cross.body."),
    (r"^sem_seg_head\.predictor\.transformer\.decoder\.layers\.(\d+)\.norm2\.",
     r"decoder.layers.\1.cross.norm."),
    (r"^sem_seg_head\.predictor\.transformer\.decoder\.layers\.(\d+)\.linear1\.",
     r"decoder.layers.\1.ffn.body.0."),
    (r"^sem_seg_head\.predictor\.transformer\.decoder\.layers\.(\d+)\.linear2\.",
     r"decoder.layers.\1.ffn.body.3."),
    (r"^sem_seg_head\.predictor\.transformer\.decoder\.layers\.(\d+)\.norm3\.",
     r"decoder.layers.\1.ffn.norm."),
    (r"^sem_seg_head\.predictor\.transformer\.decoder\.norm\.", "decoder.decoder_norm."),
    (r"^sem_seg_head\.predictor\.(class_embed|mask_embed)\.", r"decoder.\1."),
    (r"^clip_adapter\.non_object_embedding$", "void_embedding.weight"),
    (r"^(?:clip_adapter|_region_clip_adapter)\.prompt_learner\.(prefix_prompt|suffix_prompt)$",
     r"prompt_learner.\1"),
)
#: ``BasePixelDecoder``'s convs and their GroupNorms: (adapter|layer, level, norm., rest).
_PIXEL_DECODER = re.compile(r"^sem_seg_head\.pixel_decoder\.(adapter|layer)_(\d)\.(norm\.)?(.+)$")
#: Official constants the suite does not store.
_CONSTANTS = {
    "clip_adapter.pixel_mean": "CLIP's pixel mean (a constant of the crops)",
    "clip_adapter.pixel_std": "CLIP's pixel std (a constant of the crops)",
    "_region_clip_adapter.pixel_mean": "CLIP's pixel mean (a constant of the crops)",
    "_region_clip_adapter.pixel_std": "CLIP's pixel std (a constant of the crops)",
    "_region_clip_adapter.non_object_embedding": "unused: zsseg drops the crops' non-object "
                                                 "score before their softmax",
    "criterion.empty_weight": "the no-object weight of the loss (MODEL.TWO_STAGE.LOSS."
                              "NO_OBJECT_WEIGHT)",
}
_CLIP = re.compile(r"^(?:clip_adapter|_region_clip_adapter)\.clip_model\.(.+)$")
#: zsseg's prompt-learner buffers: positions of CLIP's tokenisation of "X." (text_prompt.py).
_SIGNALS = re.compile(r"^(?:clip_adapter|_region_clip_adapter)\.prompt_learner\."
                      r"(start|dot|end|pad)_signal$")
_SIGNAL_POSITION = {"start": 0, "dot": 2, "end": 3, "pad": 4}


def rename(key: str) -> str | None:
    """The head's name (``head.`` included) of an official learned tensor, or None."""
    m = _PIXEL_DECODER.match(key)
    if m:  # adapter_i / layer_i belong to res{i+1} (BasePixelDecoder sorts its features)
        kind, level, norm, rest = m.groups()
        part = "lateral" if kind == "adapter" else "output"
        return f"head.pixel_decoder.{part}.res{int(level) + 1}.{1 if norm else 0}.{rest}"
    for pattern, repl in _RULES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return "head." + new
    return None


def convert_zsseg(weights: dict[str, torch.Tensor], model: nn.Module) -> Converted:
    """Maps an official checkpoint's ``model`` tensors onto ``model`` (a ``ZeroShotSegmentor``
    with a ``TwoStageHead``; module docstring). Keys no rule knows are left out of every set:
    the caller reports them as unknown.

    Raises:
        UserError: frozen CLIP tensors that differ from the model's CLIP layer.
    """
    _check_adapters(weights, model.head)
    out = Converted(state={})
    clip = model.clip
    clip_state = clip.model.state_dict()
    with torch.no_grad():
        special = clip.model.token_embedding(clip.tokenize(["X."]))[0]
    bad = []
    for key, value in weights.items():
        new = rename(key)
        clip_key, signal = _CLIP.match(key), _SIGNALS.match(key)
        if new is not None:
            out.state[new] = value
            out.used.add(key)
        elif key in _CONSTANTS:
            out.dropped[key] = _CONSTANTS[key]
        elif clip_key and clip_key.group(1) in ("input_resolution", "context_length",
                                                 "vocab_size"):
            out.dropped[key] = "metadata of OpenAI's CLIP archive"
        elif clip_key or signal:
            mine = (clip_state.get(clip_key.group(1)) if clip_key
                    else special[_SIGNAL_POSITION[signal.group(1)]][None])
            if mine is None or mine.shape != value.shape or not torch.allclose(
                    mine.float(), value.float(), rtol=1e-3, atol=1e-5):
                bad.append(key)
            out.checked.add(key)
    if bad:
        raise UserError(f"{len(bad)} frozen CLIP tensor(s) of the zsseg checkpoint differ from "
                        f"MODEL.CLIP.WEIGHTS ({', '.join(sorted(bad)[:5])}"
                        f"{', ...' if len(bad) > 5 else ''}): pass the CLIP weights it was "
                        "trained with (zsseg: OpenAI's ViT-B/16)")
    return out


def _check_adapters(weights: dict[str, torch.Tensor], head: nn.Module) -> None:
    """The official checkpoint's CLIP adapters must be the head's text configuration."""
    learner = getattr(head, "prompt_learner", None)
    learned_for = getattr(head, "learned_prompts_for", "both")
    separate = any(k.startswith("_region_clip_adapter.") for k in weights)
    learned = {k.split(".")[0] for k in weights if ".prompt_learner." in k}
    setting = "MODEL.TWO_STAGE.PROMPT_LEARNER"
    if separate and "_region_clip_adapter" not in learned:
        raise UserError("the zsseg checkpoint has a separate CLIP-crop adapter with templates "
                        "(SEPERATE_ADAPTER True, REGION_CLIP_ADAPTER.PROMPT_LEARNER not "
                        "learnable): the two-stage head has one template list for both "
                        "classifiers and cannot express it")
    if learned and learner is None:
        raise UserError(f"the zsseg checkpoint holds learned prompts ({', '.join(sorted(learned))}"
                        f".prompt_learner): set {setting}.ENABLED True (and FOR "
                        f"{'crops' if separate else 'both'})")
    if learner is not None and not learned:
        raise UserError(f"the zsseg checkpoint holds no learned prompts: set {setting}.ENABLED "
                        "False (templates: MODEL.CLIP.TEMPLATES)")
    expected = "crops" if separate else "both"
    if learned and learned_for != expected:
        where = "the CLIP crops only (SEPERATE_ADAPTER True)" if separate else "both classifiers"
        raise UserError(f"the zsseg checkpoint learned prompts for {where}: set {setting}.FOR "
                        f"{expected}")


ZSSEG_FORMAT = register_checkpoint_format(
    "zsseg", head="TwoStageHead", container="model", convert=convert_zsseg,
    source="MendelXu/zsseg.baseline @ d77c3af",
    description="the official zsseg.baseline code's detectron2 checkpoints (model_final.pth, "
                "the released models)")


def converted_state(checkpoint: Any, model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable state of ``model`` from a loaded official checkpoint (``{"model": ...}``),
    with the checks of ``zsseg-bench convert``: a file of another layout, an unknown or a missing
    key, or a shape mismatch, is a one-line :class:`UserError`."""
    return convert_state(ZSSEG_FORMAT, extract_weights(checkpoint, ZSSEG_FORMAT, "the checkpoint"),
                         model)
