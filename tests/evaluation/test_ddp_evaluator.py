"""Under torch.distributed (2 CPU processes, gloo) the sharded test loader + all-reduced
confusion matrix give the single-process numbers."""

import math
import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.data.helpers import random_labels, register_folder, write_pairs
from zsseg_bench.config import get_cfg
from zsseg_bench.data.build import build_test_loader
from zsseg_bench.data.catalog import DatasetCatalog
from zsseg_bench.evaluation import GZSLSemSegEvaluator, inference_on_dataset
from zsseg_bench.utils.file_io import atomic_write_json

NAME = "tiny_ddp"


class _Model(torch.nn.Module):
    """Per-pixel scores from the colour of the image (deterministic, 4 classes)."""

    def forward(self, batched_inputs):
        outs = []
        for x in batched_inputs:
            img = x["image"].float()
            scores = torch.stack([img[0], img[1], img[2], 255 - img.mean(0)])
            assert scores.shape[-2:] == (x["height"], x["width"])  # no test resize here
            outs.append({"sem_seg": scores})
        return outs


def _evaluate(image_dir, label_dir):
    register_folder(image_dir, label_dir, NAME)
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.TEST_SCALE = ()
    loader = build_test_loader(cfg, NAME)
    return inference_on_dataset(_Model(), loader, GZSLSemSegEvaluator(NAME)), len(loader)


def _worker(rank, world_size, port, image_dir, label_dir, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)
    try:
        results, num_batches = _evaluate(image_dir, label_dir)
        atomic_write_json(os.path.join(out_dir, f"rank{rank}.json"),
                          {"results": results, "batches": num_batches})
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_equals_single_process(tmp_path):
    import json

    image_dir, label_dir = write_pairs(str(tmp_path / "data"), random_labels(5))
    mp.spawn(_worker, args=(2, _free_port(), image_dir, label_dir, str(tmp_path)), nprocs=2)
    try:
        single, _ = _evaluate(image_dir, label_dir)
    finally:
        DatasetCatalog.remove(NAME)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["batches"] for r in ranks] == [3, 2]  # each rank saw its shard only
    for r in ranks:
        for key, value in single.items():
            other = r["results"][key]
            assert (math.isnan(value) and (other is None or math.isnan(other))) or \
                np.isclose(value, other), key
