"""Published numbers as report rows (reference rows, never mixed with measured ones).

The figures and their sources are :mod:`zsseg_bench.evaluation.published` (one table for the
report and the speed presets); efficiency was measured on the paper's hardware (GTX 1080Ti,
512x512 input), so its FPS is *not* comparable with FPS measured by this suite elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from zsseg_bench.config.setting import Setting
from zsseg_bench.evaluation.published import (
    DATASET_LABELS,
    PUBLISHED_ACCURACY,
    PUBLISHED_EFFICIENCY,
    published_speedup,
)

#: The canonical dataset keys of published rows and the substrings that map a run's dataset
#: name (spec label or registered name) onto them.
DATASET_ALIASES: dict[str, tuple[str, ...]] = {
    "voc": ("voc",),
    "coco_stuff": ("coco",),
    "pcontext": ("context",),
}


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
        the published two-stage baseline on the same dataset) attached to inductive rows where the
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
        e = eff.get((acc.method, acc.dataset)) if acc.setting == Setting.INDUCTIVE else None
        if e is not None:
            row.update(fps=e.fps, gflops=e.gflops, params_learnable_m=e.learnable_params_m,
                       hardware=e.hardware, speedup=published_speedup(e),
                       source=f"{acc.source}; efficiency: {e.source}")
        rows.append(row)
    return rows
