"""Samplers: a seeded, resumable, infinite training stream and a sharded inference order.

Both shard across DDP ranks the way Detectron2 does: the training stream is one global sequence
of sample positions ``0, 1, 2, ...`` of which rank ``r`` of ``W`` takes positions ``p`` with
``p % W == r``; inference gives each rank one contiguous slice of the dataset.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from zsseg_bench.utils.comm import get_rank, get_world_size


class TrainingSampler(Sampler[int]):
    """Infinite stream of dataset indices: epoch ``e`` is a permutation seeded by (seed, e).

    Because each epoch's order depends only on (seed, epoch), the stream can resume at any
    global position without replaying it: ``start`` = number of samples all ranks together have
    consumed (e.g. ``iteration * SOLVER.IMS_PER_BATCH``).
    """

    def __init__(self, size: int, seed: int = 0, start: int = 0, rank: int | None = None,
                 world_size: int | None = None):
        """
        Args:
            size: dataset length (> 0).
            seed: seed of the permutations; the same on every rank.
            start: global position to start from.
            rank, world_size: default from torch.distributed.
        """
        if size <= 0:
            raise ValueError(f"TrainingSampler needs a non-empty dataset, got size {size}")
        self._size = int(size)
        self._seed = int(seed)
        self._start = int(start)
        self._rank = get_rank() if rank is None else int(rank)
        self._world_size = get_world_size() if world_size is None else int(world_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The dataset indices of one epoch, in order."""
        return np.random.default_rng([self._seed, epoch]).permutation(self._size)

    def iter_positions(self) -> Iterator[tuple[int, int]]:
        """This rank's ``(global position, dataset index)`` pairs, forever."""
        first = self._start + (self._rank - self._start) % self._world_size
        epoch, offset = divmod(first, self._size)
        position = first
        order = self.epoch_order(epoch)
        while True:
            yield position, int(order[offset])
            position += self._world_size
            offset += self._world_size
            while offset >= self._size:
                offset -= self._size
                epoch += 1
                order = self.epoch_order(epoch)

    def __iter__(self) -> Iterator[int]:
        for _, index in self.iter_positions():
            yield index


class InferenceSampler(Sampler[int]):
    """Every index once, in order; rank ``r`` gets the ``r``-th contiguous shard (shards differ
    in length by at most one)."""

    def __init__(self, size: int, rank: int | None = None, world_size: int | None = None):
        rank = get_rank() if rank is None else rank
        world_size = get_world_size() if world_size is None else world_size
        shard, extra = divmod(int(size), world_size)
        begin = rank * shard + min(rank, extra)
        self._indices = range(begin, begin + shard + (1 if rank < extra else 0))

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)

    def __len__(self) -> int:
        return len(self._indices)


def batched(iterator: Iterator, batch_size: int) -> Iterator[list]:
    """Groups an (infinite) iterator into lists of ``batch_size``."""
    while True:
        batch = list(itertools.islice(iterator, batch_size))
        if not batch:
            return
        yield batch
