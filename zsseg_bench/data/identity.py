"""What data a run used: each dataset's root, image count and a cheap fingerprint.

The fingerprint hashes the dataset's file list (image and label paths relative to its root, in
order) with each file's size: it changes when files are added, removed, renamed or resized
(another rendering of the toy world, another download, another split file), and stays the same
when the same files sit under another root. It reads no file's content (one ``stat`` per
file), so it costs about a second per 100k files on a local disk. Runs record it in
``env.json`` and ``metrics.json``; sweeps hash it into their run ids.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

from zsseg_bench.data.catalog import DatasetCatalog
from zsseg_bench.utils.errors import UserError

#: Hex digits of a fingerprint.
FINGERPRINT_CHARS = 16
_FILE_KEYS = ("file_name", "sem_seg_file_name")


def dataset_identity(name: str) -> dict[str, Any]:
    """``{"name", "root", "images", "fingerprint"}`` of the registered dataset ``name``.

    Raises:
        UserError: the dataset is not registered, absent (its loader says how to prepare it) or
            a file it lists is missing.
    """
    dicts = DatasetCatalog.get(name)
    paths = [d[k] for d in dicts for k in _FILE_KEYS if d.get(k)]
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths]) \
        if paths else ""
    digest = hashlib.sha1()
    for path in paths:
        try:
            size = os.stat(path).st_size
        except OSError as e:
            raise UserError(f"dataset '{name}': cannot read {path} ({e.strerror}); prepare the "
                            "dataset again (datasets/README.md)") from None
        digest.update(f"{os.path.relpath(os.path.abspath(path), root)}\0{size}\n".encode())
    return {"name": name, "root": root, "images": len(dicts),
            "fingerprint": digest.hexdigest()[:FINGERPRINT_CHARS]}


def data_identity(train: Iterable[str] = (), test: Iterable[str] = (),
                  cache: dict[str, dict[str, Any]] | None = None) -> dict[str, list[dict]]:
    """``{"train": [...], "test": [...]}`` of :func:`dataset_identity` per dataset (a dataset
    listed in both is computed once; ``cache`` keeps them across calls)."""
    cache = {} if cache is None else cache

    def one(name: str) -> dict[str, Any]:
        if name not in cache:
            cache[name] = dataset_identity(name)
        return cache[name]

    return {"train": [one(n) for n in train], "test": [one(n) for n in test]}
