"""Published numbers, shown in reports as reference rows (never mixed with measured ones).

Transcribed from the papers (via the project's REFERENCES.md, "Published results" and
"Published efficiency"); each entry names its source. Accuracy in % (pAcc / mIoU-S / mIoU-U /
hIoU); efficiency on the paper's hardware (GTX 1080Ti, 512x512 input), so FPS is *not*
comparable with FPS measured by this suite on other hardware.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

#: The canonical dataset keys of published rows and the substrings that map a run's dataset
#: name (spec label or registered name) onto them.
DATASET_ALIASES: dict[str, tuple[str, ...]] = {
    "voc": ("voc",),
    "coco_stuff": ("coco",),
    "pcontext": ("context",),
}
DATASET_LABELS = {"voc": "VOC", "coco_stuff": "COCO-Stuff", "pcontext": "Context"}

ZEGCLIP_PAPER = "Zhou et al., ZegCLIP, CVPR 2023 (arXiv:2212.03588)"
ZSSEG_PAPER = "Xu et al., zsseg, ECCV 2022 (arXiv:2112.14757)"
ZEGFORMER_PAPER = "Ding et al., ZegFormer, CVPR 2022 (arXiv:2112.07910)"


@dataclasses.dataclass(frozen=True)
class PublishedAccuracy:
    """pAcc / mIoU-S / mIoU-U / hIoU of one method on one dataset, as published."""

    method: str
    family: str  # "two-stage" or "one-stage"
    setting: str
    dataset: str
    pacc: float | None
    miou_s: float
    miou_u: float
    hiou: float
    source: str


@dataclasses.dataclass(frozen=True)
class PublishedEfficiency:
    """Learnable parameters (M), GFLOPs and FPS of one method on one dataset, as published."""

    method: str
    dataset: str
    learnable_params_m: float
    gflops: float
    fps: float
    hardware: str
    source: str


# Source: REFERENCES.md "Published results"; numbers as compared in the ZegCLIP paper
# (Tables of inductive and transductive results), original papers cited per row.
PUBLISHED_ACCURACY: tuple[PublishedAccuracy, ...] = (
    # ZegFormer, inductive (ZegFormer paper; as compared in ZegCLIP)
    PublishedAccuracy("ZegFormer", "two-stage", "inductive", "voc",
                      None, 86.4, 63.6, 73.3, ZEGFORMER_PAPER),
    PublishedAccuracy("ZegFormer", "two-stage", "inductive", "coco_stuff",
                      None, 36.6, 33.2, 34.8, ZEGFORMER_PAPER),
    # zsseg, inductive (zsseg paper; as compared in ZegCLIP)
    PublishedAccuracy("zsseg", "two-stage", "inductive", "voc",
                      90.0, 83.5, 72.5, 77.5, ZSSEG_PAPER),
    PublishedAccuracy("zsseg", "two-stage", "inductive", "coco_stuff",
                      60.3, 39.3, 36.3, 37.8, ZSSEG_PAPER),
    # ZegCLIP, inductive (ZegCLIP paper)
    PublishedAccuracy("ZegCLIP", "one-stage", "inductive", "voc",
                      94.6, 91.9, 77.8, 84.3, ZEGCLIP_PAPER),
    PublishedAccuracy("ZegCLIP", "one-stage", "inductive", "coco_stuff",
                      62.0, 40.2, 41.4, 40.8, ZEGCLIP_PAPER),
    PublishedAccuracy("ZegCLIP", "one-stage", "inductive", "pcontext",
                      76.2, 46.0, 54.6, 49.9, ZEGCLIP_PAPER),
    # zsseg + self-training, transductive (zsseg paper; as compared in ZegCLIP)
    PublishedAccuracy("zsseg + ST", "two-stage", "transductive", "voc",
                      88.7, 79.2, 78.1, 79.3, ZSSEG_PAPER),
    PublishedAccuracy("zsseg + ST", "two-stage", "transductive", "coco_stuff",
                      63.8, 39.6, 43.6, 41.5, ZSSEG_PAPER),
    # ZegCLIP + self-training, transductive (ZegCLIP paper)
    PublishedAccuracy("ZegCLIP + ST", "one-stage", "transductive", "voc",
                      95.1, 91.8, 82.2, 86.7, ZEGCLIP_PAPER),
    PublishedAccuracy("ZegCLIP + ST", "one-stage", "transductive", "coco_stuff",
                      68.8, 40.6, 54.8, 46.6, ZEGCLIP_PAPER),
    PublishedAccuracy("ZegCLIP + ST", "one-stage", "transductive", "pcontext",
                      77.2, 46.6, 65.4, 54.4, ZEGCLIP_PAPER),
)

# Source: REFERENCES.md "Published efficiency" (ZegCLIP paper, efficiency comparison at
# 512x512 on a GTX 1080Ti; ZegFormer is the two-stage baseline of that comparison).
PUBLISHED_EFFICIENCY: tuple[PublishedEfficiency, ...] = (
    PublishedEfficiency("ZegFormer", "voc", 60.3, 1829.3, 1.7, "GTX 1080Ti", ZEGCLIP_PAPER),
    PublishedEfficiency("ZegCLIP", "voc", 13.8, 110.4, 9.0, "GTX 1080Ti", ZEGCLIP_PAPER),
    PublishedEfficiency("ZegFormer", "coco_stuff", 60.3, 1875.1, 1.5, "GTX 1080Ti",
                        ZEGCLIP_PAPER),
    PublishedEfficiency("ZegCLIP", "coco_stuff", 14.6, 123.9, 6.7, "GTX 1080Ti", ZEGCLIP_PAPER),
)
#: The method the published speed-ups are relative to (the two-stage method of the comparison).
PUBLISHED_BASELINE = "ZegFormer"


def canonical_dataset(name: str) -> str | None:
    """The published-dataset key (``voc``, ``coco_stuff``, ``pcontext``) of a run's dataset
    name, or None (e.g. the toy ``synthetic`` world has no published numbers)."""
    low = name.lower()
    for key, needles in DATASET_ALIASES.items():
        if key == low or any(n in low for n in needles):
            return key
    return None


def published_rows(datasets: Iterable[str] | None = None) -> list[dict]:
    """Published rows as report records (keys as in the measured aggregate table).

    Args:
        datasets: canonical dataset keys to include; None for all.

    Returns:
        One dict per published accuracy entry, with efficiency numbers (and the speed-up over
        :data:`PUBLISHED_BASELINE` on the same dataset) attached to inductive rows where the
        paper reports them.
    """
    wanted = None if datasets is None else set(datasets)
    eff = {(e.method, e.dataset): e for e in PUBLISHED_EFFICIENCY}
    rows = []
    for acc in PUBLISHED_ACCURACY:
        if wanted is not None and acc.dataset not in wanted:
            continue
        row = {
            "method_label": acc.method, "setting": acc.setting,
            "dataset": DATASET_LABELS[acc.dataset], "pAcc": acc.pacc, "mIoU-S": acc.miou_s,
            "mIoU-U": acc.miou_u, "hIoU": acc.hiou, "fps": None, "gflops": None,
            "params_learnable_m": None, "speedup": None, "source": acc.source,
            "hardware": None,
        }
        e = eff.get((acc.method, acc.dataset)) if acc.setting == "inductive" else None
        if e is not None:
            base = eff.get((PUBLISHED_BASELINE, acc.dataset))
            row.update(fps=e.fps, gflops=e.gflops, params_learnable_m=e.learnable_params_m,
                       hardware=e.hardware, source=f"{acc.source}; efficiency: {e.source}")
            if base is not None:
                row["speedup"] = e.fps / base.fps
        rows.append(row)
    return rows
