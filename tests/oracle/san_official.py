"""The official SAN model as a test oracle: builds it with random weights, saves them in its
checkpoint format and its CLIP as an open_clip state dict, and records what it computes on given
inputs, stage by stage, and one training step.

Run by the python of the oracle environment (``tests/oracle/setup_san_env.sh``) in a subprocess
of ``tests/oracle/test_san_equal.py``; the suite never imports it and it never imports the suite.
The official code (MendelXu/SAN @ e19262d, unpacked by the setup script, on ``PYTHONPATH``) runs
as it is, with two stand-ins for what cannot run here: ``open_clip.create_model_and_transforms``
builds the named CLIP with random weights (``pretrained=None``, QuickGELU as OpenAI's models)
instead of downloading OpenAI's, and ``wandb`` is a stub module (imported by ``san/__init__.py``,
never called by the model).

Usage: ``python san_official.py SPEC.json`` with the official sources on ``PYTHONPATH`` (the
oracle's python wrapper puts them there); SPEC keys: ``config`` (a config file of the official
repository, relative to it), ``vocabulary`` (class names), ``inputs`` (a ``torch.save`` of
``images``: uint8 3 x H x W tensors, ``train_image``, ``train_label``: int64 H x W vocabulary
indices, 255 ignore; ``output_sizes``: the (height, width) each image's scores are resized to),
``seed``, ``threads``, ``clip`` / ``checkpoint`` / ``output`` (files to
write). Output: the classifier, per image the stages of inference, the training losses and the
gradients of the trainable parameters (official names).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

import torch


def _no_download_clip(captured: dict[str, Any]) -> None:
    """``open_clip.create_model_and_transforms`` without the weights download; keeps the model."""
    import open_clip

    original = open_clip.create_model_and_transforms

    def create(name: str, pretrained: str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("force_quick_gelu", pretrained == "openai")
        out = original(name, pretrained=None, **kwargs)
        captured["model"] = out[0]
        return out

    open_clip.create_model_and_transforms = create


def build(spec: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config
    from san import add_san_config

    captured: dict[str, Any] = {}
    _no_download_clip(captured)
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_san_config(cfg)
    import san

    src = os.path.dirname(os.path.dirname(os.path.abspath(san.__file__)))
    cfg.merge_from_file(os.path.join(src, spec["config"]))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.SAN.NUM_CLASSES = len(spec["vocabulary"])
    cfg.freeze()
    torch.manual_seed(int(spec["seed"]))
    model = build_model(cfg).eval()
    return cfg, model, captured


def perturb(model: Any, seed: int) -> None:
    """Moves every trainable parameter away from its init (LayerNorms are ones and zeros at
    init, CLIP's positional embedding equals CLIP's), so that the comparison sees each one."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.02)
        # Random init gives attention biases of a few hundredths, which barely move CLIP's
        # attention; scaled up so that the comparison sees how they are applied.
        model.side_adapter_network.mask_decoder.bias_scaling.weight.fill_(20.0)


def recorder(model: Any) -> tuple[dict[str, Any], list[Any]]:
    rec: dict[str, Any] = {}

    def on_clip(_m, _i, out):
        rec["clip"] = {str(k): v.detach().clone() for k, v in out.items()}

    def on_side(_m, _i, out):
        masks, biases = out
        rec["mask_preds"] = [m.detach().clone() for m in masks]
        rec["attn_biases"] = [[b.detach().clone() for b in bs] for bs in biases]

    def on_rec(_m, _i, out):
        rec.setdefault("mask_embs", []).append(out.detach().clone())

    hooks = [model.clip_visual_extractor.register_forward_hook(on_clip),
             model.side_adapter_network.register_forward_hook(on_side),
             model.clip_rec_head.register_forward_hook(on_rec)]
    return rec, hooks


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(int(spec.get("threads", 1)))
    from detectron2.structures import Instances

    cfg, model, captured = build(spec)
    # CLIP as built (before any change to the parameters SAN trains, some of which it shares).
    torch.save(captured["model"].state_dict(), spec["clip"])
    perturb(model, int(spec["seed"]))
    torch.save({"model": model.state_dict()}, spec["checkpoint"])
    vocab = list(spec["vocabulary"])
    inputs = torch.load(spec["inputs"])
    out: dict[str, Any] = {"trainable": sorted(n for n, p in model.named_parameters()
                                               if p.requires_grad)}
    with torch.no_grad():
        out["classifier"] = (model.ov_classifier.logit_scale.exp()
                             * model.ov_classifier.get_classifier_by_vocabulary(vocab)).clone()
        out["images"] = []
        for image, size in zip(inputs["images"], inputs["output_sizes"]):
            rec, hooks = recorder(model)
            result = model([{"image": image, "height": size[0], "width": size[1],
                             "vocabulary": vocab}])[0]["sem_seg"]
            for hook in hooks:
                hook.remove()
            rec["sem_seg"] = result.clone()
            out["images"].append(rec)
    # One training step: the same image and labels, the global generator seeded right before.
    model.train()
    label = inputs["train_label"]
    classes = [int(c) for c in label.unique() if int(c) != 255]
    inst = Instances(tuple(label.shape))
    inst.gt_classes = torch.tensor(classes, dtype=torch.int64)
    inst.gt_masks = torch.stack([label == c for c in classes])
    batch = [{"image": inputs["train_image"], "height": label.shape[0], "width": label.shape[1],
              "vocabulary": vocab, "instances": inst}]
    torch.manual_seed(int(spec["seed"]))
    losses = model(batch)
    sum(losses.values()).backward()
    out["losses"] = {k: float(v) for k, v in losses.items()}
    out["grads"] = {n: p.grad.detach().clone() for n, p in model.named_parameters()
                    if p.requires_grad and p.grad is not None}
    torch.save(out, spec["output"])


if __name__ == "__main__":
    main()
