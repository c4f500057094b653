"""The zero-shot setting (``ZERO_SHOT.SETTING``) as an enum, so code compares members, never
strings."""

from __future__ import annotations

import enum
from typing import Any


class Setting(str, enum.Enum):
    """What training may see of the unseen classes (a ``str``: equal to its config value).

    - ``INDUCTIVE``: neither their names nor their pixels (unseen pixels are ignored);
    - ``TRANSDUCTIVE``: their names and their pixels, unlabelled (self-training may
      pseudo-label them);
    - ``FULLY``: every class labelled (the fully supervised upper bound; the seen / unseen split
      only groups the metrics).
    """

    INDUCTIVE = "inductive"
    TRANSDUCTIVE = "transductive"
    FULLY = "fully"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def of(cls, cfg: Any) -> Setting:
        """The setting of a config (validated when the config was set up)."""
        return cls(cfg.ZERO_SHOT.SETTING)
