"""``@configurable``: a constructor callable either with explicit arguments or with a config.

As in Detectron2, a class decorated on its ``__init__`` with ``@configurable`` defines
``from_config(cls, cfg, *args, **kwargs) -> dict``; ``Cls(cfg, ...)`` then becomes
``Cls(**Cls.from_config(cfg, ...))``, while ``Cls(head=..., clip=...)`` stays plain Python.
Config plumbing thus stays out of ``__init__``, and tests build modules without configs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fvcore.common.config import CfgNode


def configurable(init: Callable[..., None]) -> Callable[..., None]:
    """Decorates ``__init__`` so that a ``CfgNode`` first argument goes through ``from_config``."""

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        cfg = args[0] if args else kwargs.get("cfg")
        if isinstance(cfg, CfgNode):
            if args:
                args = args[1:]
            else:
                kwargs.pop("cfg")
            explicit = type(self).from_config(cfg, *args, **kwargs)
            init(self, **explicit)
        else:
            init(self, *args, **kwargs)

    return wrapped
