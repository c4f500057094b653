"""AlignZeg (Ge et al., ECCV 2024): region-wise zero-shot segmentation with mutually-refined
proposals, generalization-enhanced classification and predictive bias correction -- a documented
reconstruction from the paper's abstract (README.md).

Importing the package registers ``AlignZegHead`` in ``HEAD_REGISTRY``; the CLI finds
``METHOD`` (its :class:`~zsseg_bench.config.projects.Method`) through the
``zsseg_bench.projects`` entry point.
"""

from zsseg_bench.config.projects import Method

from .config import add_alignzeg_config
from .head import AlignZegHead

#: What the suite knows of the method (its entry point; zsseg_bench.config.projects).
METHOD = Method(name="alignzeg", label="AlignZeg", add_config=add_alignzeg_config,
                head="AlignZegHead")

__all__ = ["METHOD", "AlignZegHead", "add_alignzeg_config"]
