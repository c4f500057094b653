"""Data loaders: an infinite, seeded, resumable training loader and a batched test loader.

Both yield lists of mapped dicts (``batched_inputs``). Training batches are
``SOLVER.IMS_PER_BATCH / world_size`` images per rank; the random augmentation of each sample is
seeded by ``(SEED, global sample position)``, so a run is reproducible whatever
``DATALOADER.NUM_WORKERS`` is, and a resumed run (``start_iter``) sees exactly the samples and
augmentations the interrupted one would have seen.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import pickle
import random
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, DataLoader, Dataset

from zsseg_bench.data.catalog import DatasetCatalog
from zsseg_bench.data.dataset_mapper import SemSegDatasetMapper
from zsseg_bench.data.samplers import InferenceSampler, TrainingSampler, batched
from zsseg_bench.utils.comm import get_world_size, is_distributed
from zsseg_bench.utils.errors import UserError

__all__ = [
    "build_train_loader",
    "build_test_loader",
    "get_dataset_dicts",
    "trivial_batch_collator",
    "MapDataset",
]

logger = logging.getLogger(__name__)

#: Domain tag mixed into augmentation seeds (keeps them apart from the sampler's epoch seeds).
_AUG_SEED_DOMAIN = 1


def trivial_batch_collator(batch: list) -> list:
    """Keeps a batch as the list of mapped dicts (Detectron2's collator)."""
    return batch


class _SerializedList:
    """Dataset dicts pickled into one numpy buffer, so forked workers do not copy them on read
    (Detectron2's ``DatasetFromList(serialize=True)``)."""

    def __init__(self, items: Sequence[dict]):
        blobs = [np.frombuffer(pickle.dumps(x, protocol=-1), dtype=np.uint8) for x in items]
        self._addr = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        self._buffer = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self._addr)

    def __getitem__(self, idx: int) -> dict:
        start = 0 if idx == 0 else int(self._addr[idx - 1])
        return pickle.loads(memoryview(self._buffer[start: int(self._addr[idx])]))


def _accepts_rng(mapper: Callable) -> bool:
    try:
        return "rng" in inspect.signature(mapper).parameters
    except (TypeError, ValueError):
        return False


class MapDataset(Dataset):
    """Applies ``mapper`` to dataset dicts. A key is an index, or ``(position, index)`` from the
    training stream, whose augmentation generator is then seeded by ``(seed, position)``."""

    def __init__(self, dataset_dicts: Sequence[dict], mapper: Callable, seed: int = 0):
        self._dicts = _SerializedList(dataset_dicts)
        self._mapper = mapper
        self._seed = int(seed)
        self._pass_rng = _accepts_rng(mapper)

    def __len__(self) -> int:
        return len(self._dicts)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        if isinstance(key, tuple):
            position, index = key
            if self._pass_rng:
                rng = np.random.default_rng([self._seed, _AUG_SEED_DOMAIN, position])
                return self._mapper(self._dicts[index], rng=rng)
            return self._mapper(self._dicts[index])
        return self._mapper(self._dicts[key])


class _PositionBatchSampler:
    """Batches of ``(position, index)`` keys from a :class:`TrainingSampler`, forever."""

    def __init__(self, sampler: TrainingSampler, batch_size: int):
        self.sampler = sampler
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return batched(self.sampler.iter_positions(), self.batch_size)


def _worker_init(worker_id: int) -> None:
    # Seeds python's and numpy's global RNGs for mappers that use them; the default mapper
    # draws from the per-sample generator instead. torch seeds each worker from the loader's
    # generator, so this is deterministic too.
    seed = torch.initial_seed() % 2**31
    np.random.seed(seed)
    random.seed(seed)
    # A signal sent to the whole process group (`timeout`, `kill -- -PGID`, Ctrl-C) must reach
    # only the main process, which stops cleanly and saves a checkpoint, then shuts the
    # workers down itself (they also exit when the main process dies). A stop signal sent to a
    # worker itself (before it left the group, or by Slurm to every process of a job step) is
    # ignored: a worker dying of it would end the main process with a DataLoader error.
    with contextlib.suppress(OSError):
        os.setpgrp()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)


def get_dataset_dicts(names: Sequence[str], key: str = "DATASETS.TRAIN") -> list[dict]:
    """Concatenated dataset dicts of registered datasets.

    Raises:
        UserError: no name given, or a dataset without images.
    """
    if not names:
        raise UserError(f"{key} is empty: name at least one registered dataset")
    dicts: list[dict] = []
    for name in names:
        part = DatasetCatalog.get(name)
        if not part:
            raise UserError(f"dataset '{name}' ({key}) has no images")
        dicts.extend(part)
    return dicts


def _shared_seed(seed: int) -> int:
    """``seed`` if >= 0, else a random one that every rank agrees on."""
    if seed >= 0:
        return int(seed)
    value = torch.tensor([int.from_bytes(os.urandom(4), "little") % 2**31], dtype=torch.int64)
    if is_distributed():
        dist.broadcast(value, src=0)
    return int(value.item())


def build_train_loader(cfg: Any, mapper: Callable | None = None, *,
                       start_iter: int = 0) -> DataLoader:
    """The infinite training loader of ``cfg.DATASETS.TRAIN``.

    Args:
        cfg: config (``DATASETS.TRAIN``, ``SOLVER.IMS_PER_BATCH`` = images per step over all
            ranks, ``DATALOADER.NUM_WORKERS``, ``SEED``, ``INPUT.*``, ``ZERO_SHOT.SETTING``).
        mapper: dataset dict -> model input; default :class:`SemSegDatasetMapper` (training).
        start_iter: resume here: the first batch is the one of iteration ``start_iter``.

    Returns:
        An iterable of lists of mapped dicts, ``IMS_PER_BATCH / world_size`` per list, forever.
    """
    dicts = get_dataset_dicts(cfg.DATASETS.TRAIN)
    if mapper is None:
        mapper = SemSegDatasetMapper(cfg, True)
    world_size = get_world_size()
    total = int(cfg.SOLVER.IMS_PER_BATCH)
    if total <= 0 or total % world_size:
        raise UserError(f"SOLVER.IMS_PER_BATCH={total} must be a positive multiple of the "
                        f"number of processes ({world_size})")
    seed = _shared_seed(int(cfg.SEED))
    sampler = TrainingSampler(len(dicts), seed=seed, start=start_iter * total)
    logger.info("Training loader: %d images, %d per step, %d worker(s), seed %d, from iter %d",
                len(dicts), total, cfg.DATALOADER.NUM_WORKERS, seed, start_iter)
    return DataLoader(
        MapDataset(dicts, mapper, seed),
        batch_sampler=_PositionBatchSampler(sampler, total // world_size),
        num_workers=int(cfg.DATALOADER.NUM_WORKERS),
        collate_fn=trivial_batch_collator,
        worker_init_fn=_worker_init,
        generator=torch.Generator().manual_seed(seed),
    )


def build_test_loader(cfg: Any, dataset_name: str, mapper: Callable | None = None,
                      batch_size: int | None = None) -> DataLoader:
    """The test loader of one dataset: every image once, this rank's shard, in order.

    Args:
        cfg: config (``TEST.IMS_PER_BATCH``, ``DATALOADER.NUM_WORKERS``, ``INPUT.TEST_SCALE``).
        dataset_name: a registered dataset.
        mapper: default :class:`SemSegDatasetMapper` (test mode) for ``dataset_name``.
        batch_size: images per batch (default ``TEST.IMS_PER_BATCH``).
    """
    dicts = get_dataset_dicts([dataset_name], key="the test dataset")
    if mapper is None:
        mapper = SemSegDatasetMapper(cfg, False, dataset_name=dataset_name)
    batch_size = int(batch_size or cfg.TEST.IMS_PER_BATCH)
    if batch_size <= 0:
        raise UserError(f"TEST.IMS_PER_BATCH must be positive, got {batch_size}")
    return DataLoader(
        MapDataset(dicts, mapper),
        batch_sampler=BatchSampler(InferenceSampler(len(dicts)), batch_size, drop_last=False),
        num_workers=int(cfg.DATALOADER.NUM_WORKERS),
        collate_fn=trivial_batch_collator,
        worker_init_fn=_worker_init,
    )
