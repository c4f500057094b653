#!/usr/bin/env python
"""Contrastive pretraining of the toy CLIP shipped in ``zsseg_bench/model_zoo/toy_clip/``.

The model is an open_clip custom config (``ToyCLIP-ViT-P8.json`` next to the checkpoint). It is
trained on captioned renders of **all** toy classes (seen and unseen; real CLIP saw unseen
concepts on the web too) from :class:`zsseg_bench.data.synthetic.CaptionStream`, which uses the
renderer of the segmentation dataset, so its dense features transfer.

Loss: symmetric multi-positive InfoNCE. Every caption of the batch that correctly and completely
describes an image is a positive of it (same classes in any order; a colour-less caption such as
"a photo of a circle." matches circles of every colour; with 20 classes a batch holds many
duplicates); an image's target is uniform over its distinct positive captions, and vice versa.
Captions are de-duplicated per batch before text encoding.

Outputs (atomic writes) in ``--out-dir``:
  ``toy_clip.pt``               open_clip state dict, fp16
  ``toy_clip_training.json``    training figures: steps, wall time, loss curve summary, probe
                                accuracy, dense patch accuracy, config.

Example::

    nice -n 5 python scripts/pretrain_toy_clip.py            # writes into the model zoo
    python scripts/pretrain_toy_clip.py --eval-only          # recompute probe/dense figures
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from zsseg_bench.data.synthetic import (
    CLASS_NAMES,
    OBJECT_CLASS_IDS,
    UNSEEN_CLASS_IDS,
    CaptionStream,
    make_probe_set,
    render_segmentation_sample,
)
from zsseg_bench.data.synthetic.captions import PARTIAL_CAPTION_PROB, caption_matches
from zsseg_bench.data.synthetic.world import colour_of, shape_of
from zsseg_bench.utils.file_io import atomic_save, atomic_write_json

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "zsseg_bench", "model_zoo", "toy_clip")
MODEL_NAME = "ToyCLIP-ViT-P8"
CKPT_NAME = "toy_clip.pt"
FIGURES_NAME = "toy_clip_training.json"
# OpenAI CLIP normalisation constants (open_clip.constants.OPENAI_DATASET_MEAN/STD).
MEAN = torch.tensor(open_clip.constants.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(open_clip.constants.OPENAI_DATASET_STD).view(1, 3, 1, 1)
#: Seed of the held-out segmentation renders used for the dense patch accuracy (never trained on).
DENSE_EVAL_SEED = 777_777


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> CLIP-normalised float N x 3 x H x W."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - MEAN) / STD


def multi_positive_loss(img: torch.Tensor, txt: torch.Tensor, pos: torch.Tensor,
                        scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with several positives (``pos``: bool N_img x N_txt)."""
    logits = scale * img @ txt.t()
    t_i = pos.float() / pos.float().sum(1, keepdim=True)
    t_t = pos.t().float() / pos.t().float().sum(1, keepdim=True)
    li = -(t_i * F.log_softmax(logits, dim=1)).sum(1).mean()
    lt = -(t_t * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return 0.5 * (li + lt)


@torch.no_grad()
def text_features(model, tokenizer, names: list[str]) -> torch.Tensor:
    tokens = tokenizer([f"a photo of a {n}." for n in names])
    return F.normalize(model.encode_text(tokens).float(), dim=-1)


@torch.no_grad()
def probe_accuracy(model, tokenizer, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Image-level zero-shot top-1 over the object classes (plus colour / shape accuracy)."""
    model.eval()
    ids = list(OBJECT_CLASS_IDS)
    txt = text_features(model, tokenizer, [CLASS_NAMES[i] for i in ids])
    preds = []
    for s in range(0, len(images), 250):
        f = F.normalize(model.encode_image(to_tensor(images[s:s + 250])).float(), dim=-1)
        preds.append((f @ txt.t()).argmax(1))
    pred = np.asarray([ids[i] for i in torch.cat(preds).tolist()])
    model.train()
    return {
        "top1": float((pred == labels).mean()),
        "colour_acc": float(np.mean([colour_of(a) == colour_of(b) for a, b in zip(pred, labels)])),
        "shape_acc": float(np.mean([shape_of(a) == shape_of(b) for a, b in zip(pred, labels)])),
    }


def save_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Writes the model's state dict in fp16 (atomically)."""
    atomic_save({k: v.half() for k, v in model.state_dict().items()}, path)


def build_clip_layer(config_name: str, ckpt_path: str):
    """The suite's CLIP layer on a checkpoint (what methods and tests use)."""
    from zsseg_bench.modeling.clip import CLIPModel, build_open_clip

    model = build_open_clip(config_name, ckpt_path, False, False)
    return CLIPModel(model, open_clip.get_tokenizer(config_name), name=config_name,
                     weights=ckpt_path)


@torch.no_grad()
def clip_probe(clip, images: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Image-level zero-shot top-1 over all object classes through the CLIP layer, overall and on
    renders of seen / unseen classes (CLIP saw all classes; the split matters downstream)."""
    ids = list(OBJECT_CLASS_IDS)
    txt = clip.embed_texts([CLASS_NAMES[i] for i in ids], "single")
    preds = []
    for s in range(0, len(images), 250):
        preds.append((clip.encode_image(to_tensor(images[s:s + 250])) @ txt.t()).argmax(1))
    pred = np.asarray([ids[i] for i in torch.cat(preds).tolist()])
    ok = pred == labels
    unseen = np.isin(labels, UNSEEN_CLASS_IDS)
    return {
        "top1": float(ok.mean()),
        "top1_seen_classes": float(ok[~unseen].mean()),
        "top1_unseen_classes": float(ok[unseen].mean()),
        "colour_acc": float(np.mean([colour_of(a) == colour_of(b) for a, b in zip(pred, labels)])),
        "shape_acc": float(np.mean([shape_of(a) == shape_of(b) for a, b in zip(pred, labels)])),
        "per_class": {CLASS_NAMES[c]: float(ok[labels == c].mean()) for c in ids},
    }


@torch.no_grad()
def clip_dense_accuracy(clip, num_images: int = 40, scale: float = 1.0) -> dict[str, float]:
    """Training-free patch-text matching on held-out segmentation renders (CLIP layer).

    Each patch is labelled with the majority class of its pixels; the prediction is the argmax
    over all 21 classes (background included) of cos(patch embedding, text embedding).
    ``scale`` resizes the renders first (0.5 brings objects near the pixel scale of pretraining).
    """
    import cv2

    p = clip.patch_size
    txt = clip.embed_texts(list(CLASS_NAMES), "single")
    n_classes = len(CLASS_NAMES)
    correct = total = obj_correct = obj_total = 0
    for i in range(num_images):
        img, lbl = render_segmentation_sample(DENSE_EVAL_SEED, i)
        if scale != 1.0:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            lbl = cv2.resize(lbl, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        hh, ww = (lbl.shape[0] // p) * p, (lbl.shape[1] // p) * p
        img, lbl = img[:hh, :ww], lbl[:hh, :ww]
        emb = clip.encode_dense(to_tensor(img[None])).patch_embeddings[0]  # D x h x w
        pred = torch.einsum("dhw,kd->khw", emb, txt).argmax(0).numpy()
        blocks = lbl.reshape(hh // p, p, ww // p, p).transpose(0, 2, 1, 3)
        blocks = blocks.reshape(hh // p, ww // p, -1)
        gt = np.apply_along_axis(np.bincount, 2, blocks, minlength=n_classes).argmax(-1)
        correct += int((pred == gt).sum())
        total += gt.size
        m = gt > 0
        obj_correct += int((pred[m] == gt[m]).sum())
        obj_total += int(m.sum())
    return {
        "num_images": num_images,
        "patch_acc": correct / max(total, 1),
        "object_patch_acc": obj_correct / max(obj_total, 1),
        "background_patch_fraction": 1 - obj_total / max(total, 1),
    }


def evaluate_checkpoint(config_name: str, ckpt_path: str, probe_size: int,
                        image_size: int) -> dict[str, object]:
    """Probe and dense figures of a checkpoint as shipped (fp16 file, loaded into fp32)."""
    clip = build_clip_layer(config_name, ckpt_path)
    imgs, lbls = make_probe_set(probe_size, image_size=image_size)
    return {
        "checkpoint_mb": round(os.path.getsize(ckpt_path) / 2**20, 2),
        "probe": {"num_renders": probe_size, "classes": len(OBJECT_CLASS_IDS),
                  **clip_probe(clip, imgs, lbls)},
        "dense_patch_accuracy": {f"scale_{s}": clip_dense_accuracy(clip, scale=s)
                                 for s in (1.0, 0.5)},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--partial-prob", type=float, default=PARTIAL_CAPTION_PROB,
                    help="probability that a caption names shapes without colours")
    ap.add_argument("--no-bf16", action="store_true", help="disable bf16 autocast on CPU")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--probe-size", type=int, default=1000)
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    ap.add_argument("--config", default=None, help="open_clip model JSON (default: shipped one)")
    ap.add_argument("--init", default=None, help="state dict to start from")
    ap.add_argument("--eval-only", action="store_true",
                    help="only recompute probe/dense figures of the checkpoint in --out-dir")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    cfg_path = args.config or os.path.join(DEFAULT_OUT, f"{MODEL_NAME}.json")
    open_clip.add_model_config(cfg_path)
    name = os.path.splitext(os.path.basename(cfg_path))[0]
    if args.eval_only:
        return eval_only(args, name)
    model = open_clip.create_model(name)
    if args.init:
        model.load_state_dict({k: v.float() for k, v in torch.load(args.init).items()})
    tokenizer = open_clip.get_tokenizer(name)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"model": name, "params": n_params}), flush=True)

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embedding" in n or "logit_scale" in n else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.98), eps=1e-6,
    )

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * t))

    stream = CaptionStream(seed=args.seed, batch_size=args.batch_size, image_size=args.image_size,
                           partial_prob=args.partial_prob)
    probe_imgs, probe_lbls = make_probe_set(args.probe_size, image_size=args.image_size)
    token_cache: dict[str, torch.Tensor] = {}
    history, losses = [], []
    ckpt_path = os.path.join(args.out_dir, CKPT_NAME)
    t0 = time.time()
    model.train()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        batch = stream.batch(step)
        uniq = sorted(set(batch.captions))
        for c in uniq:
            if c not in token_cache:
                token_cache[c] = tokenizer([c])[0]
        tokens = torch.stack([token_cache[c] for c in uniq])
        desc = dict(zip(batch.captions, batch.descriptors))
        pos = torch.tensor([[caption_matches(o, desc[c]) for c in uniq] for o in batch.objects])
        x = to_tensor(batch.images)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.no_bf16):
            img = F.normalize(model.encode_image(x).float(), dim=-1)
            txt = F.normalize(model.encode_text(tokens).float(), dim=-1)
        loss = multi_positive_loss(img, txt, pos, model.logit_scale.exp().clamp(max=100))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 20 == 0:
            print(json.dumps({"step": step, "loss": round(float(np.mean(losses[-20:])), 4),
                              "lr": lr_at(step), "t": round(time.time() - t0, 1)}), flush=True)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            acc = probe_accuracy(model, tokenizer, probe_imgs, probe_lbls)
            rec = {"step": step + 1, "t": round(time.time() - t0, 1), **acc}
            history.append(rec)
            print(json.dumps(rec), flush=True)
            if step + 1 < args.steps:  # the final checkpoint is saved once, below
                save_checkpoint(model, ckpt_path)
    save_checkpoint(model, ckpt_path)
    train_time = time.time() - t0

    figures = {
        "model": name,
        "params": n_params,
        "checkpoint": CKPT_NAME,
        "steps": args.steps,
        "train_wall_time_s": round(train_time, 1),
        "threads": args.threads,
        "loss": {
            "first_20_mean": float(np.mean(losses[:20])),
            "last_20_mean": float(np.mean(losses[-20:])),
            "every_100": [round(float(np.mean(losses[i:i + 100])), 4)
                          for i in range(0, len(losses), 100)],
        },
        "probe_history": history,
        "config": {k: v for k, v in vars(args).items() if k not in ("out_dir", "eval_only")},
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
    }
    figures.update(evaluate_checkpoint(name, ckpt_path, args.probe_size, args.image_size))
    atomic_write_json(os.path.join(args.out_dir, FIGURES_NAME), figures)
    print(json.dumps(figures), flush=True)
    return 0


def eval_only(args, name: str) -> int:
    """Recompute the probe / dense figures of the checkpoint in ``--out-dir``."""
    path = os.path.join(args.out_dir, FIGURES_NAME)
    figures: dict[str, object] = {}
    if os.path.exists(path):
        with open(path) as f:
            figures = json.load(f)
    figures.update(evaluate_checkpoint(name, os.path.join(args.out_dir, CKPT_NAME),
                                       args.probe_size, args.image_size))
    atomic_write_json(path, figures)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
