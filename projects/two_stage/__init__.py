"""Two-stage zero-shot segmentation: mask proposals + CLIP crop classification (zsseg/ZegFormer).

Importing the package registers ``TwoStageHead`` in ``HEAD_REGISTRY`` and the official checkpoint
format ``zsseg`` (``zsseg-bench convert --from zsseg``, :mod:`.convert`); the CLI reaches it through
the ``zsseg_bench.projects`` entry point ``add_two_stage_config``.
"""

from . import convert  # noqa: F401  (registers the "zsseg" checkpoint format)
from .config import add_two_stage_config
from .head import TwoStageHead

__all__ = ["add_two_stage_config", "TwoStageHead"]
