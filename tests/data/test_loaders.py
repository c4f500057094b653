"""Samplers and loaders: seeded, resumable, sharded; worker count does not change batches."""

import itertools

import numpy as np
import pytest
import torch

from tests.data.helpers import random_labels, register_tiny
from zsseg_bench.config import get_cfg
from zsseg_bench.data.build import build_test_loader, build_train_loader
from zsseg_bench.data.catalog import DatasetCatalog
from zsseg_bench.data.samplers import InferenceSampler, TrainingSampler
from zsseg_bench.utils.errors import UserError


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_training_sampler_epochs_are_permutations_and_seeded():
    stream = _take(TrainingSampler(7, seed=3, rank=0, world_size=1), 21)
    for e in range(3):
        assert sorted(stream[7 * e: 7 * e + 7]) == list(range(7))
    assert stream == _take(TrainingSampler(7, seed=3, rank=0, world_size=1), 21)
    assert stream != _take(TrainingSampler(7, seed=4, rank=0, world_size=1), 21)


@pytest.mark.parametrize("start", [0, 5, 7, 16])
def test_training_sampler_resumes_at_any_position(start):
    full = _take(TrainingSampler(7, seed=1, rank=0, world_size=1), 40)
    resumed = _take(TrainingSampler(7, seed=1, start=start, rank=0, world_size=1), 40 - start)
    assert resumed == full[start:]


@pytest.mark.parametrize("start", [0, 6])
def test_training_sampler_shards_the_global_stream(start):
    full = _take(TrainingSampler(5, seed=2, start=start, rank=0, world_size=1), 30)
    ranks = [_take(TrainingSampler(5, seed=2, start=start, rank=r, world_size=3), 10)
             for r in range(3)]
    assert [ranks[i % 3][i // 3] for i in range(30)] == full


def test_inference_sampler_shards_cover_once():
    shards = [list(InferenceSampler(10, rank=r, world_size=3)) for r in range(3)]
    assert sum(shards, []) == list(range(10))
    assert [len(s) for s in shards] == [4, 3, 3]


@pytest.fixture()
def tiny_cfg(tmp_path):
    name = register_tiny(str(tmp_path), random_labels(5))
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = (name,)
    cfg.DATASETS.TEST = (name,)
    cfg.INPUT.RESIZE.SCALE = (96, 32)
    cfg.INPUT.CROP.SIZE = (24, 24)
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SEED = 5
    yield cfg
    DatasetCatalog.remove(name)


def _batches(loader, n):
    return [[(x["image_id"], x["image"], x["sem_seg"]) for x in b]
            for b in itertools.islice(iter(loader), n)]


def _equal(a, b):
    return all(ia == ib and torch.equal(xa, xb) and torch.equal(ya, yb)
               for ba, bb in zip(a, b) for (ia, xa, ya), (ib, xb, yb) in zip(ba, bb))


def test_train_loader_is_reproducible_resumable_and_worker_independent(tiny_cfg):
    first = _batches(build_train_loader(tiny_cfg), 6)
    assert all(len(b) == 2 for b in first)
    assert _equal(first, _batches(build_train_loader(tiny_cfg), 6))
    assert _equal(first[4:], _batches(build_train_loader(tiny_cfg, start_iter=4), 2))
    tiny_cfg.DATALOADER.NUM_WORKERS = 2
    assert _equal(first, _batches(build_train_loader(tiny_cfg), 6))


def test_train_loader_rejects_bad_batch(tiny_cfg):
    tiny_cfg.SOLVER.IMS_PER_BATCH = 0
    with pytest.raises(UserError, match="IMS_PER_BATCH"):
        build_train_loader(tiny_cfg)
    tiny_cfg.DATASETS.TRAIN = ()
    with pytest.raises(UserError, match="DATASETS.TRAIN"):
        build_train_loader(tiny_cfg)


def test_test_loader_batches_every_image_once(tiny_cfg):
    name = tiny_cfg.DATASETS.TEST[0]
    loader = build_test_loader(tiny_cfg, name, batch_size=2)
    batches = list(loader)
    assert [len(b) for b in batches] == [2, 2, 1]
    ids = [x["image_id"] for b in batches for x in b]
    assert ids == [d["image_id"] for d in DatasetCatalog.get(name)]
    assert np.all([x["image"].dtype == torch.uint8 for b in batches for x in b])
