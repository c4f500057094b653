"""Registers the built-in datasets under the datasets root (``$ZSSEG_DATASETS``, default
``./datasets``), as Detectron2's ``builtin.py`` does. Importing :mod:`zsseg_bench.data.datasets`
runs this once; registration reads nothing from disk (datasets load lazily).

Names: ``synthetic_train`` / ``synthetic_val`` (toy world), ``synthetic_ov_val`` (the toy
open-vocabulary world, for cross-dataset evaluation), ``voc_zs_train`` / ``voc_zs_val``,
plus the COCO-Stuff and PASCAL Context splits named in their modules, and the evaluation-only
``ade20k_150_val``, ``ade20k_847_val`` and ``pcontext_459_val``.
"""

from __future__ import annotations

from zsseg_bench.data.catalog import get_datasets_root
from zsseg_bench.data.datasets.ade20k import register_all_ade20k_150
from zsseg_bench.data.datasets.ade20k_full import register_all_ade20k_847
from zsseg_bench.data.datasets.coco_stuff import register_all_coco_stuff
from zsseg_bench.data.datasets.pcontext import register_all_pcontext
from zsseg_bench.data.datasets.synthetic import register_all_synthetic, register_open_vocab
from zsseg_bench.data.datasets.voc import register_all_voc


def register_all(root: str) -> None:
    """Registers every built-in dataset under datasets root ``root``."""
    register_all_synthetic(root)
    register_open_vocab(root)
    register_all_voc(root)
    register_all_coco_stuff(root)
    register_all_pcontext(root)
    register_all_ade20k_150(root)
    register_all_ade20k_847(root)


register_all(get_datasets_root())
