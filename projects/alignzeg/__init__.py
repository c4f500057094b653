"""AlignZeg (Ge et al., ECCV 2024): region-wise zero-shot segmentation with mutually-refined
proposals, generalization-enhanced classification and predictive bias correction -- a documented
reconstruction from the paper's abstract (README.md).

Importing the package registers ``AlignZegHead`` in ``HEAD_REGISTRY``; the CLI finds
:func:`add_alignzeg_config` through the ``zsseg_bench.projects`` entry point.
"""

from .config import add_alignzeg_config
from .head import AlignZegHead

__all__ = ["AlignZegHead", "add_alignzeg_config"]
