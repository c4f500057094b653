"""Two-stage zero-shot segmentation: mask proposals + CLIP crop classification (zsseg/ZegFormer).

Importing the package registers ``TwoStageHead`` in ``HEAD_REGISTRY`` and the official checkpoint
format ``zsseg`` (``zsseg-bench convert --from zsseg``, :mod:`.convert`); the CLI reaches it through
the ``zsseg_bench.projects`` entry point ``METHOD`` (:class:`~zsseg_bench.config.projects.Method`).
"""

from zsseg_bench.config.projects import Method, SpeedKnobs

from . import convert  # noqa: F401  (registers the "zsseg" checkpoint format)
from .config import add_two_stage_config
from .head import TwoStageHead

#: What the suite knows of the method (its entry point; zsseg_bench.config.projects).
METHOD = Method(
    name="two_stage", label="Two-stage (zsseg)", add_config=add_two_stage_config,
    head="TwoStageHead",
    # The scaling grid's proposals factor: MaskFormer's queries (= mask proposals = CLIP crops).
    speed=SpeedKnobs(proposals_key="MODEL.TWO_STAGE.DECODER.NUM_QUERIES"),
    # The two-stage baseline of ZegCLIP's efficiency comparison is ZegFormer (Zhou et al.,
    # ZegCLIP, arXiv:2212.03588v3; zsseg_bench/evaluation/published.py); this model is zsseg's
    # pipeline, the same structure (proposals + CLIP on every mask crop).
    published="ZegFormer",
    # The one-stage methods' speed claims are made against the two-stage pipeline.
    reference=True,
)

__all__ = ["METHOD", "add_two_stage_config", "TwoStageHead"]
