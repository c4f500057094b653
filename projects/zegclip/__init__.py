"""ZegCLIP (Zhou et al., CVPR 2023): one-stage zero-shot segmentation on a prompted CLIP ViT."""

from typing import Any


def add_zegclip_config(cfg: Any) -> None:
    """Adds ``MODEL.ZEGCLIP.*`` keys to ``cfg`` (filled in by the ZegCLIP issue)."""
