"""``zsseg_bench://`` paths: files shipped inside the package, like detectron2's ``detectron2://``.

``zsseg_bench://toy_clip/toy_clip.pt`` resolves to ``<package>/model_zoo/toy_clip/toy_clip.pt``.
The handler is registered on :data:`zsseg_bench.utils.file_io.PathManager` when
``zsseg_bench.modeling.clip`` is imported.
"""

from __future__ import annotations

import os
from typing import Any

from iopath.common.file_io import PathHandler

from zsseg_bench.utils.file_io import PathManager

#: Directory of the files shipped with the package (``zsseg_bench/model_zoo``).
MODEL_ZOO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "model_zoo")


class PackageFileHandler(PathHandler):
    """Resolve ``zsseg_bench://<relative path>`` to a file under ``zsseg_bench/model_zoo/``."""

    PREFIX = "zsseg_bench://"

    def _get_supported_prefixes(self) -> list[str]:
        return [self.PREFIX]

    def _local(self, path: str) -> str:
        return os.path.join(MODEL_ZOO_DIR, path[len(self.PREFIX):])

    def _get_local_path(self, path: str, force: bool = False, **kwargs: Any) -> str:
        return self._local(path)

    def _open(self, path: str, mode: str = "r", buffering: int = -1, **kwargs: Any) -> Any:
        return PathManager.open(self._local(path), mode, buffering=buffering, **kwargs)

    def _exists(self, path: str, **kwargs: Any) -> bool:
        return os.path.exists(self._local(path))

    def _isfile(self, path: str, **kwargs: Any) -> bool:
        return os.path.isfile(self._local(path))

    def _isdir(self, path: str, **kwargs: Any) -> bool:
        return os.path.isdir(self._local(path))

    def _ls(self, path: str, **kwargs: Any) -> list[str]:
        return os.listdir(self._local(path))


def register_package_handler() -> None:
    """Register :class:`PackageFileHandler` on the suite's PathManager (idempotent)."""
    if PackageFileHandler.PREFIX not in PathManager._path_handlers:
        PathManager.register_handler(PackageFileHandler())
