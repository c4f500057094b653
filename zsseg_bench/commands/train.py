"""``zsseg-bench train``: train a model, evaluate it, write the run directory.

``torchrun --nproc_per_node N -m zsseg_bench train ...`` runs the same command under DDP (gloo
on CPU, nccl on GPU); only rank 0 logs and writes files.

Exit codes: 0 done; 2 a user error (bad config, NaN loss: one line on stderr); 143 stopped by
SIGTERM or SIGUSR2 (Slurm's warning before a time limit) after saving a checkpoint (continue
with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys

from zsseg_bench.engine.errors import TrainingStopped
from zsseg_bench.engine.signals import EXIT_CODE_SIGTERM, stop_on_sigterm


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config-file``, ``--resume``, ``--output-dir``, ``KEY VALUE`` overrides."""
    from zsseg_bench.config.command_line import add_config_arguments

    parser.add_argument("--resume", action="store_true",
                        help="continue from OUTPUT_DIR/last_checkpoint if it exists (same "
                             "result as an uninterrupted run)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (default: shown on a terminal)")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Trains and evaluates; returns the exit code."""
    from zsseg_bench.engine.evaluate import format_summary
    from zsseg_bench.engine.session import command_session
    from zsseg_bench.engine.trainer import Trainer

    with command_session(args.config_file, args.opts, args.output_dir) as session:
        trainer = Trainer(session.cfg, session.log,
                          progress_bar=False if args.no_progress else None)
        with stop_on_sigterm(trainer):
            trainer.resume_or_load(resume=args.resume)
            try:
                record = trainer.train()
            except TrainingStopped as e:
                if session.is_main_process:
                    print(f"zsseg-bench train: stopped by SIGTERM after {e.iteration + 1} "
                          f"iterations; checkpoint {e.checkpoint}; continue with --resume",
                          file=sys.stderr)
                return EXIT_CODE_SIGTERM
        if session.is_main_process:
            print(f"{record['dataset']} @ iteration {record['iteration']}: "
                  f"{format_summary(record['metrics'])} -> {session.output_dir}/metrics.json")
    return 0
