"""ZegCLIP (Zhou et al., CVPR 2023): one-stage zero-shot segmentation on a prompted CLIP ViT.

Importing the package registers ``ZegCLIPHead`` in ``HEAD_REGISTRY`` and the official checkpoint
format ``zegclip`` (``zsseg-bench convert --from zegclip``, :mod:`.convert`); the CLI finds
``METHOD`` (its :class:`~zsseg_bench.config.projects.Method`) through the
``zsseg_bench.projects`` entry point.
"""

from zsseg_bench.config.projects import Method

from . import convert  # noqa: F401  (registers the "zegclip" checkpoint format)
from .config import add_zegclip_config
from .head import ZegCLIPHead

#: What the suite knows of the method (its entry point; zsseg_bench.config.projects).
METHOD = Method(
    name="zegclip", label="ZegCLIP", add_config=add_zegclip_config, head="ZegCLIPHead",
    # Its speed is compared to its own published efficiency row (ZiqinZhou66/ZegCLIP README
    # "Efficiency results"; zsseg_bench/evaluation/published.py).
    published="ZegCLIP",
)

__all__ = ["METHOD", "ZegCLIPHead", "add_zegclip_config"]
