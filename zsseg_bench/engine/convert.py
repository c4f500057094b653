"""Checkpoints published with a method's official code, converted into suite checkpoints.

A *checkpoint format* describes how one official code base stores trained weights (mmseg's
``{"meta", "state_dict"}``, detectron2's ``{"model", ...}``) and how its tensors map onto the
suite's model. Every method registers its formats from its own package, with one call::

    register_checkpoint_format("zegclip", head="ZegCLIPHead", container="state_dict",
                               convert=convert_zegclip, source="ZiqinZhou66/ZegCLIP @ 9ba4bb5")

``convert(weights, model)`` receives the official tensors (``checkpoint[container]``) and the
suite's model built from the config (:class:`ZeroShotSegmentor`, on the CPU, the CLIP layer
loaded from ``MODEL.CLIP.WEIGHTS``) and returns a :class:`Converted`: the model's trainable state
under its own key names, and which official keys it used, compared with frozen weights, or
dropped (with the reason). :func:`convert_checkpoint` does the rest, the same for every format:

- the file must be a ``dict`` whose ``container`` entry maps names to tensors; anything else
  (a detectron2 file given as an mmseg format, a suite checkpoint) is a one-line
  :class:`~zsseg_bench.utils.errors.UserError` naming the keys found and the format that reads
  them;
- an official key the format neither used, checked nor dropped is an *unknown key*; a trainable
  tensor of the model the conversion did not produce is a *missing key*; a shape that differs
  from the model's is a *shape mismatch*: each is an error naming the keys;
- the result is written (atomically) as a suite checkpoint, the layout of
  :mod:`zsseg_bench.engine.checkpoint` (trainable weights only; ``meta.converted_from`` records
  the format, the file name and its SHA-256), which ``eval``, ``predict`` and ``speed`` load
  with ``--weights`` and ``train`` starts from with ``MODEL.WEIGHTS``.

Frozen weights inside an official checkpoint (e.g. the CLIP encoder that ZegCLIP saves with its
prompts) are not written: the suite builds them from ``MODEL.CLIP.WEIGHTS``. A format compares
them with the model's (:func:`check_frozen`), so a checkpoint trained from other CLIP weights
than the ones given is an error instead of silently different outputs.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from zsseg_bench.engine.checkpoint import CHECKPOINT_FORMAT, trainable_state_dict
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_save
from zsseg_bench.utils.state_dict import state_dict_mismatch

#: How many keys an error message names.
_NAMED = 5


@dataclass
class Converted:
    """What a format's ``convert`` returns.

    Attributes:
        state: the model's trainable state (its ``state_dict()`` key names).
        used: official keys whose tensors went into ``state``.
        checked: official keys compared with the model's frozen weights (and found equal).
        dropped: official key -> why the suite does not need it (e.g. never used by the
            official forward).
    """

    state: dict[str, torch.Tensor]
    used: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    dropped: dict[str, str] = field(default_factory=dict)


ConvertFn = Callable[[dict[str, torch.Tensor], nn.Module], Converted]


@dataclass(frozen=True)
class CheckpointFormat:
    """One official checkpoint format (see the module docstring).

    Attributes:
        name: the value of ``zsseg-bench convert --from``.
        head: the ``MODEL.HEAD.NAME`` the weights belong to.
        container: the top-level key of the official file that holds the tensors.
        convert: ``(weights, model) -> Converted``.
        source: the official code the format comes from (repository @ commit).
        description: one line for ``--help``.
        bare: whether a file that *is* the tensors (no ``container`` entry) is read too, as
            detectron2's ``DetectionCheckpointer`` reads it.
    """

    name: str
    head: str
    container: str
    convert: ConvertFn
    source: str = ""
    description: str = ""
    bare: bool = False


_FORMATS: dict[str, CheckpointFormat] = {}


def register_checkpoint_format(name: str, *, head: str, container: str, convert: ConvertFn,
                               source: str = "", description: str = "",
                               bare: bool = False) -> CheckpointFormat:
    """Registers an official checkpoint format under ``name`` (``convert --from name``).

    Registering a name twice with another converter is an error (two methods claiming one
    format); registering the same one again (a module imported twice) is a no-op.
    """
    fmt = CheckpointFormat(name, head, container, convert, source, description, bare)
    old = _FORMATS.get(name)
    if old is not None and old.convert is not convert:
        raise ValueError(f"checkpoint format {name!r} is already registered (by {old.head})")
    _FORMATS[name] = fmt
    return fmt


def checkpoint_formats() -> dict[str, CheckpointFormat]:
    """The registered formats by name (the CLI imports every installed project first)."""
    return dict(sorted(_FORMATS.items()))


def get_checkpoint_format(name: str) -> CheckpointFormat:
    """The format ``name``; an unknown name is a :class:`UserError` listing the known ones."""
    if name not in _FORMATS:
        known = ", ".join(checkpoint_formats()) or "(none: is the suite installed?)"
        raise UserError(f"--from {name}: unknown checkpoint format; known formats: {known}")
    return _FORMATS[name]


# ------------------------------------------------------------------------------ helpers
def _names(keys: Any) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:_NAMED]) + (", ..." if len(keys) > _NAMED else "")


def check_frozen(model_state: Mapping[str, torch.Tensor],
                 expected: Mapping[str, tuple[str, torch.Tensor]], what: str,
                 rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Checks that frozen tensors of an official checkpoint equal the model's.

    Args:
        model_state: the model's ``state_dict()`` (or the part holding the frozen weights).
        expected: model key -> (official key, official tensor).
        what: where the model's frozen weights come from, for the message (e.g.
            ``"MODEL.CLIP.WEIGHTS (/path/ViT-B-16.pt)"``).
        rtol, atol: ``torch.allclose`` tolerances.

    Raises:
        UserError: a key the model lacks, a shape or a value that differs (the keys named, with
            the largest difference).
    """
    missing = [o for k, (o, _) in expected.items() if k not in model_state]
    if missing:
        raise UserError(f"the model has no frozen weights for {len(missing)} official key(s) "
                        f"({_names(missing)}): check the config's architecture (MODEL.CLIP.NAME)")
    bad: dict[str, str] = {}
    for key, (official, value) in expected.items():
        mine = model_state[key]
        if tuple(value.shape) != tuple(mine.shape):
            bad[official] = f"shape {tuple(value.shape)} vs {tuple(mine.shape)}"
        elif not torch.allclose(value.float(), mine.float(), rtol=rtol, atol=atol):
            bad[official] = f"max |diff| {float((value.float() - mine.float()).abs().max()):.3g}"
    if bad:
        first = sorted(bad)[:_NAMED]
        raise UserError(f"{len(bad)} frozen tensor(s) of the checkpoint differ from {what} "
                        f"({'; '.join(f'{k}: {bad[k]}' for k in first)}"
                        f"{'; ...' if len(bad) > _NAMED else ''}): the checkpoint was trained from "
                        "other weights; pass the CLIP weights it was trained from")


def read_checkpoint(path: str, trust: bool = False) -> Any:
    """The object saved at ``path`` (``weights_only`` unless ``trust``), or a one-line error."""
    if not os.path.isfile(path):
        raise UserError(f"official checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        raise UserError(f"{path} holds Python objects beyond tensors and plain values "
                        f"({str(e).splitlines()[0][:160]}); if you trust the file, pass "
                        "--trust-source to read it with full pickle") from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {str(e).splitlines()[0][:200]} (is it a "
                        "checkpoint file?)") from e


def extract_weights(checkpoint: Any, fmt: CheckpointFormat, path: str) -> dict[str, torch.Tensor]:
    """``checkpoint[fmt.container]`` as a name -> tensor dict, or a one-line error."""
    if not isinstance(checkpoint, Mapping):
        raise UserError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict "
                        f"(--from {fmt.name} expects a dict with {fmt.container!r})")
    weights = checkpoint.get(fmt.container)
    if weights is None and fmt.bare and checkpoint and all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        weights = checkpoint
    if not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor)
                                                   for v in weights.values()):
        top = sorted(str(k) for k in checkpoint)
        hint = ""
        if isinstance(checkpoint.get("meta"), Mapping) and "format" in checkpoint["meta"] \
                and "model" in checkpoint:
            hint = "; it is a zsseg-bench checkpoint already (pass it to --weights as it is)"
        else:
            others = [f.name for f in checkpoint_formats().values()
                      if f.container != fmt.container and isinstance(checkpoint.get(f.container),
                                                                     Mapping)]
            if others:
                hint = f"; its layout is that of --from {' / '.join(others)}"
        raise UserError(f"{path} is not a {fmt.name} checkpoint: --from {fmt.name} reads the "
                        f"tensors under {fmt.container!r}, the file's top-level keys are "
                        f"{_names(top) or '(none)'}{hint}")
    return {str(k): v for k, v in weights.items()}


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_state(fmt: CheckpointFormat, weights: dict[str, torch.Tensor],
                  model: nn.Module) -> dict[str, torch.Tensor]:
    """Runs ``fmt.convert`` and checks its result strictly against ``model``.

    Returns:
        The model's trainable state (tensors in the model's dtypes).

    Raises:
        UserError: unknown official keys, missing trainable keys, shape mismatches.
    """
    result = fmt.convert(weights, model)
    handled = result.used | result.checked | set(result.dropped)
    unknown = sorted(set(weights) - handled)
    if unknown:
        raise UserError(f"unknown keys in the {fmt.name} checkpoint: {len(unknown)} "
                        f"({_names(unknown)}): not a checkpoint of the architecture the config "
                        f"describes (MODEL.HEAD.NAME {fmt.head}), or another method's file")
    # Trainable tensors are required; frozen learned ones may come too (e.g. zsseg's prompts
    # when the config freezes them), as a suite checkpoint may hold them.
    target = model.state_dict()
    problems = state_dict_mismatch(result.state, target, required=trainable_state_dict(model))
    if problems:
        raise UserError(f"the {fmt.name} checkpoint does not fit the model built from the config "
                        f"({problems}): check that the config matches the official config the "
                        "checkpoint was trained with (e.g. the number of prompt tokens)")
    return {k: v.detach().to(target[k].dtype).contiguous() for k, v in result.state.items()}


def convert_checkpoint(cfg: Any, format_name: str, source: str, output: str,
                       trust_source: bool = False) -> dict[str, Any]:
    """Converts the official checkpoint ``source`` into a suite checkpoint at ``output``.

    Args:
        cfg: the suite config the weights are for (its ``MODEL.HEAD.NAME`` must be the format's
            head; the CLIP layer is built from ``MODEL.CLIP.WEIGHTS`` to check frozen weights).
        format_name: a registered format (``--from``).
        source: the official file.
        output: where to write the suite checkpoint.
        trust_source: read ``source`` with full pickle instead of ``weights_only``.

    Returns:
        The checkpoint's ``meta`` entry.
    """
    from zsseg_bench.modeling import build_model

    fmt = get_checkpoint_format(format_name)
    if cfg.MODEL.HEAD.NAME != fmt.head:
        raise UserError(f"--from {fmt.name} converts weights of {fmt.head}, but the config "
                        f"builds {cfg.MODEL.HEAD.NAME} (MODEL.HEAD.NAME): pass the method's "
                        "config, e.g. the paper config the checkpoint was trained with")
    if os.path.abspath(source) == os.path.abspath(output):
        raise UserError("--output must not be the official checkpoint itself")
    checkpoint = read_checkpoint(source, trust_source)
    weights = extract_weights(checkpoint, fmt, source)
    if cfg.MODEL.DEVICE != "cpu":
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.DEVICE = "cpu"
        cfg.freeze()
    model = build_model(cfg)
    state = convert_state(fmt, weights, model)
    meta: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "head": fmt.head,
        "converted_from": {"format": fmt.name, "source": fmt.source,
                           "file": os.path.basename(source), "sha256": _sha256(source)},
    }
    atomic_save({"model": state, "meta": meta}, output)
    return meta
