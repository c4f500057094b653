"""Data layer: catalogs, datasets, zero-shot splits, mapper and loaders.

Importing it registers the built-in datasets (the toy world, VOC, COCO-Stuff, Context) in the
catalogs, as ``import detectron2.data`` does.
"""

from zsseg_bench.data import datasets  # noqa: F401  (registers the built-in datasets)
