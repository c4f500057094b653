"""A throwaway single-node Slurm cluster on this machine, to try ``--launcher slurm`` (and for the
tests that submit real jobs).

Usage (as root: ``slurmd`` must run as root; Debian/Ubuntu: ``apt-get install slurm-wlm munge``)::

    python scripts/slurm_cluster.py start [--dir DIR]   # prints the line to export SLURM_CONF
    export SLURM_CONF=DIR/slurm.conf                     # sbatch, srun, squeue use this cluster
    python scripts/slurm_cluster.py status [--dir DIR]
    python scripts/slurm_cluster.py stop [--dir DIR]

``start`` writes everything into ``DIR`` (default: ``<tmp>/zsseg-slurm-<uid>``): a fresh munge
key, a ``slurm.conf`` declaring this machine's CPUs and memory (from ``slurmd -C``) as one node
in one partition ``debug``, free TCP ports, state and spool directories and the daemons' logs
(``DIR/log``). It starts ``munged``, ``slurmctld`` and ``slurmd`` in the foreground (their pids
go to ``DIR/pids.json``) and returns once the node accepts jobs, or fails with the end of the
daemons' logs. Nothing outside ``DIR`` is read or written: an installed Slurm or munge keeps
running untouched. ``stop`` cancels the cluster's jobs, then ends only the processes ``start``
started (and the ``slurmstepd`` they spawned), and removes nothing but what is in ``DIR``.

The settings that make Slurm work in a container without cgroups or systemd:
``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``, ``SelectType=select/cons_tres``
(CPUs and memory are consumable, so several small jobs share the node). There is no accounting
storage: ``sacct`` prints warnings, and jobs are followed with ``squeue``/``scontrol``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
#: Environment variable naming the cluster's directory in its daemons (and so in the
#: ``slurmstepd`` processes they spawn), which is how ``stop`` recognises them.
MARKER = "ZSSEG_SLURM_CLUSTER"
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0
PARTITION = "debug"
#: Memory of a job that asks for none (MB per CPU): small, so several tiny jobs share the node.
DEF_MEM_PER_CPU_MB = 1024
_HEADER = "# A throwaway single-node cluster written by scripts/slurm_cluster.py."


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def default_dir() -> Path:
    """``<tmp>/zsseg-slurm-<uid>``."""
    return Path(tempfile.gettempdir()) / f"zsseg-slurm-{os.getuid()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> dict[str, str]:
    """This machine as ``slurmd -C`` sees it (CPUs, sockets, cores, threads, RealMemory)."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0].split()
    fields = dict(item.split("=", 1) for item in first if "=" in item)
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    return {k: fields[k] for k in keep if k in fields}


def write_config(root: Path) -> Path:
    """Writes ``root/slurm.conf`` (and the munge key); returns the path of ``slurm.conf``."""
    host = socket.gethostname()
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    hw = " ".join(f"{k}={v}" for k, v in _node_hardware().items())
    conf = root / "slurm.conf"
    conf.write_text(f"""{_HEADER}
ClusterName=zsseg
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root / "munge" / "munge.socket"}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={DEF_MEM_PER_CPU_MB}
SchedulerType=sched/backfill
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
KillWait=30
InactiveLimit=0
MinJobAge=600
NodeName={host} NodeAddr=127.0.0.1 {hw} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": str(root / "slurm.conf"), MARKER: str(root)}


def _commands(root: Path) -> dict[str, list[str]]:
    conf = str(root / "slurm.conf")
    munge = root / "munge"
    return {
        "munged": ["munged", "--foreground", "--force", f"--socket={munge / 'munge.socket'}",
                   f"--key-file={munge / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
                   f"--seed-file={munge / 'munged.seed'}",
                   f"--log-file={root / 'log' / 'munged.log'}"],
        "slurmctld": ["slurmctld", "-D", "-i", "-f", conf],
        "slurmd": ["slurmd", "-D", "-f", conf],
    }


def _read_pids(root: Path) -> dict[str, int]:
    path = root / "pids.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _ours(pid: int, root: Path) -> bool:
    """Whether ``pid`` is alive and carries this cluster's marker in its environment."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X") and f"{MARKER}={root}".encode() in env


def _marked_processes(root: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and _ours(int(entry.name), root):
            pids.append(int(entry.name))
    return pids


def logs_tail(root: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of each daemon's log (for error messages)."""
    parts = []
    for name in ("slurmctld.log", "slurmd.log", "munged.log", "daemons.out"):
        path = root / "log" / name
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} ---\n" + "\n".join(text))
    return "\n".join(parts) or f"(no logs in {root / 'log'})"


def node_state(root: Path) -> str:
    """The node's state as ``sinfo`` reports it (``idle``, ``mixed``, ...), or ``""``."""
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                             env=_env(root), timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout.strip() if res.returncode == 0 else ""


def start(root: Path, timeout_s: float = READY_TIMEOUT_S) -> Path:
    """Starts the cluster in ``root``; returns the path of its ``slurm.conf``.

    Raises:
        RuntimeError: a tool is missing, a cluster already runs there, or the node did not
            become ready within ``timeout_s`` (the message holds the end of the daemons' logs).
    """
    missing = [d for d in (*DAEMONS, "sbatch", "srun", "sinfo") if shutil.which(d) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: install Slurm and munge (Debian/"
                           "Ubuntu: apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise RuntimeError("slurmd must run as root: run this script as root (e.g. sudo)")
    if any(_ours(pid, root) for pid in _read_pids(root).values()):
        raise RuntimeError(f"a cluster already runs in {root}; stop it first")
    if root.exists() and any(root.iterdir()):
        if _HEADER not in _read(root / "slurm.conf"):
            raise RuntimeError(f"{root} is not empty and holds no cluster of this script: "
                               "choose another --dir")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    conf = write_config(root)
    procs: dict[str, subprocess.Popen] = {}
    with open(root / "log" / "daemons.out", "ab") as out:
        for name, cmd in _commands(root).items():
            procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=_env(root),
                                           start_new_session=True)
            (root / "pids.json").write_text(json.dumps({n: p.pid for n, p in procs.items()}))
            if name == "munged":
                _wait_for(lambda: (root / "munge" / "munge.socket").exists(), 10.0)

    def exited() -> list[str]:
        return [f"{n} exited with code {p.returncode}" for n, p in procs.items()
                if p.poll() is not None]

    ready = _wait_for(lambda: exited() or node_state(root) in ("idle", "mixed", "allocated"),
                      timeout_s)
    if exited() or not ready:
        why = "; ".join(exited()) or f"not ready after {timeout_s:.0f} s"
        tail = logs_tail(root)
        stop(root)
        raise RuntimeError(f"the Slurm cluster in {root} did not start ({why}):\n{tail}")
    return conf


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def stop(root: Path) -> list[int]:
    """Cancels the cluster's jobs and ends the processes :func:`start` started in ``root`` (and
    the ``slurmstepd`` processes they spawned): SIGTERM, then SIGKILL after a grace period.
    Returns the pids it ended."""
    pids = _read_pids(root)
    if pids.get("slurmctld") and _ours(pids["slurmctld"], root):
        subprocess.run(["scancel", "--full", "--user", str(os.getuid())], env=_env(root),
                       capture_output=True, timeout=30)
        _wait_for(lambda: not _squeue(root), STOP_GRACE_S)
    ended = []
    for name in ("slurmd", "slurmctld", "munged"):
        pid = pids.get(name)
        if pid and _ours(pid, root):
            os.kill(pid, signal.SIGTERM)
            _wait_for(lambda pid=pid: not _ours(pid, root), STOP_GRACE_S)
            ended.append(pid)
    for pid in _marked_processes(root):  # slurmstepd left behind
        os.kill(pid, signal.SIGKILL)
        ended.append(pid)
    for pid in ended:
        if _ours(pid, root):
            os.kill(pid, signal.SIGKILL)
    (root / "pids.json").unlink(missing_ok=True)
    return ended


def _squeue(root: Path) -> str:
    res = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True,
                         env=_env(root), timeout=10)
    return res.stdout.strip()


def status(root: Path) -> str:
    """One line per daemon (running or not) and the node's state."""
    pids = _read_pids(root)
    lines = [f"{name}: " + (f"running (pid {pids[name]})" if name in pids
                            and _ours(pids[name], root) else "not running")
             for name in DAEMONS]
    lines.append(f"node: {node_state(root) or 'unreachable'}")
    lines.append(f"export SLURM_CONF={root / 'slurm.conf'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--dir", type=Path, default=default_dir(),
                        help="the cluster's directory (default: %(default)s)")
    args = parser.parse_args(argv)
    root = args.dir.resolve()
    if args.command == "start":
        try:
            conf = start(root)
        except (RuntimeError, subprocess.CalledProcessError) as e:
            print(f"slurm_cluster: {e}", file=sys.stderr)
            return 1
        print(f"Slurm cluster ready ({node_state(root)}); logs in {root / 'log'}\n"
              f"export SLURM_CONF={conf}")
    elif args.command == "stop":
        ended = stop(root)
        print(f"stopped {len(ended)} process(es) of the cluster in {root}")
    else:
        print(status(root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
