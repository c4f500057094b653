"""Seeding (:func:`seed_all`) and the RNG states of every process: saved in checkpoints,
restored on resume, and kept untouched by evaluation (so evaluating during training never
changes the training that follows)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from zsseg_bench.utils import comm


def seed_all(seed: int) -> None:
    """Seeds python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _python_rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    return {"version": version, "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss}


def _set_python_rng_state(s: dict[str, Any]) -> None:
    random.setstate((s["version"], tuple(int(x) for x in s["state"].tolist()), s["gauss"]))


def _numpy_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_numpy_rng_state(s: dict[str, Any]) -> None:
    np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"],
                         s["has_gauss"], s["gauss"]))


def get_rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA) RNG states of this process."""
    state = {"python": _python_rng_state(), "numpy": _numpy_rng_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores a state from :func:`get_rng_state`."""
    _set_python_rng_state(state["python"])
    _set_numpy_rng_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's :func:`get_rng_state` (a collective under DDP), in rank order."""
    own = get_rng_state()
    if comm.get_world_size() == 1:
        return [own]
    states: list[Any] = [None] * comm.get_world_size()
    torch.distributed.all_gather_object(states, own)
    return states


@contextmanager
def preserve_rng_state() -> Iterator[None]:
    """Restores this process's python / numpy / torch / CUDA RNG states on exit."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
