"""ZegCLIP (Zhou et al., CVPR 2023): one-stage zero-shot segmentation on a prompted CLIP ViT.

Importing the package registers ``ZegCLIPHead`` in ``HEAD_REGISTRY`` and the official checkpoint
format ``zegclip`` (``zsseg-bench convert --from zegclip``, :mod:`.convert`); the CLI finds
:func:`add_zegclip_config` through the ``zsseg_bench.projects`` entry point.
"""

from . import convert  # noqa: F401  (registers the "zegclip" checkpoint format)
from .config import add_zegclip_config
from .head import ZegCLIPHead

__all__ = ["ZegCLIPHead", "add_zegclip_config"]
