"""SAN (Side Adapter Network; Xu et al., CVPR 2023): a light side network beside a frozen CLIP
predicts mask proposals and attention biases that make CLIP's last blocks classify the masks, in
one CLIP pass -- equal to the official code (MendelXu/SAN @ e19262d; README.md).

Importing the package registers ``SANHead`` in ``HEAD_REGISTRY`` and the official checkpoint
format ``san`` (``zsseg-bench convert --from san``, :mod:`.convert`); the CLI finds
``METHOD`` (its :class:`~zsseg_bench.config.projects.Method`) through the
``zsseg_bench.projects`` entry point.
"""

from zsseg_bench.config.projects import Method

from . import convert  # noqa: F401  (registers the "san" checkpoint format)
from .config import add_san_config
from .head import SANHead

#: What the suite knows of the method (its entry point; zsseg_bench.config.projects).
METHOD = Method(name="san", label="SAN", add_config=add_san_config, head="SANHead")

__all__ = ["METHOD", "SANHead", "add_san_config"]
