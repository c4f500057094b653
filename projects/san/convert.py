"""Checkpoints of the official SAN code -> the suite's ``SANHead`` weights.

The released models (MendelXu/SAN @ e19262d, README.md "Pretrained Weights":
``san_vit_b_16.pth``, ``san_vit_large_14.pth`` on huggingface.co/Mendel192/san) are detectron2
checkpoints: the ``SAN`` module's state dict under ``"model"`` (a plain state dict is read as
well, as detectron2's ``DetectionCheckpointer`` does). One file holds the whole OpenAI CLIP (both
towers) beside SAN's own weights. Key families (san/model/san.py:50-57, 100-135):

============================================  ====================================================
official                                      suite
============================================  ====================================================
``side_adapter_network.vit_model.*``          ``head.side_adapter.vit.*`` (timm's names kept)
``side_adapter_network.query_embed``,         ``head.side_adapter.query_embed``, ``.query_pos_
``.query_pos_embed``                          embed``
``side_adapter_network.fusion_layers.         ``head.side_adapter.fusion.layer_i.norm`` / ``.proj``
layer_i.input_proj.0`` / ``.1``
``side_adapter_network.mask_decoder.*``       ``head.side_adapter.decoder.*``
``clip_visual_extractor.positional_embedding``  ``head.clip_pos_embed`` (SAN trains it)
``ov_classifier.bg_embed``                    ``head.bg_embed``
other ``clip_visual_extractor.*``,            compared with the frozen CLIP layer built from
``clip_rec_head.*`` (CLIP visual blocks       ``MODEL.CLIP.WEIGHTS`` (``clip_rec_head.resblocks.i``
``FEATURE_LAST_LAYER_IDX + i``),              = visual block ``FEATURE_LAST_LAYER_IDX + i``): a
``ov_classifier.*`` (the text tower)          difference is an error, never silently other outputs
``criterion.empty_weight``                    dropped (depends on the training vocabulary only)
============================================  ====================================================

:func:`convert_san` is registered as the checkpoint format ``san`` of ``zsseg-bench convert``
(:mod:`zsseg_bench.engine.convert` adds the strict checks); :func:`convert_san_checkpoint` runs
both on a file, from Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from zsseg_bench.engine.convert import (
    Converted,
    convert_state,
    extract_weights,
    read_checkpoint,
    register_checkpoint_format,
)
from zsseg_bench.utils.errors import UserError

#: Where the official code and its released checkpoints come from.
SOURCE = "MendelXu/SAN @ e19262d1a23992fc2cef934d6756b89ff50fe5c3"

#: official prefix -> suite prefix of the weights SAN trains (renamed one to one).
_TRAINABLE = (
    ("side_adapter_network.vit_model.", "head.side_adapter.vit."),
    ("side_adapter_network.query_embed", "head.side_adapter.query_embed"),
    ("side_adapter_network.query_pos_embed", "head.side_adapter.query_pos_embed"),
    ("side_adapter_network.mask_decoder.", "head.side_adapter.decoder."),
    ("clip_visual_extractor.positional_embedding", "head.clip_pos_embed"),
    ("ov_classifier.bg_embed", "head.bg_embed"),
)
_FUSION = re.compile(
    r"^side_adapter_network\.fusion_layers\.(layer_\d+)\.input_proj\.([01])\.(.+)$")
_REC_BLOCK = re.compile(r"^clip_rec_head\.resblocks\.(\d+)\.(.+)$")
_DROPPED = {"criterion.empty_weight": "the no-object weight vector of the official criterion: "
                                      "its size is the training vocabulary's, the suite builds it "
                                      "per batch"}


def suite_key(official: str, first_rec_block: int) -> tuple[str, bool] | None:
    """(suite key, trainable) of an official key; None for a key the suite does not map."""
    for src, dst in _TRAINABLE:
        if official == src or (src.endswith(".") and official.startswith(src)):
            return dst + official[len(src):], True
    match = _FUSION.match(official)
    if match:
        part = "norm" if match.group(2) == "0" else "proj"
        return f"head.side_adapter.fusion.{match.group(1)}.{part}.{match.group(3)}", True
    match = _REC_BLOCK.match(official)
    if match:
        block = first_rec_block + int(match.group(1))
        return f"clip.model.visual.transformer.resblocks.{block}.{match.group(2)}", False
    if official.startswith("clip_visual_extractor.resblocks."):
        return "clip.model.visual.transformer." + official[len("clip_visual_extractor."):], False
    for src in ("clip_visual_extractor.", "clip_rec_head."):
        if official.startswith(src):
            return "clip.model.visual." + official[len(src):], False
    if official.startswith("ov_classifier."):
        return "clip.model." + official[len("ov_classifier."):], False
    return None


def convert_san(weights: Mapping[str, torch.Tensor], model: nn.Module) -> Converted:
    """Renames SAN's trainable weights for ``model`` (a ``ZeroShotSegmentor`` with a
    ``SANHead``) and compares the frozen CLIP weights of the checkpoint with the model's.

    Raises:
        UserError: a frozen tensor missing from the model, of another shape or value.
    """
    first = int(model.head.first_rec_block)
    frozen = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    out = Converted(state={})
    bad: list[str] = []
    for key, value in weights.items():
        if key in _DROPPED:
            out.dropped[key] = _DROPPED[key]
            continue
        mapped = suite_key(key, first)
        if mapped is None:
            continue  # an unknown key: the caller reports it
        name, trainable = mapped
        if trainable:
            out.state[name] = value
            out.used.add(key)
            continue
        mine = frozen.get(name)
        if mine is None or tuple(mine.shape) != tuple(value.shape):
            bad.append(f"{key}: {'absent' if mine is None else f'shape {tuple(mine.shape)}'} in "
                       f"the model, {tuple(value.shape)} in the checkpoint")
        elif not torch.allclose(mine.float(), value.float(), rtol=1e-5, atol=1e-6):
            bad.append(f"{key}: max |diff| {float((mine.float() - value.float()).abs().max()):.3g}")
        else:
            out.checked.add(key)
    if bad:
        raise UserError(f"{len(bad)} frozen CLIP tensor(s) of the SAN checkpoint differ from the "
                        f"model's CLIP (MODEL.CLIP.NAME / WEIGHTS): {'; '.join(bad[:3])}"
                        f"{'; ...' if len(bad) > 3 else ''}. Pass the CLIP the checkpoint was "
                        "trained from (OpenAI's ViT-B/16 or ViT-L/14-336, QUICK_GELU True)")
    return out


SAN_FORMAT = register_checkpoint_format(
    "san", head="SANHead", container="model", convert=convert_san, source=SOURCE, bare=True,
    description="the official SAN code's detectron2 checkpoints (the released san_vit_b_16.pth, "
                "san_vit_large_14.pth)")


def convert_san_checkpoint(path: str, model: nn.Module, trust: bool = False
                           ) -> dict[str, torch.Tensor]:
    """The trainable state of ``model`` from the official checkpoint at ``path``, with the
    checks of ``zsseg-bench convert --from san``. Load it with
    ``model.load_state_dict(state, strict=False)``.

    Raises:
        UserError: unreadable file or another layout, unknown keys, missing keys, shape
            mismatches, frozen CLIP weights other than the model's.
    """
    weights = extract_weights(read_checkpoint(path, trust), SAN_FORMAT, path)
    return convert_state(SAN_FORMAT, weights, model)
