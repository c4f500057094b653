"""``zsseg-bench train``: train a model, evaluate it, write the run directory.

``torchrun --nproc_per_node N -m zsseg_bench train ...`` runs the same command under DDP (gloo
on CPU, nccl on GPU); only rank 0 logs and writes files.

Exit codes: 0 done; 2 a user error (bad config, NaN loss: one line on stderr); 130 stopped by
Ctrl-C (SIGINT), 143 by SIGTERM or SIGUSR2 (Slurm's warning before a time limit), within
seconds and after saving a checkpoint, also during an evaluation (continue with ``--resume``;
:mod:`zsseg_bench.engine.signals`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from zsseg_bench.engine.errors import TrainingStopped
from zsseg_bench.engine.signals import exit_code, signal_name, stop_on_signals
from zsseg_bench.utils.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config-file``, ``--resume``, ``--output-dir``, ``KEY VALUE`` overrides."""
    from zsseg_bench.config.command_line import add_config_arguments

    parser.add_argument("--resume", action="store_true",
                        help="continue from OUTPUT_DIR/last_checkpoint if it exists (same "
                             "result as an uninterrupted run); the config must be the run's "
                             "own (config.yaml)")
    parser.add_argument("--allow-config-change", action="store_true",
                        help="with --resume: continue with a config that differs from the "
                             "run's config.yaml (the differences are logged)")
    parser.add_argument("--overwrite-output-dir", action="store_true",
                        help="start over in a directory that holds a run (its checkpoints and "
                             "metrics.json are deleted first)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (default: shown on a terminal)")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Trains and evaluates; returns the exit code."""
    from zsseg_bench.engine.evaluate import format_record
    from zsseg_bench.engine.session import command_session
    from zsseg_bench.engine.train_dir import check_train_dir
    from zsseg_bench.engine.trainer import Trainer

    if args.allow_config_change and not args.resume:
        raise UserError("--allow-config-change goes with --resume (a new run has no config to "
                        "differ from)")
    if args.resume and args.overwrite_output_dir:
        raise UserError("--resume and --overwrite-output-dir contradict each other: continue "
                        "the run, or start over")
    changes: dict = {}

    def prepare(cfg, output_dir):  # noqa: ANN001, ANN202
        changes.update(check_train_dir(cfg, output_dir, resume=args.resume,
                                       allow_config_change=args.allow_config_change,
                                       overwrite=args.overwrite_output_dir))

    with command_session(args.config_file, args.opts, args.output_dir, command="train",
                         prepare=prepare, data="train") as session:
        if changes and session.is_main_process:
            logging.getLogger(__name__).warning(
                "Resuming with a changed config (--allow-config-change): %s",
                "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changes.items()))
            session.log.write({"type": "event", "event": "config_changed",
                               "changes": {k: list(v) for k, v in changes.items()}})
        trainer = Trainer(session.cfg, session.log, data=session.data,
                          progress_bar=False if args.no_progress else None)
        with stop_on_signals(trainer):
            trainer.resume_or_load(resume=args.resume)
            try:
                record = trainer.train()
            except TrainingStopped as e:
                if session.is_main_process:
                    print(f"zsseg-bench train: {stopped_message(e)}", file=sys.stderr)
                return exit_code(e.signum)
        if session.is_main_process:
            print(f"iteration {record['iteration']}: {format_record(record)} -> "
                  f"{session.output_dir}/metrics.json")
    return 0


def stopped_message(e: TrainingStopped) -> str:
    """What was stopped, what is kept, how to continue."""
    done = e.iteration + 1
    what = {"training": f"after {done} iterations",
            "evaluation": f"during the evaluation after iteration {done} (run again on "
                          f"--resume)",
            "final evaluation": f"during the final evaluation (training complete: {done} "
                                "iterations; --resume evaluates)"}[e.during]
    kept = f"checkpoint {e.checkpoint}" if e.checkpoint else "no checkpoint"
    return f"stopped by {signal_name(e.signum)} {what}; {kept}; continue with --resume"
