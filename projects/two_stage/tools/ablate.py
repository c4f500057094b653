"""Inference-time ablations of a trained two-stage model, sharing the expensive work.

For every batch the proposals are computed once and the CLIP crop probabilities once per
(mask threshold, crop style); every ensemble weight then only re-runs the fusion. Each setting
has its own evaluator (the suite's GZSL evaluator), so the figures are exactly those of
``zsseg-bench eval`` with the corresponding ``MODEL.TWO_STAGE.CLIP_ENSEMBLE.*`` overrides
(checked on the first batch for the config's own setting).

Usage::

    python -m zsseg_bench.projects.two_stage.tools.ablate \\
        --config-file configs/synthetic/two_stage.yaml --weights RUN/model_final.pth \\
        --dataset holdout --out ablation.json \\
        --weights-grid 0 0.5 0.6 0.7 0.8 0.9 1 --thresholds 0.3 0.5 0.7 --crops masked bbox

``--dataset val`` evaluates ``DATASETS.TEST[0]`` (report figures; never choose constants on it).
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import torch

from zsseg_bench.utils.file_io import atomic_write_json


def _setting_name(weight: float | None, threshold: float, crop: str) -> str:
    if weight is None:
        return "no_clip"
    return f"w={weight:g},thr={threshold:g},crop={crop}"


def run_ablation(cfg: Any, weights_path: str, dataset: str, ensemble_weights: list[float],
                 thresholds: list[float], crops: list[str], max_images: int = 0
                 ) -> dict[str, dict[str, float]]:
    """Metrics per setting (``"w=..,thr=..,crop=.."`` and ``"no_clip"``) on ``dataset``."""
    from zsseg_bench.data.build import build_test_loader
    from zsseg_bench.engine.checkpoint import build_model_with_weights
    from zsseg_bench.evaluation import build_evaluator
    from zsseg_bench.modeling.inference_modes import pad_to_batch, resize_scores

    model, _ = build_model_with_weights(cfg, weights_path)
    model.eval()
    model.set_test_dataset(dataset)
    head, clip = model.head, model.clip
    vocab = model.vocabulary(dataset, trainable_only=False)
    settings: list[tuple[float | None, float, str]] = list(
        itertools.product(ensemble_weights, thresholds, crops))
    settings.append((None, 0.0, ""))
    evaluators = {_setting_name(*s): build_evaluator(cfg, dataset) for s in settings}
    for ev in evaluators.values():
        ev.reset()
    default = (head.ensemble_weight, head.crop_classifier.mask_threshold,
               head.crop_classifier.crop)
    checked = False
    seen_images = 0
    with torch.no_grad():
        for inputs in build_test_loader(cfg, dataset):
            images = model.preprocess(inputs)
            batch = pad_to_batch(images, model.size_divisibility)
            sizes = [tuple(img.shape[-2:]) for img in images]
            embeddings, masks = head.propose(batch)[-1]
            query_text, crop_text = head.texts(clip, vocab)
            query_logits = head.classify_queries(embeddings, query_text)
            clip_cache: dict[tuple[float, str], tuple[torch.Tensor, torch.Tensor]] = {}
            for threshold, crop in itertools.product(thresholds, crops):
                head.crop_classifier.mask_threshold = threshold
                head.crop_classifier.crop = crop
                prepared = head.prepare_crops(masks, tuple(batch.shape[-2:]), sizes)
                probs = head.classify_crops(clip, batch, prepared, crop_text)
                clip_cache[(threshold, crop)] = (probs, prepared.valid)
            head.crop_classifier.mask_threshold, head.crop_classifier.crop = default[1:]
            for w, threshold, crop in settings:
                head.ensemble_weight = default[0] if w is None else w
                probs, valid = clip_cache.get((threshold, crop), (None, None))
                scores = head.fuse(query_logits, masks, probs, valid, vocab.is_seen,
                                   size=tuple(batch.shape[-2:]))
                outputs = [{"sem_seg": resize_scores(
                    s[:, : img.shape[-2], : img.shape[-1]],
                    (int(x.get("height", img.shape[-2])), int(x.get("width", img.shape[-1]))))}
                    for s, img, x in zip(scores, images, inputs)]
                if not checked and (w, threshold, crop) == default:
                    _check_against_model(model, inputs, outputs)
                    checked = True
                evaluators[_setting_name(w, threshold, crop)].process(inputs, outputs)
            head.ensemble_weight = default[0]
            seen_images += len(inputs)
            if max_images and seen_images >= max_images:
                break
    return {name: dict(ev.evaluate()) for name, ev in evaluators.items()}


def _check_against_model(model: Any, inputs: list[dict], outputs: list[dict]) -> None:
    """The shared-work path must give exactly what the model itself gives."""
    reference = model(inputs)
    for ref, out in zip(reference, outputs):
        if not torch.allclose(ref["sem_seg"], out["sem_seg"], atol=1e-5, rtol=1e-4):
            diff = (ref["sem_seg"] - out["sem_seg"]).abs().max()
            raise RuntimeError(f"ablation path differs from the model's own inference ({diff})")


def main(argv: list[str] | None = None) -> int:
    from zsseg_bench.config.command_line import setup_cfg

    from .datasets import add_dataset_arguments, resolve_dataset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True, help="model_final.pth of a two-stage run")
    add_dataset_arguments(p)
    p.add_argument("--weights-grid", type=float, nargs="+", default=[0.8])
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.5])
    p.add_argument("--crops", nargs="+", default=["masked"])
    p.add_argument("--max-images", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON file of the metrics per setting")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = p.parse_args(argv)
    cfg = setup_cfg(args.config_file, args.opts)
    dataset = resolve_dataset(args, cfg)
    start = time.perf_counter()
    results = run_ablation(cfg, args.weights, dataset, args.weights_grid, args.thresholds,
                           args.crops, args.max_images)
    keys = ("mIoU-seen", "mIoU-unseen", "hIoU", "mIoU", "pAcc")
    record = {"dataset": dataset, "weights": args.weights, "config": args.config_file,
              "overrides": args.opts, "wall_time_s": time.perf_counter() - start,
              "results": {k: {m: v[m] for m in keys if m in v} for k, v in results.items()}}
    atomic_write_json(args.out, record)
    for name, res in record["results"].items():
        print(f"{name:32s} " + "  ".join(f"{m} {res.get(m, float('nan')):5.1f}" for m in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
