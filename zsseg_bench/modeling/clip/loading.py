"""Create open_clip models by name and load their weights from local files only.

Supported weight files (``MODEL.CLIP.WEIGHTS``, any path the suite's PathManager resolves,
including ``zsseg_bench://``):

- OpenAI ``.pt``: a TorchScript archive (as OpenAI distributes them) or a plain state dict.
- open_clip checkpoints: ``.bin`` / ``.pt`` / ``.pth`` state dicts (optionally under
  ``"state_dict"``, optionally with a DDP ``module.`` prefix) and ``.safetensors``.

Nothing is ever downloaded. A missing file, a file that is not a checkpoint, or a checkpoint
whose keys or shapes do not match the model raises :class:`~zsseg_bench.utils.errors.UserError`
naming the keys and where to get the right file.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import zipfile
from collections.abc import Iterator
from typing import Any

import open_clip
import torch
from torch import nn

from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import PathManager
from zsseg_bench.utils.state_dict import state_dict_mismatch

from .path_handler import MODEL_ZOO_DIR

logger = logging.getLogger(__name__)

#: Where to get the weights of the models people use most (printed in error messages).
WEIGHTS_HINTS = {
    "ViT-B-16": (
        "OpenAI ViT-B/16: https://openaipublic.azureedge.net/clip/models/"
        "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt "
        "(TorchScript archive), or the open_clip Hugging Face repo "
        "'timm/vit_base_patch16_clip_224.openai' (open_clip_pytorch_model.bin)"
    ),
    "ToyCLIP-ViT-P8": "the shipped toy CLIP: zsseg_bench://toy_clip/toy_clip.pt",
    "ToyCLIP-ViT-P8-CLS": "the shipped [CLS]-pooled toy CLIP: zsseg_bench://toy_clip_cls/toy_clip.pt",
}
#: Keys an OpenAI TorchScript archive carries that are not weights.
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")

_registered_zoo = False


def register_shipped_model_configs() -> None:
    """Register the open_clip model configs (``*.json``) shipped under ``model_zoo/*/``."""
    global _registered_zoo
    if _registered_zoo:
        return
    for sub in sorted(os.listdir(MODEL_ZOO_DIR)) if os.path.isdir(MODEL_ZOO_DIR) else []:
        d = os.path.join(MODEL_ZOO_DIR, sub)
        if os.path.isdir(d) and any(f.endswith(".json") for f in os.listdir(d)):
            open_clip.add_model_config(d)
    _registered_zoo = True


def _weights_hint(name: str) -> str:
    base = name.replace("-quickgelu", "")
    return WEIGHTS_HINTS.get(base, f"the open_clip pretrained weights of '{base}' "
                             f"(open_clip.list_pretrained() lists tags and hf-hub names)")


def create_open_clip_model(name: str, quick_gelu: bool = False) -> nn.Module:
    """A randomly initialised open_clip model of architecture ``name`` (no download, ever).

    Raises:
        UserError: ``name`` is neither an open_clip architecture nor a shipped config.
    """
    register_shipped_model_configs()
    known = open_clip.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5)
        raise UserError(
            f"unknown CLIP architecture {name!r} (MODEL.CLIP.NAME); "
            + (f"did you mean {close}? " if close else "")
            + "use an open_clip model name (open_clip.list_models()) or a config shipped under "
            "zsseg_bench/model_zoo/"
        )
    cfg = open_clip.get_model_config(name)
    if cfg.get("vision_cfg", {}).get("timm_model_name") or "attentional_pool" in cfg.get(
        "vision_cfg", {}
    ):
        raise UserError(f"CLIP architecture {name!r} is not a plain ViT; the CLIP layer supports "
                        "open_clip VisionTransformer towers only")
    with _quiet_random_init_warning():
        model = open_clip.create_model(name, pretrained=None, force_quick_gelu=quick_gelu,
                                       load_weights=False)
    if not isinstance(getattr(model, "visual", None), open_clip.transformer.VisionTransformer):
        raise UserError(f"CLIP architecture {name!r} has no open_clip VisionTransformer image "
                        "tower; the CLIP layer supports ViT models only")
    return model


class _DropRandomInitWarning(logging.Filter):
    """Drops open_clip's "No pretrained weights loaded ... initialized randomly" warning: the
    suite creates every CLIP at random on purpose and then loads its own weights (or stays
    random where MODEL.CLIP.RANDOM_INIT says so), so the message misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("No pretrained weights loaded")


@contextlib.contextmanager
def _quiet_random_init_warning() -> Iterator[None]:
    """While active, open_clip's random-initialisation warning (logged on the root logger)
    is dropped; every other record passes."""
    root = logging.getLogger()
    drop = _DropRandomInitWarning()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _is_torchscript_archive(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def read_checkpoint(path: str) -> tuple[dict[str, torch.Tensor], str]:
    """Read a CLIP checkpoint file into a state dict.

    Args:
        path: local path or any path PathManager resolves (``zsseg_bench://...``).

    Returns:
        (state dict, format) with format one of ``"openai-torchscript"``, ``"safetensors"``,
        ``"state-dict"``.

    Raises:
        UserError: the file does not exist or is not a checkpoint.
    """
    local = PathManager.get_local_path(path)
    if not os.path.isfile(local):
        raise UserError(f"CLIP weights file not found: {path!r} (MODEL.CLIP.WEIGHTS); give a "
                        "local file (weights are never downloaded)")
    if local.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return dict(load_file(local, device="cpu")), "safetensors"
        except Exception as e:  # noqa: BLE001 - any parse error is the user's file
            raise UserError(f"cannot read CLIP weights {path!r} as safetensors: {e}") from e
    if _is_torchscript_archive(local):
        try:
            sd = torch.jit.load(local, map_location="cpu").state_dict()
        except Exception as e:  # noqa: BLE001
            raise UserError(f"cannot read CLIP weights {path!r} as a TorchScript archive: "
                            f"{e}") from e
        sd = {k: v for k, v in sd.items() if k not in _OPENAI_EXTRA_KEYS}
        return sd, "openai-torchscript"
    try:
        obj = torch.load(local, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot read CLIP weights {path!r}: not a TorchScript archive, a "
                        f"safetensors file or a torch state dict ({type(e).__name__}: {e})") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"CLIP weights {path!r} hold no state dict of tensors")
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}
    sd = {k: v for k, v in sd.items() if k not in _OPENAI_EXTRA_KEYS}
    return sd, "state-dict"


def load_weights(model: nn.Module, name: str, path: str, sd: dict[str, torch.Tensor]) -> None:
    """Load state dict ``sd`` (read from ``path``) into open_clip ``model`` (architecture ``name``).

    The visual positional embedding of a checkpoint trained at another resolution is resized
    bicubically (logged). Every other mismatch is an error.

    Raises:
        UserError: missing, unexpected or wrongly shaped keys (named in the message, with a hint
            where to get the right file).
    """
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed

    if "positional_embedding" in sd and not hasattr(model, "positional_embedding"):
        sd = convert_to_custom_text_state_dict(sd)
    target = model.state_dict()
    if "logit_scale" in sd and "logit_scale" in target:
        sd["logit_scale"] = sd["logit_scale"].reshape(target["logit_scale"].shape)
    if "logit_bias" in target and "logit_bias" not in sd:
        sd["logit_bias"] = torch.zeros_like(target["logit_bias"])
    key = "visual.positional_embedding"
    if key in sd and key in target and sd[key].shape != target[key].shape:
        logger.info("resizing %s from %s to %s", key, tuple(sd[key].shape),
                    tuple(target[key].shape))
        resize_pos_embed(sd, model)
    problems = state_dict_mismatch(sd, target)
    if problems:
        raise UserError(
            f"CLIP weights {path!r} do not match architecture {name!r} (MODEL.CLIP.NAME): "
            f"{problems}. Check MODEL.CLIP.NAME, or get the right file: {_weights_hint(name)}"
        )
    model.load_state_dict(sd, strict=True)


def build_open_clip(name: str, weights: str, random_init: bool, quick_gelu: bool) -> nn.Module:
    """Create open_clip model ``name`` and load ``weights`` (or keep random init if asked).

    Args:
        name: open_clip architecture or shipped config name (``MODEL.CLIP.NAME``).
        weights: local checkpoint path (``MODEL.CLIP.WEIGHTS``).
        random_init: keep random weights (``MODEL.CLIP.RANDOM_INIT``; speed runs only).
        quick_gelu: use QuickGELU activations (``MODEL.CLIP.QUICK_GELU``); forced on for OpenAI
            TorchScript archives, which were trained with it.

    Raises:
        UserError: no weights and no random init, unknown architecture, bad or mismatched file.
    """
    if random_init:
        if weights:
            logger.warning("MODEL.CLIP.RANDOM_INIT is True: ignoring MODEL.CLIP.WEIGHTS=%r",
                           weights)
        return create_open_clip_model(name, quick_gelu=quick_gelu)
    if not weights:
        raise UserError(
            "MODEL.CLIP.WEIGHTS is empty: give a local CLIP checkpoint for "
            f"{name!r} ({_weights_hint(name)}), or set MODEL.CLIP.RANDOM_INIT True for speed runs"
        )
    sd, fmt = read_checkpoint(weights)
    if fmt == "openai-torchscript" and not quick_gelu:
        logger.info("OpenAI TorchScript archive: using QuickGELU activations as OpenAI trained")
        quick_gelu = True
    model = create_open_clip_model(name, quick_gelu=quick_gelu)
    load_weights(model, name, weights, sd)
    return model


def describe(model: Any) -> str:
    """One line describing an open_clip model (for logs)."""
    n = sum(p.numel() for p in model.parameters())
    return f"{type(model).__name__} with {n / 1e6:.2f}M parameters"
