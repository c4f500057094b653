"""The held-out split of the toy world: every toy-only constant (calibrations, thresholds,
ablation choices) of every method is chosen on it, never on ``synthetic_val``.

The images are rendered by the toy world's own renderer with a base seed no built-in split uses
(``synthetic_train`` = seed 0, ``synthetic_val`` = seed 1,000,003), into a datasets root of their
own, and registered as ``synthetic_holdout_val`` with the toy world's metadata.
"""

from __future__ import annotations

import os
import tempfile

from zsseg_bench.data.catalog import DatasetCatalog
from zsseg_bench.data.datasets.synthetic import register_all_synthetic
from zsseg_bench.data.synthetic import dataset_is_complete, prepare_synthetic

#: Base seed of the held-out renders (val split seed = HOLDOUT_SEED + 1,000,003).
HOLDOUT_SEED = 5_000_000
#: Registered name of the held-out split.
HOLDOUT_NAME = "synthetic_holdout_val"
DEFAULT_NUM_IMAGES = 300
#: Where the tools render it by default (once; later calls reuse the files).
DEFAULT_ROOT = os.path.join(tempfile.gettempdir(), "zsseg_holdout")


def register_holdout(root: str, num_images: int = DEFAULT_NUM_IMAGES) -> str:
    """Renders (once) and registers the held-out split under ``root``; returns its name.

    Args:
        root: a datasets root of its own (not the one of the built-in toy world).
        num_images: images of the held-out split.
    """
    if not dataset_is_complete(root, num_train=1, num_val=num_images, seed=HOLDOUT_SEED):
        os.makedirs(root, exist_ok=True)
        prepare_synthetic(root, num_train=1, num_val=num_images, seed=HOLDOUT_SEED,
                          num_workers=1)
    if HOLDOUT_NAME not in DatasetCatalog.list():
        register_all_synthetic(root, prefix="synthetic_holdout", num_train=1,
                               num_val=num_images)
    return HOLDOUT_NAME
