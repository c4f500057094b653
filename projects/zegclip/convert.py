"""``zsseg-bench convert --from zegclip``: checkpoints of the official ZegCLIP code.

The official code (ZiqinZhou66/ZegCLIP @ 9ba4bb5, mmseg 0.24) saves the whole segmentor,
``{"meta", "state_dict", "optimizer"}`` (mmcv's ``save_checkpoint``). Its ``state_dict`` holds

- the learned tensors, renamed into ``ZegCLIPHead``'s (official ``models/backbone/img_encoder.py``
  and ``models/decode_heads/decode_seg.py`` -> suite, under ``head.``):

  - ``backbone.prompt_embeddings`` (layer 0) and ``backbone.deep_prompt_embeddings`` (layers
    1..11), concatenated -> ``prompts.embeddings`` (one row per layer);
  - ``backbone.prompt_proj.*`` / ``backbone.prompt_norm.*`` -> ``prompts.proj.*`` /
    ``prompts.norm.*``;
  - ``decode_head.q_proj.*`` -> ``descriptor.proj.*``;
  - ``decode_head.input_proj_1.*`` / ``proj_norm_1.*`` -> ``input_proj.0.*`` / ``input_proj.1.*``
    (only with the official ``use_proj=True``; the paper configs have ``use_proj=False``);
  - ``decode_head.decoder_1.layers.i.``: ``multihead_attn.{q,k,v,proj}`` ->
    ``decoder.layers.i.cross_attn.{q,k,v,proj}``; ``linear1`` / ``linear2`` -> ``ffn.0`` /
    ``ffn.3``; ``norm2`` / ``norm3`` -> ``norm2`` / ``norm3``;
- frozen CLIP weights: ``backbone.*`` (the image encoder, its positional embedding already
  resized bilinearly to the 32 x 32 grid of 512 px inputs) and ``text_encoder.*``. They are
  compared with the model's CLIP layer (``MODEL.CLIP.WEIGHTS``; the positional embedding with
  the pretrained grid resized the official way) and not written;
- tensors the official forward never uses, dropped: each decoder layer's ``self_attn.*`` and
  ``norm1.*`` (``TPN_DecoderLayer`` inherits ``nn.TransformerDecoderLayer``, which registers
  them, but its ``forward`` skips them: 18 tensors for 3 layers) and the loss constant
  ``decode_head.loss_decode.criterion.empty_weight``.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from zsseg_bench.engine.convert import Converted, check_frozen, register_checkpoint_format
from zsseg_bench.utils.errors import UserError

#: Official decode-head names -> the head's (regular expressions, applied in order).
_HEAD_RULES: tuple[tuple[str, str], ...] = (
    (r"^decode_head\.q_proj\.", "descriptor.proj."),
    (r"^decode_head\.input_proj_1\.", "input_proj.0."),
    (r"^decode_head\.proj_norm_1\.", "input_proj.1."),
    (r"^decode_head\.decoder_1\.layers\.(\d+)\.multihead_attn\.", r"decoder.layers.\1.cross_attn."),
    (r"^decode_head\.decoder_1\.layers\.(\d+)\.linear1\.", r"decoder.layers.\1.ffn.0."),
    (r"^decode_head\.decoder_1\.layers\.(\d+)\.linear2\.", r"decoder.layers.\1.ffn.3."),
    (r"^decode_head\.decoder_1\.layers\.(\d+)\.(norm2|norm3)\.", r"decoder.layers.\1.\2."),
    (r"^backbone\.prompt_proj\.", "prompts.proj."),
    (r"^backbone\.prompt_norm\.", "prompts.norm."),
)
#: Official tensors the official forward never uses.
_UNUSED: tuple[tuple[str, str], ...] = (
    (r"^decode_head\.decoder_1\.layers\.\d+\.(self_attn|norm1)\.",
     "registered by nn.TransformerDecoderLayer, never called by TPN_DecoderLayer.forward"),
    (r"^decode_head\.loss_decode\.criterion\.empty_weight$",
     "a constant of the loss (no-object weight), unused by ZegCLIP's mask losses"),
)
_PROMPT_FIRST, _PROMPT_DEEP = "backbone.prompt_embeddings", "backbone.deep_prompt_embeddings"
#: Frozen CLIP tensors: official prefix -> the open_clip model's prefix (OpenAI names).
_FROZEN_PREFIXES = (("backbone.", "visual."), ("text_encoder.", ""))


def map_trainable(weights: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], set[str]]:
    """The official learned tensors under ``ZegCLIPHead``'s names (without the ``head.``
    prefix), and the official keys used. Keys no rule matches are left out (the caller decides
    whether they are frozen, unused or unknown). Works on gradients as on weights.
    """
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key, value in weights.items():
        for pattern, repl in _HEAD_RULES:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value
                used.add(key)
                break
    if _PROMPT_FIRST in weights or _PROMPT_DEEP in weights:
        parts = [weights[k] for k in (_PROMPT_FIRST, _PROMPT_DEEP) if k in weights]
        if len({tuple(p.shape[1:]) for p in parts}) > 1:
            raise UserError(f"{_PROMPT_FIRST} {tuple(parts[0].shape)} and {_PROMPT_DEEP} "
                            f"{tuple(parts[1].shape)} disagree in tokens or width: not a "
                            "checkpoint of the official VPTCLIPVisionTransformer")
        out["prompts.embeddings"] = torch.cat(parts, dim=0)
        used |= {k for k in (_PROMPT_FIRST, _PROMPT_DEEP) if k in weights}
    return out, used


def unused_keys(keys: set[str]) -> dict[str, str]:
    """Official keys the official forward never uses -> why."""
    return {k: why for k in keys for pattern, why in _UNUSED if re.search(pattern, k)}


def _frozen_expected(weights: dict[str, torch.Tensor], clip_keys: set[str],
                     skip: set[str]) -> dict[str, tuple[str, torch.Tensor]]:
    """open_clip key -> (official key, tensor) for the official tensors that name a tensor of
    the suite's CLIP (others stay unhandled: unknown keys)."""
    expected: dict[str, tuple[str, torch.Tensor]] = {}
    for key, value in weights.items():
        if key in skip:
            continue
        for prefix, mine in _FROZEN_PREFIXES:
            if key.startswith(prefix) and mine + key[len(prefix):] in clip_keys:
                expected[mine + key[len(prefix):]] = (key, value)
                break
    return expected


def _official_positional_embedding(clip: nn.Module, stored: torch.Tensor) -> torch.Tensor:
    """The pretrained positional embedding resized to the grid ``stored`` has (the official
    ``init_weights`` resizes 14 x 14 -> 32 x 32 bilinearly once; the suite resizes on the fly
    with ``MODEL.CLIP.POS_EMBED_INTERPOLATION``)."""
    side = math.isqrt(stored.shape[0] - 1)
    if side * side != stored.shape[0] - 1:
        raise UserError(f"backbone.positional_embedding has {stored.shape[0]} rows: not 1 + a "
                        "square grid")
    if clip.pos_interpolation != "bilinear":
        raise UserError("the official ZegCLIP resizes CLIP's positional embedding bilinearly, "
                        f"the config with {clip.pos_interpolation!r}: set "
                        "MODEL.CLIP.POS_EMBED_INTERPOLATION bilinear (as the paper configs do)")
    return clip.positional_embedding(side, side).detach()


def convert_zegclip(weights: dict[str, torch.Tensor], model: nn.Module) -> Converted:
    """The ``zegclip`` format's conversion (see the module docstring)."""
    head_state, used = map_trainable(weights)
    dropped = unused_keys(set(weights) - used)
    clip = model.clip
    clip_state = dict(clip.model.state_dict())
    expected = _frozen_expected(weights, set(clip_state), used | set(dropped))
    pos_key = "visual.positional_embedding"
    if pos_key in expected:
        official, value = expected[pos_key]
        clip_state[pos_key] = _official_positional_embedding(clip, value)
    check_frozen(clip_state, expected,
                 f"the CLIP weights of the config (MODEL.CLIP.WEIGHTS {clip.weights or 'random'})")
    return Converted(state={f"head.{k}": v for k, v in head_state.items()}, used=used,
                     checked={official for official, _ in expected.values()}, dropped=dropped)


register_checkpoint_format(
    "zegclip", head="ZegCLIPHead", container="state_dict", convert=convert_zegclip,
    source="ZiqinZhou66/ZegCLIP @ 9ba4bb5",
    description="the official ZegCLIP code's mmseg checkpoints (iter_*.pth, the released "
                "models)")
