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

:func:`convert_san` has the signature of a format's ``convert`` in the checkpoint-format
registry of ``zsseg-bench convert`` (``zsseg_bench/engine/convert.py``, issue 28); until that
registry is merged, :func:`convert_san_checkpoint` does its checks for this one format.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

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


@dataclass
class Converted:
    """What :func:`convert_san` returns (the fields of the registry's ``Converted``).

    Attributes:
        state: the model's trainable state (its ``state_dict()`` key names).
        used: official keys whose tensors went into ``state``.
        checked: official keys compared with the model's frozen weights (and found equal).
        dropped: official key -> why the suite does not need it.
    """

    state: dict[str, torch.Tensor]
    used: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    dropped: dict[str, str] = field(default_factory=dict)


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


def read_official_checkpoint(path: str, trust: bool = False) -> dict[str, torch.Tensor]:
    """The state dict of an official SAN checkpoint (``["model"]``, or the file itself)."""
    if not os.path.isfile(path):
        raise UserError(f"SAN checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        raise UserError(f"{path} holds Python objects beyond tensors; if you trust the file, "
                        "read it with trust=True (full pickle)") from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {str(e).splitlines()[0][:200]}") from e
    weights = obj.get("model", obj) if isinstance(obj, Mapping) else None
    if not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor)
                                                   for v in weights.values()):
        raise UserError(f"{path} is not a SAN checkpoint (a detectron2 file with the SAN "
                        "model's tensors under 'model')")
    return dict(weights)


def convert_san_checkpoint(path: str, model: nn.Module, trust: bool = False
                           ) -> dict[str, torch.Tensor]:
    """The trainable state of ``model`` from the official checkpoint at ``path``, checked
    strictly: every official key used, compared or dropped, every trainable tensor of the model
    given, shapes equal. Load it with ``model.load_state_dict(state, strict=False)``.

    Raises:
        UserError: unreadable file, unknown keys, missing keys, shape mismatches, frozen CLIP
            weights other than the model's.
    """
    from zsseg_bench.engine.checkpoint import trainable_state_dict

    weights = read_official_checkpoint(path, trust)
    result = convert_san(weights, model)
    unknown = sorted(set(weights) - result.used - result.checked - set(result.dropped))
    if unknown:
        raise UserError(f"{len(unknown)} unknown key(s) in the SAN checkpoint {path} "
                        f"({', '.join(unknown[:5])}): not a checkpoint of the official SAN")
    target = trainable_state_dict(model)
    missing = sorted(set(target) - set(result.state))
    shapes = [f"{k}: {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in result.state.items()
              if k in target and tuple(v.shape) != tuple(target[k].shape)]
    extra = sorted(set(result.state) - set(target))
    if missing or shapes or extra:
        raise UserError(f"the SAN checkpoint {path} does not fit the model built from the config "
                        f"(missing {missing[:5]}, shape mismatches {shapes[:3]}, not in the model "
                        f"{extra[:5]}): use the config of the checkpoint's official config "
                        "(configs/coco_stuff/san_*.yaml)")
    return {k: v.detach().to(target[k].dtype).contiguous() for k, v in result.state.items()}
