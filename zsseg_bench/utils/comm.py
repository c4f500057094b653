"""Distributed helpers (Detectron2's ``utils/comm.py``): rank, world size, process group.

Processes are started by ``torchrun``, which sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``,
or by Slurm's ``srun --ntasks N`` (:func:`adopt_slurm_environment` derives the same variables
from ``SLURM_PROCID``, ``SLURM_LOCALID`` and ``SLURM_STEP_NUM_TASKS``); :func:`init_distributed`
joins the process group (gloo on CPU, nccl on GPU). Everything here also works in a plain
single process, where it is a no-op.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

#: How long collective operations wait for the slowest rank before failing.
_TIMEOUT = timedelta(minutes=30)
#: Rendezvous port of an srun step: this base plus the job id modulo 20,000 (the tasks of one
#: step agree on it without talking; steps of different jobs on one node rarely collide).
_SLURM_PORT_BASE = 20000


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


def adopt_slurm_environment() -> bool:
    """Under ``srun`` with several tasks in the step, and unless ``WORLD_SIZE`` is set already,
    sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` (the first node of the step)
    and ``MASTER_PORT`` the way torchrun would. Returns whether it did."""
    tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS", 1))
    if tasks <= 1 or "WORLD_SIZE" in os.environ or "SLURM_PROCID" not in os.environ:
        return False
    os.environ.update(RANK=os.environ["SLURM_PROCID"], WORLD_SIZE=str(tasks),
                      LOCAL_RANK=os.environ.get("SLURM_LOCALID", "0"))
    os.environ.setdefault("MASTER_ADDR", _first_host(os.environ.get("SLURM_STEP_NODELIST", "")))
    os.environ.setdefault("MASTER_PORT",
                          str(_SLURM_PORT_BASE + int(os.environ.get("SLURM_JOB_ID", 0)) % 20000))
    return True


def _first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``node[1-4]``, ``a,b``), ``127.0.0.1`` if empty."""
    if not nodelist:
        return "127.0.0.1"
    if "[" not in nodelist:
        return nodelist.split(",")[0]
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return out.split()[0]


def launched_by_torchrun() -> bool:
    """Whether the environment asks for more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def init_distributed(device: str) -> str:
    """Joins the process group when launched by torchrun (or srun) with several processes.

    Args:
        device: the resolved ``MODEL.DEVICE`` (``"cpu"``, ``"cuda"`` or ``"cuda:N"``).

    Returns:
        The device this process uses: on GPU, ``cuda:LOCAL_RANK``.
    """
    adopt_slurm_environment()
    if not launched_by_torchrun() or is_distributed():
        return device
    use_cuda = device.startswith("cuda")
    if use_cuda:
        # modulo: under srun --gpus-per-task each task sees only its own GPU
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
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
        if started and is_distributed():
            # Ranks leave together: a rank that tears its gloo group down while a peer still
            # talks to it can abort at exit ("terminate called without an active exception",
            # seen once in 16 two-process runs of the suite's DDP test).
            dist.barrier()
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
