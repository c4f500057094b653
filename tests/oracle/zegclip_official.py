"""The official ZegCLIP side of the equality test and of the speed comparison.

Runs under the oracle's python (``$ZSSEG_ORACLE_ZEGCLIP_PYTHON``, built by
``setup_zegclip_env.sh``), never under the suite's: it imports the official code
(ZiqinZhou66/ZegCLIP @ 9ba4bb5) and mmseg 0.24, and nothing of zsseg-bench.

    $ZSSEG_ORACLE_ZEGCLIP_PYTHON tests/oracle/zegclip_official.py SPEC.json

``SPEC.json`` (written by the test or by ``scripts/speed_vs_official.py``):

- ``config``: an official config, relative to the official sources
  (``configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py``);
- ``clip``: an OpenAI-format CLIP file (TorchScript archive) for ``pretrained`` and
  ``pretrained_text``;
- ``inputs``: a ``torch.save`` file with ``images`` (uint8 ``H x W x 3`` RGB tensors) and, for a
  training step, ``train_image`` / ``train_label`` (``H x W`` int64 dataset ids, 255 ignore);
- ``text_embedding``: the ``.npy`` of class embeddings the model loads (``load_text_embedding``,
  as the official configs load the ones get_embedding.ipynb computed); ``text_classes``: the
  class indices whose embeddings to compute here the notebook's way, with the official text
  encoder on ``clip``, for comparison;
- ``seed``, ``threads``;
- ``mode``: ``compare`` (write ``checkpoint``, run inference with every stage recorded and one
  training loss with gradients, save to ``output``) or ``serve`` (time inference and training
  steps on request, for ``scripts/speed_vs_official.py``; ``device``: cpu or cuda).

The model is built as the official ``train.py`` builds it: ``build_segmentor``, then
``backbone.init_weights()`` and ``text_encoder.init_weights()`` (they read ``clip``); the decode
head keeps PyTorch's default initialisation (train.py never calls its ``init_weights``). Every
learnable tensor is then shifted by seeded noise so that no LayerNorm sits at 1/0 and a swapped
tensor cannot go unnoticed. Text embeddings for ``text_classes`` are computed the way the
official ``configs/_base_/datasets/text_embedding/get_embedding.ipynb`` computes them (prompt
``"a photo of a {}"``, or the mean of 15 templates for the ``multi`` configs) with the official
text encoder; the model itself reads ``text_embedding`` (on CPU the 2,565 COCO prompts of the
notebook take minutes, so the caller computes the full set once, with the suite).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

#: get_embedding.ipynb: the templates of ``multi_templete`` (COCO ``coco_multi.npy``).
MULTI_TEMPLATES = (
    "a photo of a {}.", "a photo of a small {}.", "a photo of a medium {}.",
    "a photo of a large {}.", "This is a photo of a {}.", "This is a photo of a small {}.",
    "This is a photo of a medium {}.", "This is a photo of a large {}.", "a {} in the scene.",
    "a photo of a {} in the scene.", "There is a {} in the scene.",
    "There is the {} in the scene.", "This is a {} in the scene.", "This is the {} in the scene.",
    "This is one {} in the scene.",
)
#: get_embedding.ipynb ``single_templete``: no final period.
SINGLE_TEMPLATE = "a photo of a {}"


def official_root() -> Path:
    import models  # the official package (on PYTHONPATH through the oracle's python)

    return Path(models.__file__).resolve().parents[1]


def load_config(spec: dict):
    from mmcv import Config

    cfg = Config.fromfile(str(official_root() / spec["config"]))
    cfg.model.pretrained = spec["clip"]
    cfg.model.pretrained_text = spec["clip"]
    return cfg


def class_names(cfg) -> list[str]:
    """The dataset's classes as the official train.py takes them (``datasets[0].CLASSES``)."""
    import models  # noqa: F401  (registers the official datasets too)
    from mmseg.datasets import DATASETS

    return list(DATASETS.get(cfg.data.train.type).CLASSES)


@torch.no_grad()
def text_embeddings(model, names: list[str], multi: bool) -> torch.Tensor:
    """get_embedding.ipynb's single / multi-template embeddings with the official encoder."""
    from models.segmentor.untils import tokenize

    def encode(texts):
        feats = model.text_encoder(tokenize(texts, context_length=77))
        return feats / feats.norm(dim=-1, keepdim=True)

    if not multi:
        return encode([SINGLE_TEMPLATE.format(c) for c in names])
    out = []
    for c in names:
        emb = encode([t.format(c) for t in MULTI_TEMPLATES]).mean(dim=0)
        out.append(emb / emb.norm())
    return torch.stack(out)


def build(spec: dict):
    """The official model (reading ``text_embedding``), its config and class names."""
    import models  # noqa: F401  (registers ZegCLIP, its backbone, head and loss)
    from mmseg.models import build_segmentor

    cfg = load_config(spec)
    names = class_names(cfg)
    cfg.model.class_names = names
    cfg.official_text_embedding = cfg.model.load_text_embedding  # e.g. .../coco_multi.npy
    cfg.model.load_text_embedding = spec["text_embedding"]
    torch.manual_seed(int(spec.get("seed", 0)))
    model = build_segmentor(cfg.model, train_cfg=cfg.get("train_cfg"),
                            test_cfg=cfg.get("test_cfg"))
    model.backbone.init_weights()  # official train.py
    model.text_encoder.init_weights()
    generator = torch.Generator().manual_seed(int(spec.get("seed", 0)) + 1)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=generator))
    return model, cfg, names


def notebook_text_embeddings(model, cfg, names: list[str], classes: list[int]) -> torch.Tensor:
    """get_embedding.ipynb's embeddings of ``classes``: ``coco_multi.npy`` configs average the
    15 templates, the others take the single prompt."""
    multi = "multi" in Path(cfg.official_text_embedding).name
    return text_embeddings(model, [names[i] for i in classes], multi)


def normalise(image: torch.Tensor, cfg) -> torch.Tensor:
    """uint8 H x W x 3 RGB -> 1 x 3 x H x W, with mmseg's Normalize of the config's test
    pipeline (mmcv.imnormalize; the image is RGB already, so no channel swap)."""
    import mmcv

    norm = cfg.img_norm_cfg
    out = mmcv.imnormalize(image.numpy().astype(np.float32), np.array(norm["mean"]),
                           np.array(norm["std"]), to_rgb=False)
    return torch.from_numpy(out).permute(2, 0, 1)[None].contiguous()


def no_dropout(model) -> None:
    """Dropout off (p=0) everywhere: a training loss is compared without random masks."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def infer(model, image: torch.Tensor) -> torch.Tensor:
    """The official slide inference (test_cfg) of one normalised image: K x H x W scores."""
    meta = [{"ori_shape": tuple(image.shape[-2:]) + (3,)}]
    with torch.no_grad():
        return model.slide_inference(image, meta, rescale=False)[0]


def train_loss(model, image, label):
    """One training forward + backward (dropout off); returns losses and gradients."""
    model.train()
    no_dropout(model)
    model.zero_grad(set_to_none=True)
    losses = model.forward_train(image, [{}], label[None, None].clone())
    total = losses["decode.loss_mask"] + losses["decode.loss_dice"]
    total.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
             if p.requires_grad and p.grad is not None}
    model.eval()
    return {k: float(v) for k, v in losses.items()}, grads


def compare(spec: dict) -> None:
    from mmcv.runner import save_checkpoint

    model, cfg, names = build(spec)
    text = notebook_text_embeddings(model, cfg, names, list(spec.get("text_classes", [])))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-5, weight_decay=0.01)
    save_checkpoint(model, spec["checkpoint"], optimizer=optimizer,
                    meta={"CLASSES": tuple(names), "iter": 1})
    model.eval()
    inputs = torch.load(spec["inputs"])

    windows: list[dict] = []  # one record per window, in the official order
    current: dict = {}

    def on_backbone(_m, _i, out):
        (patches,), cls = out
        current.update(patch_embeddings=patches.detach().clone(),
                       cls_embedding=cls.detach().clone())

    def on_decoder(_m, _i, out):
        _, attns = out
        current["layer_masks"] = [a.detach().clone() for a in attns]
        windows.append(dict(current))

    hooks = [model.backbone.register_forward_hook(on_backbone),
             model.decode_head.decoder_1.register_forward_hook(on_decoder)]
    scores = []
    for image in inputs["images"]:
        windows_before = len(windows)
        scores.append(infer(model, normalise(image, cfg)))
        for w in windows[windows_before:]:
            w["image"] = len(scores) - 1
    for h in hooks:
        h.remove()
    result = {"names": names, "text": text, "scores": scores, "windows": windows,
              "seen": list(cfg.model.base_class)}
    if "train_image" in inputs:
        result["losses"], result["grads"] = train_loss(
            model, normalise(inputs["train_image"], cfg), inputs["train_label"])
    torch.save(result, spec["output"])


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def serve(spec: dict) -> None:
    """Timing server of ``scripts/speed_vs_official.py``: builds the model on ``device``, prints
    ``ready``, then answers each line of stdin (``infer`` or ``train``) with the seconds one
    call took (device synchronised around it) and the process's CPU seconds in it; ends at
    ``quit`` or end of input. The caller
    alternates these calls with the suite's, so both see the same machine load."""
    device = spec.get("device", "cpu")
    model, cfg, _ = build(spec)
    model.to(device).eval()
    inputs = torch.load(spec["inputs"])
    image = normalise(inputs["images"][0], cfg).to(device)
    train_image = normalise(inputs["train_image"], cfg).to(device)
    label = inputs["train_label"][None, None].to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01)

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        losses = model.forward_train(train_image, [{}], label.clone())
        (losses["decode.loss_mask"] + losses["decode.loss_dice"]).backward()
        optimizer.step()
        model.eval()

    calls = {"infer": lambda: infer(model, image), "train": train_step}
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        synchronize(device)
        start, cpu = time.perf_counter(), time.process_time()
        calls[command]()
        synchronize(device)
        print(json.dumps({command: time.perf_counter() - start,
                          "cpu": time.process_time() - cpu}), flush=True)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    torch.set_num_threads(int(spec.get("threads", os.environ.get("OMP_NUM_THREADS", 1))))
    {"compare": compare, "serve": serve}[spec.get("mode", "compare")](spec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
