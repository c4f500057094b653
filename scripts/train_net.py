#!/usr/bin/env python
"""Trains and evaluates the suite's methods with detectron2's engine (its ``DefaultTrainer``,
``DetectionCheckpointer``, hooks, writers and ``launch``), in the style of detectron2's
``tools/train_net.py`` and Mask2Former's ``train_net.py``.

The suite's YAML configs work as they are; detectron2's own keys (``DATALOADER.SAMPLER_TRAIN``,
``TEST.EXPECTED_RESULTS``, ...) may be added::

    python scripts/train_net.py --config-file configs/synthetic/zegclip.yaml MODEL.DEVICE cpu
    python scripts/train_net.py --config-file configs/synthetic/zegclip.yaml --eval-only \
        MODEL.WEIGHTS output/model_final.pth          # also a `zsseg-bench train` checkpoint
    python scripts/train_net.py --config-file ... --num-gpus 8   # DDP, as detectron2's

Every evaluation reports the suite's GZSL metrics (``gzsl_sem_seg``) beside those of
detectron2's ``SemSegEvaluator`` (``sem_seg``) on the same predictions, logs both side by side
and writes them to ``OUTPUT_DIR/inference/<dataset>/results.json``. Needs detectron2
(``zsseg_bench/integrations/detectron2/README.md``).
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from collections import OrderedDict
from typing import Any

try:
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.engine import (
        DefaultTrainer,
        TrainerBase,
        create_ddp_model,
        default_argument_parser,
        default_setup,
        launch,
    )
    from detectron2.utils import comm
    from detectron2.utils.logger import setup_logger
except ImportError as e:
    sys.exit(f"error: scripts/train_net.py needs detectron2 ({e}); install it first, see the "
             "README section 'Using it from detectron2'")

from zsseg_bench.engine.ema import load_checkpoint_average
from zsseg_bench.engine.evaluate import unwrap
from zsseg_bench.engine.lr_scheduler import build_lr_scheduler
from zsseg_bench.engine.optimizer import build_optimizer
from zsseg_bench.engine.phase_schedule import PhaseSchedule
from zsseg_bench.integrations import detectron2 as zsseg_d2
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_json

logger = logging.getLogger("zsseg_bench.train_net")


class Trainer(DefaultTrainer):
    """detectron2's ``DefaultTrainer`` with the suite's model, optimizer, schedule, mapper,
    evaluators and training step (phase, accumulation, autocast, clipping)."""

    def __init__(self, cfg: Any):
        # DefaultTrainer.__init__, with the suite's step trainer and DDP's
        # find_unused_parameters taken from the model.
        TrainerBase.__init__(self)
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model, broadcast_buffers=False,
                                 find_unused_parameters=bool(getattr(
                                     model, "ddp_find_unused_parameters", False)))
        self._trainer = zsseg_d2.build_step_trainer(cfg, model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DetectionCheckpointer(model, cfg.OUTPUT_DIR,
                                                  trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.phase = TrainingPhase.SUPERVISED
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_model(cls, cfg: Any) -> Any:
        return zsseg_d2.build_model(cfg)

    @classmethod
    def build_optimizer(cls, cfg: Any, model: Any) -> Any:
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: Any, optimizer: Any) -> Any:
        return build_lr_scheduler(cfg, optimizer,
                                  restart_iter=PhaseSchedule.from_config(cfg).restart_iter)

    @classmethod
    def build_train_loader(cls, cfg: Any) -> Any:
        return zsseg_d2.build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg: Any, dataset_name: str) -> Any:
        return zsseg_d2.build_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg: Any, dataset_name: str, output_folder: str | None = None,
                        ) -> Any:
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return zsseg_d2.build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def test(cls, cfg: Any, model: Any, evaluators: Any = None) -> Any:
        """detectron2's ``test`` one dataset at a time, the model scoring that dataset's full
        class list; logs and writes the two evaluators' results side by side."""
        module = unwrap(model)
        previous = module.test_dataset
        results: dict[str, Any] = OrderedDict()
        try:
            for i, name in enumerate(cfg.DATASETS.TEST):
                module.set_test_dataset(name)
                one = cfg.clone()
                one.defrost()
                one.DATASETS.TEST = (name,)
                results[name] = super().test(one, model, None if evaluators is None
                                             else [evaluators[i]])
                if comm.is_main_process():
                    logger.info("Evaluation on %s:\n%s", name, zsseg_d2.side_by_side(results[name]))
                    atomic_write_json(os.path.join(cfg.OUTPUT_DIR, "inference", name,
                                                   "results.json"), results[name])
        finally:
            module.set_test_dataset(previous)
        return next(iter(results.values())) if len(results) == 1 else results

    def build_hooks(self) -> list:
        """detectron2's hooks, preceded by the phase schedule (transductive self-training)."""
        hooks = super().build_hooks()
        schedule = PhaseSchedule.from_config(self.cfg)
        if schedule.self_training_start is not None:
            hooks.insert(0, zsseg_d2.PhaseScheduleHook(schedule))
        return hooks

    def run_step(self) -> None:
        self._trainer.phase = self.phase
        super().run_step()

    def train(self) -> Any:
        """Trains (detectron2's loop); returns the results of the final evaluation."""
        super().train()
        return getattr(self, "_last_eval_results", None)


def setup(args: Any) -> Any:
    """detectron2's config with the suite's keys, the YAML file and overrides; logging and the
    output directory by detectron2's ``default_setup``."""
    cfg = zsseg_d2.add_zsseg_config(get_cfg())
    try:
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    except (KeyError, ValueError, AssertionError) as e:  # yacs: unknown key, wrong type
        raise UserError(f"{args.config_file} / overrides: {e}") from e
    zsseg_d2.finalize_cfg(cfg)
    if cfg.MODEL_EMA.ENABLED and not args.eval_only:
        raise UserError(f"{args.config_file}: MODEL_EMA.ENABLED, but this script keeps no weight "
                        "average; train with `zsseg-bench train` (its checkpoints evaluate "
                        "here with --eval-only), or add MODEL_EMA.ENABLED False (a different "
                        "recipe)")
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="zsseg_bench")
    return cfg


def main(args: Any) -> Any:
    cfg = setup(args)
    if args.eval_only:
        if not cfg.MODEL.WEIGHTS:
            raise UserError("--eval-only needs MODEL.WEIGHTS (a model_final.pth of this script "
                            "or of `zsseg-bench train`)")
        model = Trainer.build_model(cfg)
        extra = DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume)
        load_checkpoint_average(unwrap(model), extra, cfg.MODEL.WEIGHTS)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    try:
        launch(main, args.num_gpus, num_machines=args.num_machines,
               machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args,))
    except UserError as e:
        sys.exit(f"error: {e}")
