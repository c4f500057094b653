#!/usr/bin/env python
r"""Classification pretraining of the two-stage toy backbone: the toy world's "ImageNet".

zsseg and ZegFormer start their proposal network from an ImageNet-pretrained ResNet (zsseg:
R-101c), trained at 0.1x the head's learning rate. ``configs/synthetic/two_stage.yaml`` starts
its width-reduced ResNet-18 from random weights instead. This script gives it zsseg's kind of
start, for the ablation in ``projects/two_stage/README.md`` ("Seed stability"): the backbone
learns to name the class of single-object renders of **all** 20 toy object classes (ImageNet
holds the unseen classes of the real benchmarks too, e.g. VOC's sheep, sofa and train) through
global average pooling and a linear layer, which is then dropped. The renders come from the
segmentation renderer with the segmentation images' object sizes, under their own seed domain,
so no ``synthetic`` train or val image is used.

Output (atomic writes) in ``--out-dir``:
  ``toy_resnet18_w32.pt``            torchvision-format ResNet state dict (``fc`` dropped), fp16
  ``toy_resnet18_w32_training.json`` config, wall time, loss and held-out top-1 per 100 steps

Example (2,000 steps: 510 s on 2 CPU threads, held-out top-1 100 %)::

    python scripts/pretrain_toy_backbone.py --out-dir output/toy_backbone
    zsseg-bench train --config-file configs/synthetic/two_stage.yaml --output-dir RUN \
        MODEL_EMA.ENABLED False MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT False \
        MODEL.TWO_STAGE.BACKBONE.WEIGHTS output/toy_backbone/toy_resnet18_w32.pt \
        MODEL.TWO_STAGE.BACKBONE.NORM FrozenBN \
        SOLVER.LR_MULTIPLIERS '[["^head\\.backbone\\.", 0.1]]'
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.config import get_cfg
from zsseg_bench.data.synthetic import OBJECT_CLASS_IDS, render_scene
from zsseg_bench.data.synthetic.render import SEG_OBJECT_SIZE_RANGE
from zsseg_bench.modeling.backbone import ResNetBackbone
from zsseg_bench.utils.file_io import atomic_save, atomic_write_json

CKPT_NAME = "toy_resnet18_w32.pt"
FIGURES_NAME = "toy_resnet18_w32_training.json"
#: Seed domains of the pretraining stream and of the held-out renders (the segmentation
#: dataset uses 1, captions 2, the CLIP probe 3).
TRAIN_SEED_DOMAIN, HELDOUT_SEED_DOMAIN = 11, 12
#: The two-stage toy config's backbone (configs/synthetic/two_stage.yaml).
DEPTH, WIDTH = 18, 32
#: The suite's input normalisation (the MODEL.PIXEL_MEAN / PIXEL_STD defaults, 0-255 scale).
MEAN = torch.tensor(get_cfg().MODEL.PIXEL_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(get_cfg().MODEL.PIXEL_STD).view(1, 3, 1, 1)


def render_batch(domain: int, seed: int, index: int, num: int,
                 size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` single-object renders (normalised N x 3 x size x size) and class indices."""
    rng = np.random.default_rng(np.random.SeedSequence([domain, seed, index]))
    ids = rng.integers(0, len(OBJECT_CLASS_IDS), size=num)
    images = np.stack([render_scene(rng, size, size, [OBJECT_CLASS_IDS[i]],
                                    SEG_OBJECT_SIZE_RANGE)[0] for i in ids])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return (x - MEAN) / STD, torch.from_numpy(ids).long()


class Classifier(nn.Module):
    """The proposal backbone with global average pooling and a linear classifier."""

    def __init__(self):
        super().__init__()
        self.backbone = ResNetBackbone(depth=DEPTH, width=WIDTH, random_init=True)
        self.fc = nn.Linear(self.backbone.out_channels["res5"], len(OBJECT_CLASS_IDS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x)["res5"].mean((2, 3)))


@torch.no_grad()
def heldout_top1(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(images[i:i + 250]).argmax(1) for i in range(0, len(images), 250)])
    model.train()
    return float((pred == labels).float().mean())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--lr", type=float, default=0.05, help="SGD, momentum 0.9, cosine decay")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Classifier()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / a.steps)))
    held_x, held_y = render_batch(HELDOUT_SEED_DOMAIN, 0, 0, 1000, a.image_size)
    t0, losses, curve = time.time(), [], []
    for step in range(a.steps):
        x, y = render_batch(TRAIN_SEED_DOMAIN, a.seed, step, a.batch_size, a.image_size)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            curve.append({"step": step + 1, "loss": float(np.mean(losses[-100:])),
                          "heldout_top1": heldout_top1(model, held_x, held_y)})
            print(f"step {step + 1}: loss {curve[-1]['loss']:.4f} held-out top-1 "
                  f"{curve[-1]['heldout_top1']:.3f} ({time.time() - t0:.0f} s)", flush=True)
    os.makedirs(a.out_dir, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in model.backbone.state_dict().items()}
    atomic_save(state, os.path.join(a.out_dir, CKPT_NAME))
    atomic_write_json(os.path.join(a.out_dir, FIGURES_NAME), {
        "config": vars(a) | {"depth": DEPTH, "width": WIDTH, "out_dir": None},
        "wall_time_s": round(time.time() - t0, 1),
        "heldout_top1": heldout_top1(model, held_x, held_y),
        "heldout_renders": len(held_y),
        "curve": curve,
    })


if __name__ == "__main__":
    main()
