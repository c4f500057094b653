"""What ``train`` and ``eval`` do before and after their work: config, datasets, device, process
group (under torchrun), logger and run directory (Detectron2's ``default_setup``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zsseg_bench.config.command_line import setup_cfg
from zsseg_bench.data.identity import data_identity
from zsseg_bench.modeling.build import resolve_device
from zsseg_bench.utils import comm
from zsseg_bench.utils.logger import setup_logger
from zsseg_bench.utils.run_dir import JSONLWriter, lock_run_dir, setup_run_dir


@dataclass
class Session:
    """The set-up of one command: resolved config (with the device), run directory and rank."""

    cfg: Any
    log: JSONLWriter
    output_dir: Path
    is_main_process: bool
    #: The data the command uses (:func:`zsseg_bench.data.identity.data_identity`; rank 0).
    data: dict[str, list[dict]] | None = None


@contextmanager
def command_session(config_file: str, opts: Sequence[str] | None, output_dir: str | None, *,
                    command: str = "zsseg-bench",
                    prepare: Callable[[Any, Path], None] | None = None,
                    data: str | None = None) -> Iterator[Session]:
    """Sets up a command; joins (and leaves) the DDP process group when run by torchrun.

    The config's ``MODEL.DEVICE`` is resolved (``auto`` -> ``cuda``/``cpu``; under DDP on GPU,
    ``cuda:LOCAL_RANK``). Rank 0 locks the run directory for the session
    (:func:`~zsseg_bench.utils.run_dir.lock_run_dir`: one process at a time), calls
    ``prepare(cfg, output_dir)`` (checks of the directory before anything is written in it)
    and writes ``config.yaml``, ``env.json`` (with the data used, ``data``) and ``log.jsonl``.

    Args:
        config_file, opts, output_dir: the config file, ``KEY VALUE`` overrides and
            ``--output-dir``.
        command: the command, named to another process that finds the directory locked.
        prepare: called on rank 0 with the resolved config and the directory, under the lock.
        data: ``"train"``: the command reads ``DATASETS.TRAIN`` and ``DATASETS.TEST``;
            ``"test"``: ``DATASETS.TEST`` only; None: no dataset's images.
    """
    import zsseg_bench.data  # noqa: F401  (registers the built-in datasets)

    cfg = setup_cfg(config_file, list(opts or []), output_dir)
    with comm.distributed_session(resolve_device(cfg.MODEL.DEVICE)) as device:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.DEVICE = device
        cfg.freeze()
        torch.backends.cudnn.benchmark = bool(cfg.CUDNN_BENCHMARK)
        main = comm.is_main_process()
        out = Path(cfg.OUTPUT_DIR)
        with lock_run_dir(out, command) if main else contextlib.nullcontext():
            if main and prepare is not None:
                prepare(cfg, out)
            logger = setup_logger(out, rank=comm.get_rank())
            used = None
            if main and data is not None:
                used = data_identity(cfg.DATASETS.TRAIN if data == "train" else (),
                                     cfg.DATASETS.TEST)
            log = setup_run_dir(out, cfg, device=device, is_main_process=main,
                                extra_env=None if used is None else {"data": used})
            if comm.get_world_size() > 1:
                logger.info("Distributed run: %d processes (%s)", comm.get_world_size(),
                            torch.distributed.get_backend())
            try:
                yield Session(cfg=cfg, log=log, output_dir=out, is_main_process=main,
                              data=used)
                comm.synchronize()
            finally:
                _close_file_handlers(logger, out)


def _close_file_handlers(logger: logging.Logger, output_dir: Path) -> None:
    """Detaches the run's ``log.txt`` handler (so a later command in the same process, e.g. in
    tests, does not write into this run's log)."""
    target = str((output_dir / "log.txt").resolve())
    for handler in list(logger.handlers):
        if getattr(handler, "baseFilename", None) == target:
            logger.removeHandler(handler)
            handler.close()
