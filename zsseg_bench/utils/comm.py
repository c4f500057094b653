"""Distributed helpers (Detectron2's ``utils/comm.py``): rank, world size, process group.

Processes are started by ``torchrun``, which sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
:func:`init_distributed` joins the process group (gloo on CPU, nccl on GPU). Everything here
also works in a plain single process, where it is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

#: How long collective operations wait for the slowest rank before failing.
_TIMEOUT = timedelta(minutes=30)


def is_distributed() -> bool:
    """Whether a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    """Number of processes (1 without DDP)."""
    return dist.get_world_size() if is_distributed() else 1


def get_rank() -> int:
    """Rank of this process (0 without DDP)."""
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """True on rank 0: the process that logs and writes files."""
    return get_rank() == 0


def synchronize() -> None:
    """A barrier across all processes (no-op without DDP)."""
    if is_distributed() and get_world_size() > 1:
        dist.barrier()


def launched_by_torchrun() -> bool:
    """Whether the environment asks for more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def init_distributed(device: str) -> str:
    """Joins the process group when launched by torchrun with several processes.

    Args:
        device: the resolved ``MODEL.DEVICE`` (``"cpu"``, ``"cuda"`` or ``"cuda:N"``).

    Returns:
        The device this process uses: on GPU, ``cuda:LOCAL_RANK``.
    """
    if not launched_by_torchrun() or is_distributed():
        return device
    use_cuda = device.startswith("cuda")
    if use_cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=_TIMEOUT)
    return device


def destroy_distributed() -> None:
    """Leaves the process group (if any)."""
    if is_distributed():
        dist.destroy_process_group()


@contextmanager
def distributed_session(device: str) -> Iterator[str]:
    """:func:`init_distributed` on entry, :func:`destroy_distributed` on exit."""
    started = not is_distributed()
    try:
        yield init_distributed(device)
    finally:
        if started:
            destroy_distributed()


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over all processes (a copy; ``values`` itself is unchanged)."""
    out = values.detach().clone()
    if get_world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= get_world_size()
    return out


def all_reduce_max(values: torch.Tensor) -> torch.Tensor:
    """The elementwise maximum of ``values`` over all processes (a copy)."""
    out = values.detach().clone()
    if get_world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out
