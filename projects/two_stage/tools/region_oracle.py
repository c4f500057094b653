"""CLIP on ground-truth regions: how well the second stage classifies perfect proposals.

Every class present in an image's label map is one region (all its pixels). The region is cut as
the two-stage head cuts a proposal (the config's ``MODEL.TWO_STAGE.CLIP_ENSEMBLE`` crop style,
size and temperature; :class:`~..clip_classifier.CropClassifier`) and classified over the
dataset's whole vocabulary. No proposal network is involved, so no trained weights are needed:
this is the oracle-mask analysis of two-stage papers, here used to see which classes CLIP can
tell apart on crops at all (e.g. the toy world's bars, which a stretched crop turns into
squares).

Usage::

    python -m zsseg_bench.projects.two_stage.tools.region_oracle \\
        --config-file configs/synthetic/two_stage.yaml --dataset holdout \\
        --square-box false true --out region_oracle.json

``--dataset val`` uses ``DATASETS.TEST[0]``; ``holdout`` the toy world's held-out renders.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import torch

from zsseg_bench.utils.file_io import atomic_write_json

#: Regions smaller than this (pixels) are skipped: a few stray pixels are not an object.
MIN_REGION_PIXELS = 16


def _setting_name(square_box: bool, crop: str) -> str:
    return f"crop={crop},square_box={square_box}"


def region_accuracy(cfg: Any, dataset: str, square_boxes: list[bool], crops: list[str],
                    max_images: int = 0) -> dict[str, dict[str, Any]]:
    """Top-1 accuracy of CLIP on every ground-truth region of ``dataset``, per setting.

    Returns:
        per setting (``"crop=..,square_box=.."``): ``accuracy`` (over all regions, %),
        ``mean_seen`` / ``mean_unseen`` (mean of the per-class accuracies, %), ``per_class``
        (class name -> accuracy %, classes with at least one region), ``class_regions``
        (class name -> number of regions) and ``regions`` (their total).
    """
    from zsseg_bench.data.build import get_dataset_dicts
    from zsseg_bench.data.catalog import MetadataCatalog, class_split
    from zsseg_bench.data.image_io import read_image, read_sem_seg
    from zsseg_bench.data.zero_shot import IGNORE_LABEL
    from zsseg_bench.modeling.clip import build_clip

    from ..build import build_crop_classifier
    from ..clip_classifier import CropBatch

    names, seen_ids, unseen_ids = class_split(dataset)
    ignore = int(MetadataCatalog.get(dataset).get("ignore_label", IGNORE_LABEL))
    clip = build_clip(cfg)
    classifier = build_crop_classifier(cfg)
    mean = torch.tensor(cfg.MODEL.PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(cfg.MODEL.PIXEL_STD).view(3, 1, 1)
    settings = [(s, c) for c in crops for s in square_boxes]
    correct = {st: Counter() for st in settings}
    total: Counter = Counter()
    with torch.no_grad():
        text = clip.embed_texts(names, cfg.MODEL.CLIP.TEMPLATES)
        dicts = get_dataset_dicts([dataset], key="--dataset")
        for d in dicts[:max_images] if max_images else dicts:
            image = torch.from_numpy(read_image(d["file_name"], cfg.INPUT.FORMAT).copy())
            image = (image.permute(2, 0, 1).float() - mean) / std
            label = torch.from_numpy(read_sem_seg(d["sem_seg_file_name"], len(names),
                                                  ignore).astype("int64"))
            ids = [c for c in label.unique().tolist() if c != ignore
                   and int((label == c).sum()) >= MIN_REGION_PIXELS]
            if not ids:
                continue
            regions = torch.stack([label == c for c in ids])
            batch = CropBatch(masks=[regions], valid=torch.ones(1, len(ids), dtype=torch.bool))
            total.update(ids)
            for square_box, crop in settings:
                classifier.square_box, classifier.crop = square_box, crop
                predicted = classifier.classify(clip, image[None], batch, text)[0].argmax(-1)
                correct[(square_box, crop)].update(
                    c for c, p in zip(ids, predicted.tolist()) if c == p)

    def mean_of(accs: dict[int, float], group: list[int]) -> float:
        values = [accs[c] for c in group if c in accs]
        return sum(values) / len(values) if values else float("nan")

    results = {}
    for setting in settings:
        accs = {c: 100.0 * correct[setting][c] / n for c, n in total.items()}
        results[_setting_name(*setting)] = {
            "accuracy": 100.0 * sum(correct[setting].values()) / max(sum(total.values()), 1),
            "mean_seen": mean_of(accs, seen_ids),
            "mean_unseen": mean_of(accs, unseen_ids),
            "per_class": {names[c]: accs[c] for c in sorted(accs)},
            "class_regions": {names[c]: total[c] for c in sorted(accs)},
            "regions": sum(total.values()),
        }
    return results


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(argv: list[str] | None = None) -> int:
    from zsseg_bench.config.command_line import setup_cfg

    from .datasets import add_dataset_arguments, resolve_dataset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", required=True)
    add_dataset_arguments(p)
    p.add_argument("--square-box", type=_bool, nargs="+", default=[False, True])
    p.add_argument("--crops", nargs="+", default=["masked"])
    p.add_argument("--max-images", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON file of the accuracies per setting")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = p.parse_args(argv)
    cfg = setup_cfg(args.config_file, args.opts)
    dataset = resolve_dataset(args, cfg)
    results = region_accuracy(cfg, dataset, args.square_box, args.crops, args.max_images)
    atomic_write_json(args.out, {"dataset": dataset, "config": args.config_file,
                                 "overrides": args.opts, "results": results})
    for name, res in results.items():
        print(f"{name:32s} accuracy {res['accuracy']:5.1f}  seen {res['mean_seen']:5.1f}  "
              f"unseen {res['mean_unseen']:5.1f}  ({res['regions']} regions)")
        print("    " + "  ".join(f"{c}: {a:.0f}" for c, a in res["per_class"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
