"""Detectron2-style ``DatasetCatalog`` / ``MetadataCatalog``.

When detectron2 is importable its own catalogs are used, so datasets registered here are
visible to detectron2 code and vice versa; otherwise a minimal implementation with the same
API is provided.
"""

from __future__ import annotations

import difflib
import os
from collections import UserDict
from collections.abc import Callable
from typing import Any

from zsseg_bench.utils.errors import UserError

DATASETS_ENV = "ZSSEG_DATASETS"


def get_datasets_root() -> str:
    """The root of all datasets: ``$ZSSEG_DATASETS``, default ``./datasets``."""
    return os.path.expanduser(os.environ.get(DATASETS_ENV, "datasets"))


class _DatasetCatalog(UserDict):
    """Name -> function returning a list of dataset dicts (``file_name``, ``sem_seg_file_name``,
    ``height``, ``width``, ``image_id``)."""

    def register(self, name: str, func: Callable[[], list[dict]]) -> None:
        """Registers ``func`` under ``name``; a name can be registered once."""
        if not callable(func):
            raise TypeError("a dataset must be registered as a function returning dataset dicts")
        if name in self:
            raise AssertionError(f"dataset '{name}' is already registered")
        self[name] = func

    def get(self, name: str) -> list[dict]:  # type: ignore[override]
        """Calls the registered function; an unknown name is an error listing the known ones."""
        try:
            func = self[name]
        except KeyError:
            raise unknown_dataset_error(name, self.list()) from None
        return func()

    def list(self) -> list[str]:
        """Names of all registered datasets."""
        return list(self.keys())

    def remove(self, name: str) -> None:
        """Removes a dataset (tests)."""
        self.pop(name)


class Metadata:
    """Attributes of a dataset: ``stuff_classes``, ``seen_classes``, ``unseen_classes``,
    ``ignore_label``, ``evaluator_type``, ... An attribute, once set, cannot change value."""

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)

    def __getattr__(self, key: str) -> Any:
        raise AttributeError(f"metadata of dataset '{self.name}' has no attribute '{key}'; "
                             f"it has: {', '.join(sorted(self.__dict__))}")

    def __setattr__(self, key: str, value: Any) -> None:
        old = self.__dict__.get(key, value)
        if old != value:
            raise AssertionError(f"metadata '{key}' of dataset '{self.name}' cannot be changed "
                                 f"from {old!r} to {value!r}")
        object.__setattr__(self, key, value)

    def set(self, **kwargs: Any) -> Metadata:
        """Sets several attributes at once."""
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """The attribute ``key`` or ``default``."""
        return self.__dict__.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        """A copy of all attributes."""
        return dict(self.__dict__)


class _MetadataCatalog(UserDict):
    """Name -> :class:`Metadata`, created on first access."""

    def get(self, name: str) -> Metadata:  # type: ignore[override]
        """The metadata of ``name`` (created empty if absent, as detectron2 does)."""
        if name not in self:
            self[name] = Metadata(name)
        return self[name]

    def list(self) -> list[str]:
        """Names with metadata."""
        return list(self.keys())

    def remove(self, name: str) -> None:
        """Removes the metadata of ``name`` (tests)."""
        self.pop(name)


try:  # share the catalogs with detectron2 when it is installed
    from detectron2.data import DatasetCatalog, MetadataCatalog  # type: ignore
except ImportError:
    DatasetCatalog = _DatasetCatalog()
    MetadataCatalog = _MetadataCatalog()


def unknown_dataset_error(name: str, registered: list[str], what: str = "") -> UserError:
    """The error of a dataset name that is not registered: the closest names, then all."""
    close = difflib.get_close_matches(name, registered, n=3, cutoff=0.6)
    close += [n for n in registered if n not in close and n.startswith(name.split("_")[0])
              and set(name.split("_")) <= set(n.split("_"))][:3 - len(close)]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return UserError(f"dataset '{name}'{what} is not registered{hint} (registered datasets: "
                     f"{', '.join(sorted(registered)) or '(none)'})")


def dataset_class_names(dataset_name: str) -> list[str]:
    """The full class list of a registered dataset (``stuff_classes``), in id order.

    Raises:
        UserError: the dataset is not registered, or its metadata has no (or an empty)
            ``stuff_classes``.
    """
    if dataset_name not in DatasetCatalog.list() and \
            not MetadataCatalog.get(dataset_name).get("stuff_classes"):
        raise unknown_dataset_error(dataset_name, DatasetCatalog.list())
    names = list(MetadataCatalog.get(dataset_name).get("stuff_classes") or [])
    if not names:
        raise UserError(f"dataset '{dataset_name}' has no stuff_classes in its metadata; is it "
                        f"registered (zsseg_bench.data.datasets)?")
    return names


def class_split(dataset_name: str) -> tuple[list[str], list[int], list[int]]:
    """(class names, seen ids, unseen ids) of a registered dataset.

    Without ``seen_classes`` in the metadata every class is seen; without ``unseen_classes``
    none is unseen.

    Raises:
        UserError: the dataset's metadata has no (or an empty) ``stuff_classes``.
    """
    names = dataset_class_names(dataset_name)
    meta = MetadataCatalog.get(dataset_name)
    seen = list(meta.get("seen_classes", range(len(names))))
    unseen = list(meta.get("unseen_classes", []))
    return names, seen, unseen


__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata", "get_datasets_root", "DATASETS_ENV",
           "class_split", "dataset_class_names"]
