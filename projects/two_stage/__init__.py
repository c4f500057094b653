"""Two-stage zero-shot segmentation: mask proposals + CLIP crop classification (zsseg/ZegFormer)."""

from typing import Any


def add_two_stage_config(cfg: Any) -> None:
    """Adds ``MODEL.TWO_STAGE.*`` keys to ``cfg`` (filled in by the two-stage issue)."""
