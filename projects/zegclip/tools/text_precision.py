#!/usr/bin/env python
"""How much ZegCLIP's outputs move when its text embeddings are the official fp16 ones.

The official configs read text embeddings precomputed by ``get_embedding.ipynb`` with OpenAI's
CLIP on a GPU, in half precision, and saved as float16 (``voc12_single.npy``,
``coco_multi.npy``); the suite computes them in float32. This measures, on one image, the final
scores' relative change and the argmax changes (all, and those decided by more than a margin)
when the suite's float32 embeddings are replaced by

- ``fp16 rounding``: the same embeddings rounded to float16 (the files' dtype);
- ``fp16 text tower``: embeddings computed by the text tower in half precision (the notebook's
  arithmetic, emulated on the CPU), then rounded to float16.

    python -m zsseg_bench.projects.zegclip.tools.text_precision \
        --config-file configs/voc/zegclip_vitb16_512x512_20k_inductive.yaml \
        [--weights CKPT] MODEL.CLIP.WEIGHTS /path/ViT-B-16.pt

Without ``--weights`` the head keeps its seeded initialisation; ``MODEL.CLIP.RANDOM_INIT True``
(and ``MODEL.CLIP.WEIGHTS ""``) runs without any file.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--weights", default="", help="a suite checkpoint (e.g. converted)")
    ap.add_argument("--size", type=int, nargs=2, default=(512, 683), metavar=("H", "W"))
    ap.add_argument("--seed", type=int, default=0, help="of the random image")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides")
    return ap.parse_args(argv)


def _changes(ours: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Relative change of ``K x H x W`` scores and argmax changes (all; decided by > margin)."""
    rel = float((ours - ref).abs().max() / ref.abs().max())
    flipped = ours.argmax(0) != ref.argmax(0)
    top2 = ref.topk(2, dim=0).values
    lead = top2[0] - top2[1]
    return {"scores_rel": rel, "argmax_changed": int(flipped.sum()),
            "changed_lead_gt_1e-5": int((flipped & (lead > 1e-5)).sum()),
            "changed_lead_gt_1e-3": int((flipped & (lead > 1e-3)).sum()),
            "pixels": ref[0].numel()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import zsseg_bench.data  # noqa: F401  (the datasets' metadata)
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.engine.checkpoint import build_model_with_weights
    from zsseg_bench.modeling.clip.templates import get_templates

    cfg = setup_cfg(args.config_file, ["MODEL.DEVICE", "cpu", *args.opts])
    model, _ = build_model_with_weights(cfg, args.weights)
    model.eval()
    vocab = model.vocabulary(cfg.DATASETS.TEST[0], trainable_only=False)
    g = torch.Generator().manual_seed(args.seed)
    image = torch.randint(0, 256, (3, *args.size), dtype=torch.uint8, generator=g)
    batch = [{"image": image, "height": args.size[0], "width": args.size[1]}]

    def scores(embeddings: torch.Tensor) -> torch.Tensor:
        v = dataclasses.replace(vocab, embeddings=embeddings)
        with torch.no_grad():
            return model.inference(model.preprocess(batch), batch, v)[0]["sem_seg"]

    reference = scores(vocab.embeddings)
    half_tower = copy.deepcopy(model.clip.model).half()
    templates = get_templates(cfg.MODEL.CLIP.TEMPLATES)
    with torch.no_grad():
        tokens = model.clip.tokenize([t.format(n) for n in vocab.names for t in templates])
        emb = half_tower.encode_text(tokens).float()
        emb = emb / emb.norm(dim=-1, keepdim=True)
        emb = emb.view(len(vocab), len(templates), -1).mean(1)
        emb = emb / emb.norm(dim=-1, keepdim=True)
    variants = {"fp16 rounding": vocab.embeddings.half().float(),
                "fp16 text tower": emb.half().float()}
    print(f"{cfg.MODEL.HEAD.NAME}, {args.config_file}, {len(vocab)} classes, image "
          f"{args.size[0]}x{args.size[1]}, weights {args.weights or 'seeded init'}")
    for name, embeddings in variants.items():
        text_rel = float((embeddings - vocab.embeddings).abs().max()
                         / vocab.embeddings.abs().max())
        c = _changes(scores(embeddings), reference)
        print(f"  {name:<16} text rel {text_rel:.2e}  scores rel {c['scores_rel']:.2e}  "
              f"argmax changed {c['argmax_changed']} of {c['pixels']} "
              f"(lead > 1e-5: {c['changed_lead_gt_1e-5']}, > 1e-3: {c['changed_lead_gt_1e-3']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
