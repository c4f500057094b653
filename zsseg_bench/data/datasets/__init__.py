"""Datasets: importing this package registers the built-in ones (see :mod:`.builtin`)."""

from zsseg_bench.data.datasets import builtin  # noqa: F401  (registers the datasets)
from zsseg_bench.data.datasets.load_sem_seg import load_sem_seg

__all__ = ["load_sem_seg"]
