"""Checkpoints of trained models: trainable parameters only, written atomically, loaded safely.

A checkpoint (``model_XXXXXXX.pth``, ``model_final.pth`` in ``OUTPUT_DIR``) holds

- ``model``: the *trainable* state: parameters with ``requires_grad=True`` plus the buffers of
  modules that are not entirely frozen (e.g. a head's BatchNorm statistics). Frozen weights
  (the CLIP layer) are left out: they come from their own files (``MODEL.CLIP.WEIGHTS``) when the
  model is built, so a checkpoint of ZegCLIP is megabytes, not the whole ViT;
- ``optimizer``, ``scheduler``, ``grad_scaler``, ``ema`` (the weight average of
  ``MODEL_EMA``): their state dicts;
- ``iteration`` (the last completed one, 0-based), ``rng`` (python / numpy / torch / cuda
  states of every rank), ``sampler`` (the training stream's position), ``train_time_s``;
- ``meta``: format version, head name, world size.

Files are written to a temporary name and renamed (``os.replace``), and ``last_checkpoint`` is
updated the same way after the file is complete, so a kill (even SIGKILL) leaves either the old
or the new checkpoint, never a truncated one. Loading uses ``torch.load(weights_only=True)``:
a checkpoint holds tensors and plain Python values only, nothing that runs code when read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
from typing import Any

import torch
from fvcore.common.checkpoint import Checkpointer, PeriodicCheckpointer
from torch import nn

from zsseg_bench.engine.ema import load_checkpoint_average
from zsseg_bench.engine.rng import seed_all
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import PathManager, atomic_save, atomic_write_text
from zsseg_bench.utils.state_dict import state_dict_mismatch

logger = logging.getLogger(__name__)

#: Version of the checkpoint layout written by :class:`TrainableCheckpointer`.
CHECKPOINT_FORMAT = 1
LAST_CHECKPOINT = "last_checkpoint"
PERIODIC_NAME = re.compile(r"^model_(\d{7})\.pth$")
#: Temporary names of :func:`~zsseg_bench.utils.file_io.atomic_save` (``.<name>.<random>.tmp``).
_TEMP_NAME = re.compile(r"^\.(model_.*\.pth|last_checkpoint)\..*\.tmp$")


def frozen_prefixes(model: nn.Module) -> list[str]:
    """Names of the outermost submodules whose parameters are all frozen (e.g. ``"clip"``)."""
    out: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name == p or name.startswith(p + ".") for p in out):
            continue
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            out.append(name)
    return out


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` without frozen parameters and without the buffers of entirely
    frozen submodules."""
    frozen_params = {n for n, p in model.named_parameters() if not p.requires_grad}
    prefixes = frozen_prefixes(model)
    return {k: v for k, v in model.state_dict().items()
            if k not in frozen_params
            and not any(k.startswith(p + ".") for p in prefixes)}


class TrainableCheckpointer(Checkpointer):
    """fvcore's ``Checkpointer`` saving only the trainable state, atomically, and loading with
    ``weights_only=True``. Errors a user can fix (missing file, another model's checkpoint)
    raise :class:`~zsseg_bench.utils.errors.UserError`.

    Args:
        model: the model (a DDP wrapper is unwrapped).
        save_dir: where checkpoints and ``last_checkpoint`` live.
        save_to_disk: write files (only the main process under DDP).
        max_to_keep: keep the newest ``max_to_keep`` periodic checkpoints (None: all).
        **checkpointables: objects with ``state_dict``/``load_state_dict``.
    """

    def __init__(self, model: nn.Module, save_dir: str = "", *, save_to_disk: bool = True,
                 max_to_keep: int | None = None, expected_head: str | None = None,
                 **checkpointables: Any):
        """``expected_head``: when given, loading a checkpoint whose ``meta.head`` names another
        head (weights of another method) is a :class:`UserError`."""
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.path_manager = PathManager
        self.max_to_keep = max_to_keep
        self.expected_head = expected_head

    # ---------------------------------------------------------------------------------- save
    def save(self, name: str, **kwargs: Any) -> None:
        """Writes ``<save_dir>/<name>.pth`` atomically and points ``last_checkpoint`` at it."""
        if not self.save_dir or not self.save_to_disk:
            return
        data: dict[str, Any] = {"model": trainable_state_dict(self.model)}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        data.setdefault("meta", {})["format"] = CHECKPOINT_FORMAT
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        atomic_save(data, path)
        self.tag_last_checkpoint(basename)
        logger.info("Saved checkpoint %s", path)
        self.prune()

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        """Points ``last_checkpoint`` at ``last_filename_basename`` (atomically)."""
        atomic_write_text(os.path.join(self.save_dir, LAST_CHECKPOINT), last_filename_basename)

    def periodic_checkpoints(self) -> list[str]:
        """Paths of the ``model_XXXXXXX.pth`` files in ``save_dir``, oldest iteration first."""
        if not os.path.isdir(self.save_dir):
            return []
        names = sorted(n for n in os.listdir(self.save_dir) if PERIODIC_NAME.match(n))
        return [os.path.join(self.save_dir, n) for n in names]

    def prune(self) -> None:
        """Deletes all but the newest ``max_to_keep`` periodic checkpoints (never the one
        ``last_checkpoint`` names, never ``model_final.pth``)."""
        if not self.max_to_keep or not self.save_to_disk:
            return
        last = self.get_checkpoint_file()
        for path in self.periodic_checkpoints()[:-self.max_to_keep]:
            if os.path.abspath(path) != os.path.abspath(last):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    def remove_stale_temp_files(self) -> list[str]:
        """Deletes temporary files a killed run left behind (``.model_*.pth.*.tmp``, never a
        complete checkpoint); call before training in a run directory. Returns their names."""
        if not self.save_to_disk or not os.path.isdir(self.save_dir):
            return []
        stale = [n for n in os.listdir(self.save_dir) if _TEMP_NAME.match(n)]
        for name in stale:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.save_dir, name))
        return stale

    # ---------------------------------------------------------------------------------- load
    def load(self, path: str, checkpointables: list[str] | None = None) -> dict[str, Any]:
        """Loads ``path`` (a local file or any PathManager path): the model's trainable state,
        then the named checkpointables (all if None). Returns the remaining entries."""
        if not path:
            logger.info("No checkpoint given: trainable parameters start from initialisation")
            return {}
        local = path if os.path.isfile(path) else None
        if local is None:
            try:
                local = self.path_manager.get_local_path(path)
            except Exception:  # noqa: BLE001  (unknown prefix, missing file)
                local = None
        if local is None or not os.path.isfile(local):
            raise UserError(f"checkpoint not found: {path} (pass a model_*.pth written by "
                            "`zsseg-bench train`)")
        logger.info("Loading checkpoint %s", path)
        checkpoint = self._load_file(local)
        head = checkpoint.get("meta", {}).get("head")
        if self.expected_head and head and head != self.expected_head:
            raise UserError(f"{path} holds weights of {head}, but the config builds "
                            f"{self.expected_head} (MODEL.HEAD.NAME): pass the config the "
                            f"weights were trained with")
        self._load_model(checkpoint)
        for key in self.checkpointables if checkpointables is None else checkpointables:
            if key in checkpoint:
                self.checkpointables[key].load_state_dict(checkpoint.pop(key))
        checkpoint.pop("model", None)
        return checkpoint

    def _load_file(self, f: str) -> dict[str, Any]:
        try:
            checkpoint = torch.load(f, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
            raise UserError(f"cannot read checkpoint {f}: {str(e).splitlines()[0]} (is it a "
                            "model_*.pth written by `zsseg-bench train`?)") from e
        if not isinstance(checkpoint, dict) or "model" not in checkpoint:
            raise UserError(f"{f} is not a zsseg-bench checkpoint (no 'model' entry); pass a "
                            "model_*.pth written by `zsseg-bench train`, or convert a "
                            "checkpoint of a method's official code first (`zsseg-bench "
                            "convert --help`)")
        return checkpoint

    def _load_model(self, checkpoint: dict[str, Any]) -> None:  # type: ignore[override]
        state = checkpoint["model"]
        problems = state_dict_mismatch(state, self.model.state_dict(),
                                       required=trainable_state_dict(self.model))
        if problems:
            raise UserError(f"the checkpoint does not fit the model built from the config "
                            f"({problems}): was it trained with another MODEL.HEAD.NAME or "
                            "method config?")
        self.model.load_state_dict(state, strict=False)


class TrainingPeriodicCheckpointer(PeriodicCheckpointer):
    """fvcore's ``PeriodicCheckpointer`` on a :class:`TrainableCheckpointer`, whose own
    ``max_to_keep`` prunes by the files on disk (so also checkpoints of an earlier, resumed
    session)."""

    def __init__(self, checkpointer: TrainableCheckpointer, period: int,
                 max_iter: int | None = None):
        super().__init__(checkpointer, period, max_iter=max_iter, max_to_keep=None)

    def _periodic_due(self, iteration: int) -> bool:
        return self.period > 0 and (iteration + 1) % self.period == 0

    def _final_due(self, iteration: int) -> bool:
        return self.max_iter is not None and iteration >= self.max_iter - 1

    def is_due(self, iteration: int) -> bool:
        """Whether :meth:`step` saves anything after 0-based ``iteration``."""
        return self._periodic_due(iteration) or self._final_due(iteration)

    def save_iteration(self, iteration: int, **extra: Any) -> None:
        """Saves ``model_{iteration:07d}`` (0-based ``iteration``, completed) with ``extra``."""
        self.checkpointer.save(f"{self.file_prefix}_{iteration:07d}", iteration=iteration,
                               **extra)

    def step(self, iteration: int, **kwargs: Any) -> None:
        """Saves ``model_{iteration:07d}`` every ``period`` iterations and ``model_final`` at the
        last one (``iteration`` is 0-based and completed)."""
        iteration = int(iteration)
        if self._periodic_due(iteration):
            self.save_iteration(iteration, **kwargs)
        if self._final_due(iteration):
            self.checkpointer.save(f"{self.file_prefix}_final", iteration=iteration, **kwargs)


def build_model_with_weights(cfg: Any, weights: str) -> tuple[nn.Module, dict[str, Any]]:
    """Seeds every RNG with ``cfg.SEED``, builds the model of ``cfg`` and loads the trainable
    weights of the checkpoint ``weights`` into it (nothing is loaded when ``weights`` is empty):
    the weight average when the checkpoint holds one (``MODEL_EMA``), as evaluation in training.

    Seeding first makes the randomly initialised parts a checkpoint does not hold identical to
    those of training.

    Returns:
        The model as :func:`~zsseg_bench.modeling.build_model` returns it, and the checkpoint's
        other entries (``iteration``, ``train_time_s``, ...; empty without ``weights``).
    """
    from zsseg_bench.modeling import build_model

    seed_all(int(cfg.SEED))
    model = build_model(cfg)
    return model, load_model_weights(model, weights, cfg.MODEL.HEAD.NAME)


def load_model_weights(model: nn.Module, weights: str, head: str) -> dict[str, Any]:
    """Loads the trainable weights of the checkpoint ``weights`` into ``model`` (nothing when
    empty), the weight average when it holds one; ``head``: the ``MODEL.HEAD.NAME`` the
    checkpoint must be of. Returns the checkpoint's other entries."""
    if not weights:
        return {}
    checkpointer = TrainableCheckpointer(model, save_to_disk=False, expected_head=head)
    extra = checkpointer.load(weights, checkpointables=[])
    load_checkpoint_average(model, extra, weights)
    return extra
