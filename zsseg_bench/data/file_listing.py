"""Small helpers shared by dataset loading and the prepare scripts: the files of a folder by
stem, and the short listing of offending files or values that error messages show.

It imports nothing from the package, so both sides import it without cycles.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["MAX_LISTED", "files_by_stem", "listing"]

#: How many offending files or values an error message lists before "and N more".
MAX_LISTED = 5


def listing(items: Sequence[object]) -> str:
    """The first :data:`MAX_LISTED` items, comma-separated, then ``" and N more"`` if any."""
    shown = ", ".join(str(x) for x in items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def files_by_stem(folder: str, ext: str) -> dict[str, str]:
    """Stem -> file name of the non-hidden ``*.<ext>`` files of ``folder``.

    Args:
        folder: an existing folder.
        ext: the extension, with or without its leading dot (``"png"`` or ``".png"``).
    """
    suffix = "." + ext.lstrip(".")
    return {
        name[: -len(suffix)]: name
        for name in os.listdir(folder)
        if name.endswith(suffix) and not name.startswith(".")
    }
