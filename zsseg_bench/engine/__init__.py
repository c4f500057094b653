"""Training and evaluation engine: one loop trains and evaluates every method.

Modules (import what you need; this package imports nothing, so ``zsseg-bench --help`` stays
fast):

- :mod:`.trainer`: ``Trainer`` (Detectron2's ``DefaultTrainer``), built from a config.
- :mod:`.train_loop`: ``HookBase``, ``TrainerBase``, ``SimpleTrainer`` (accumulation, AMP,
  gradient clipping, NaN check).
- :mod:`.hooks`: checkpoints, periodic evaluation, transductive self-training switch, writers,
  progress bar.
- :mod:`.optimizer`, :mod:`.lr_scheduler`: AdamW parameter groups, warm-up + poly schedule.
- :mod:`.checkpoint`, :mod:`.rng`: trainable-only, atomic, ``weights_only``-safe checkpoints.
- :mod:`.evaluate`: evaluation on ``DATASETS.TEST`` and ``metrics.json``.
- :mod:`.session`, :mod:`.signals`: a command's set-up (config, device, process group, run
  directory) and SIGTERM handling. DDP helpers live in :mod:`zsseg_bench.utils.comm`; the
  ``train``/``eval`` commands in :mod:`zsseg_bench.commands`.
"""
