"""The official zsseg.baseline model as a test oracle: builds it with random weights, saves them in
its checkpoint format, and records what it computes on given inputs, stage by stage.

Run by the python of the oracle environment (``tests/oracle/setup_zsseg_env.sh``), in a
subprocess of ``tests/oracle/test_zsseg_equal.py``; the suite never imports it and it never
imports the suite. The official code (MendelXu/zsseg.baseline @ d77c3af, unpacked by the setup
script) is used as it is, with three stand-ins for what cannot run here: ``clip.load`` (which
downloads) builds the CLIP model from a given state dict instead; the datasets are metadata only
(class names and ``trainable_flag`` as the official registration computes them); ``wandb`` is a
stub module.

Usage::

    python zsseg_official.py --src SRC --config voc --clip CLIP.pth --inputs IN.pt --out OUT.pt \\
        --checkpoint CKPT.pth [--threads 1] [--seed 0] [--time N]

``IN.pt`` (written by the test): ``images`` (uint8 3 x H x W tensors), ``sizes`` (the output
height / width of each), ``classes`` (indices into the official class list of the config's
dataset: the vocabulary) and ``labels`` (int64 H x W, indices into that vocabulary, 255
ignore). ``OUT.pt``: the class names and flags, the stages of inference per image, the training
losses, and (``--time N``) the (wall, CPU) seconds of N more inferences and N more training
steps (forward and backward), all warm.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import torch

#: Config files of the official repository per family. The VOC single-prompt config names a
#: _BASE_ that does not exist upstream (..._R50_single_prompt_bs16_60k.yaml); the file beside it,
#: ..._bs16_20k.yaml, is merged first and the R101c file on top.
CONFIGS = {
    "voc": ("configs/voc-11k-15/zero_shot_maskformer_R50_single_prompt_bs16_20k.yaml",
            "configs/voc-11k-15/zero_shot_maskformer_R101c_single_prompt_bs16_20k.yaml"),
    "coco": (None,
             "configs/coco-stuff-164k-156/zero_shot_maskformer_R101c_vild_prompt_bs32_60k.yaml"),
    # learned prompts (random here): the released zero-shot COCO-Stuff model's config, and VOC's
    # (a separate, learned adapter for the CLIP crops)
    "coco_learned": (None, "configs/coco-stuff-164k-156/zero_shot_maskformer_R101c_bs32_60k.yaml"),
    "voc_learned": (None, "configs/voc-11k-15/zero_shot_maskformer_R101c_bs16_20k.yaml"),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", required=True, help="the unpacked zsseg.baseline-d77c3af directory")
    p.add_argument("--config", choices=sorted(CONFIGS), required=True)
    p.add_argument("--clip", required=True, help="CLIP state dict (OpenAI names)")
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint", required=True, help="where to save the official checkpoint")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time", type=int, default=0, metavar="N",
                   help="also time N more inferences and N more training steps")
    p.add_argument("--no-train", action="store_true", help="skip the training step")
    p.add_argument("--proposals", type=int, default=8,
                   help="about this many non-empty proposals (CLIP crops) per image")
    return p.parse_args()


def class_lists(config: str) -> tuple[list[str], list[str]]:
    """(all class names, seen class names) of the official registration."""
    if config.startswith("voc"):
        from mask_former.data.datasets.register_voc_seg import BASE_CLASS_NAMES, CLASS_NAMES

        return list(CLASS_NAMES), list(BASE_CLASS_NAMES)
    from mask_former.data.datasets.register_coco_stuff import (
        COCO_BASE_CATEGORIES,
        COCO_CATEGORIES,
    )

    return [c["name"] for c in COCO_CATEGORIES], [c["name"] for c in COCO_BASE_CATEGORIES]


def register(names: list[str], seen: list[str]) -> None:
    """Metadata-only datasets: ``oracle_test`` (every class, ``trainable_flag`` as the official
    registration sets it) and ``oracle_train`` (the seen classes)."""
    from detectron2.data import MetadataCatalog

    train = [n for n in names if n in seen]
    MetadataCatalog.get("oracle_test").set(
        stuff_classes=names, ignore_label=255,
        trainable_flag=[1 if n in seen else 0 for n in names])
    MetadataCatalog.get("oracle_train").set(stuff_classes=train, ignore_label=255)


def official_cfg(src: str, config: str) -> Any:
    import yaml
    from detectron2.config import CfgNode, get_cfg
    from detectron2.projects.deeplab import add_deeplab_config
    from mask_former import add_mask_former_config

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_mask_former_config(cfg)
    base, top = CONFIGS[config]
    if base is not None:
        cfg.merge_from_file(os.path.join(src, base))
        with open(os.path.join(src, top)) as f:
            override = yaml.safe_load(f)
        override.pop("_BASE_")
        cfg.merge_from_other_cfg(CfgNode(override))
    else:
        cfg.merge_from_file(os.path.join(src, top))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.DATASETS.TRAIN = ("oracle_train",)
    cfg.DATASETS.TEST = ("oracle_test",)
    return cfg


def patch_clip_loading(clip_path: str) -> None:
    """``build_clip_model`` downloads through ``clip.load``; build the same model (OpenAI's
    ``build_model``, float32 on CPU as ``clip.load(device="cpu")`` returns it) from a file."""
    from clip.model import build_model
    from mask_former.modeling.clip_adapter import adapter

    def build_clip_model(model: str, frozen: bool = True) -> torch.nn.Module:
        state = torch.load(clip_path, map_location="cpu")
        clip_model = build_model(state).float().eval()
        for p in clip_model.parameters():
            p.requires_grad = not frozen
        return clip_model

    adapter.build_clip_model = build_clip_model


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Random values for what initialises to constants (norm statistics and affine terms), so
    that every tensor of the checkpoint is distinguishable."""
    from detectron2.layers import FrozenBatchNorm2d

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if "clip_model" in name:  # CLIP's weights are the given file's
                continue
            if isinstance(m, FrozenBatchNorm2d):
                n = m.weight.shape[0]
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            elif isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.4 + 0.8)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)


def few_proposals(model: torch.nn.Module, batch: list[dict], per_image: int) -> None:
    """Shifts the mask logits so that about ``per_image`` proposals per image are non-empty
    (each goes through CLIP ViT-B/16 at 224 px, the cost of this oracle): one mask-feature
    channel is made the constant 1 and the bias of the mask embedding on it set from a first
    pass. The weights stay random; only their distribution is chosen."""
    head = model.sem_seg_head
    conv, last = head.pixel_decoder.mask_features, head.predictor.mask_embed.layers[-1]
    with torch.no_grad():
        conv.weight[0].zero_()
        conv.bias[0] = 1.0
        images = [(x["image"].float() - model.pixel_mean) / model.pixel_std for x in batch]
        from detectron2.structures import ImageList

        padded = ImageList.from_tensors(images, model.size_divisibility)
        masks = head(model.backbone(padded.tensor))["pred_masks"]  # B x Q x h x w
        masks = torch.nn.functional.interpolate(masks, size=padded.tensor.shape[-2:],
                                                mode="bilinear", align_corners=False)
        shifts = []
        for m, (h, w) in zip(masks, padded.image_sizes):  # the regions CLIP sees
            top = m[:, :h, :w].flatten(1).amax(-1).sort(descending=True).values
            shifts.append(float(top[per_image - 1] + top[per_image]) / 2)
        last.bias[0] -= sum(shifts) / len(shifts)


def no_dropout(model: torch.nn.Module) -> None:
    """Dropout off, attention dropout included (its random masks cannot be shared with the
    suite's model)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        elif isinstance(m, torch.nn.MultiheadAttention):
            m.dropout = 0.0


class Recorder:
    """Wraps methods of the official model to record their inputs / outputs (detached)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = {}

    def add(self, name: str, value: Any) -> None:
        self.calls.setdefault(name, []).append(_detach(value))

    def wrap(self, obj: Any, method: str, name: str, record_args: bool = False) -> None:
        fn = getattr(obj, method)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            self.add(name, (args, out) if record_args else out)
            return out

        setattr(obj, method, wrapped)


def _detach(x: Any) -> Any:
    if torch.is_tensor(x):
        return x.detach().clone()
    if isinstance(x, dict):
        return {k: _detach(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_detach(v) for v in x)
    return x


def batched_inputs(inputs: dict[str, Any], train: bool, seen_index: dict[int, int]) -> list[dict]:
    """The model's inputs as the official mappers make them (``instances`` as
    MaskFormerSemanticDatasetMapper builds them, labels in the training classes' index space)."""
    from detectron2.structures import Instances

    out = []
    for img, size, lab in zip(inputs["images"], inputs["sizes"], inputs["labels"]):
        item = {"image": img, "height": int(size[0]), "width": int(size[1]),
                "meta": {"dataset_name": "oracle_train" if train else "oracle_test"}}
        if train:
            mapped = torch.full_like(lab, 255)
            for full, idx in seen_index.items():
                mapped[lab == full] = idx
            classes = [int(c) for c in mapped.unique() if int(c) != 255]
            inst = Instances(tuple(mapped.shape))
            inst.gt_classes = torch.tensor(classes, dtype=torch.int64)
            inst.gt_masks = (torch.stack([mapped == c for c in classes]) if classes
                             else torch.zeros((0, *mapped.shape), dtype=torch.bool))
            item["sem_seg"] = mapped
            item["instances"] = inst
        out.append(item)
    return out


def main() -> None:
    args = parse_args()
    sys.path[:0] = [args.src, os.path.join(args.src, "third_party", "CLIP")]
    torch.set_num_threads(args.threads)
    import mask_former  # noqa: F401  (registers the meta-architecture and heads)
    from detectron2.modeling import build_model

    inputs = torch.load(args.inputs)
    all_names, seen_names = class_lists(args.config)
    names = [all_names[i].strip() for i in inputs["classes"]]
    seen = [n for n in seen_names if n in names]
    register(names, seen)
    patch_clip_loading(args.clip)
    cfg = official_cfg(args.src, args.config)
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    randomise(model, args.seed)
    no_dropout(model)
    model.eval()
    few_proposals(model, batched_inputs(inputs, train=False, seen_index={}), args.proposals)
    # written atomically: the test starts the suite's side as soon as it exists
    torch.save({"model": model.state_dict(), "iteration": 0}, args.checkpoint + ".tmp")
    os.replace(args.checkpoint + ".tmp", args.checkpoint)

    rec = Recorder()
    model.backbone.register_forward_hook(lambda m, i, o: rec.add("backbone", o))
    rec.wrap(model.sem_seg_head.pixel_decoder, "forward_features", "pixel_decoder")
    model.sem_seg_head.register_forward_hook(lambda m, i, o: rec.add("decoder", o))
    adapter = model.region_clip_adapter
    rec.wrap(adapter, "_preprocess_image", "crops")
    rec.wrap(adapter, "get_image_features", "crop_embeddings")
    adapter.register_forward_hook(lambda m, i, o: rec.add("clip_logits", o))
    rec.wrap(model, "semantic_inference", "semantic_inference", record_args=True)
    batch = batched_inputs(inputs, train=False, seen_index={})
    with torch.no_grad():
        results = model(batch)
        # warm calls (the class texts are cached by then): (wall, CPU) seconds each
        out_time: dict[str, Any] = {"threads": torch.get_num_threads(),
                                    "inference": [timed(model, batch) for _ in range(args.time)]}
    with torch.no_grad():
        text = model.clip_adapter.get_text_features(names)
        crop_text = model.region_clip_adapter.get_text_features(names)
    out: dict[str, Any] = {
        "names": names, "seen": [n in seen for n in names],
        "cfg": {"pixel_mean": list(cfg.MODEL.PIXEL_MEAN), "pixel_std": list(cfg.MODEL.PIXEL_STD),
                "templates": list(cfg.MODEL.CLIP_ADAPTER.PREDEFINED_PROMPT_TEMPLATES),
                "prompt_learner": cfg.MODEL.CLIP_ADAPTER.PROMPT_LEARNER,
                "ensemble_weight": cfg.MODEL.CLIP_ADAPTER.CLIP_ENSEMBLE_WEIGHT},
        "text": text.detach(), "crop_text": crop_text.detach(),
        "stages": rec.calls,
        "sem_seg": [r["sem_seg"] for r in results],
    }

    if not args.no_train:
        seen_index = train_step(model, inputs, names, seen, rec, out)
        train_batch = batched_inputs(inputs, train=True, seen_index=seen_index)
        out_time["train_step"] = [timed(model, train_batch, backward=True)
                                  for _ in range(args.time)]
    if args.time:
        out["time_s"] = out_time
    torch.save(out, args.out)


def timed(model: torch.nn.Module, batch: list[dict], backward: bool = False
          ) -> tuple[float, float]:
    """(wall, CPU) seconds of one call (with ``backward``: forward and backward of the summed
    losses, no optimizer step)."""
    model.zero_grad()
    wall, cpu = time.perf_counter(), time.process_time()
    if backward:
        sum(model(batch).values()).backward()
    else:
        with torch.no_grad():
            model(batch)
    return time.perf_counter() - wall, time.process_time() - cpu


def train_step(model: torch.nn.Module, inputs: dict[str, Any], names: list[str],
               seen: list[str], rec: Recorder, out: dict[str, Any]) -> dict[int, int]:
    """One training step: the losses of the same images with their labels (seen classes).
    Returns the map of vocabulary ids to training ids."""
    rec.calls = {}
    rec.wrap(model.criterion.matcher, "forward", "matcher")
    seen_index = {i: seen.index(n) for i, n in enumerate(names) if n in seen}
    model.train()
    train_batch = batched_inputs(inputs, train=True, seen_index=seen_index)
    losses = model(train_batch)
    sum(losses.values()).backward()
    out["losses"] = {k: float(v.detach()) for k, v in losses.items()}
    out["matches"] = rec.calls["matcher"]
    out["grad_norm"] = {n: float(p.grad.norm()) for n, p in model.named_parameters()
                        if p.grad is not None and n.startswith(("sem_seg_head.predictor.",
                                                                "backbone.res5.2."))}
    return seen_index


if __name__ == "__main__":
    main()
