"""The suite inside detectron2: meta-architecture, config keys, mapper, evaluators, trainer parts.

Importing this package (it needs detectron2; the core never imports it) registers
:class:`~zsseg_bench.modeling.meta_arch.ZeroShotSegmentor` in detectron2's
``META_ARCH_REGISTRY`` and the suite's datasets in detectron2's catalogs, so that::

    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from zsseg_bench.integrations.detectron2 import add_zsseg_config

    cfg = get_cfg()
    add_zsseg_config(cfg)                      # the suite's and every method's keys
    cfg.merge_from_file("configs/synthetic/zegclip.yaml")
    model = build_model(cfg)                   # detectron2's builder, our model

``scripts/train_net.py`` trains and evaluates with detectron2's ``DefaultTrainer``. Details and
the differences between the two engines: ``zsseg_bench/integrations/detectron2/README.md``.
"""

from __future__ import annotations

try:
    import detectron2  # noqa: F401
except ImportError as e:  # a one-line reason instead of a traceback deep inside
    raise ImportError(
        "zsseg_bench.integrations.detectron2 needs detectron2, which is not installed: build it "
        "from source first (pip install --no-build-isolation "
        "'git+https://github.com/facebookresearch/detectron2.git@02b5c4e295e990042a714712c21dc79b"
        "731e8833'), see the README section "
        "'Using it from detectron2'") from e

from zsseg_bench.integrations.detectron2.config import add_zsseg_config, finalize_cfg
from zsseg_bench.integrations.detectron2.data import build_test_loader, build_train_loader
from zsseg_bench.integrations.detectron2.engine import (
    PhaseScheduleHook,
    ZeroShotStepTrainer,
    build_step_trainer,
)
from zsseg_bench.integrations.detectron2.evaluation import (
    GZSL_TASK,
    SuiteEvaluator,
    build_evaluator,
    side_by_side,
)
from zsseg_bench.integrations.detectron2.modeling import build_model, register_meta_arch

register_meta_arch()

__all__ = [
    "GZSL_TASK",
    "PhaseScheduleHook",
    "SuiteEvaluator",
    "ZeroShotStepTrainer",
    "add_zsseg_config",
    "build_evaluator",
    "build_model",
    "build_step_trainer",
    "build_test_loader",
    "build_train_loader",
    "finalize_cfg",
    "register_meta_arch",
    "side_by_side",
]
