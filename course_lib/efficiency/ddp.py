r"""Data-parallel training with ``torch.distributed``: one model copy per process, gradients averaged.

Each of the W processes (ranks) holds the whole model and takes its own slice of the batch;
after backward the ranks **all-reduce** their gradients, so every rank ends with the average
:math:`\bar g = \frac{1}{W}\sum_{r} g_r`, takes the same optimizer step and stays identical. When
every rank's loss is the mean over an equal number of examples, :math:`\bar g` is exactly the
gradient of the mean loss over the concatenated batch (the same argument as gradient
accumulation, with ranks in place of micro-batches).

* ``torchrun --nproc_per_node 2 -m course_lib.efficiency.ddp_train`` starts the ranks and sets
  ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` for each;
  ``torch.distributed.init_process_group(backend)`` connects them: ``"gloo"`` on CPUs, ``"nccl"``
  on NVIDIA GPUs (one process per GPU, ``torch.cuda.set_device(LOCAL_RANK)``).
* On several machines, the same command runs on every node with
  ``--nnodes N --node_rank i`` (static) or ``--nnodes N --rdzv-backend c10d --rdzv-endpoint host:port``
  (elastic rendezvous).
* :func:`average_gradients` is the whole algorithm in three lines; ``DistributedDataParallel``
  does the same, but overlaps the all-reduce with backward, bucket by bucket.

Horovod (Sergeev & Del Balso, 2018) brought the ring all-reduce to TensorFlow and PyTorch in
2017 with ``horovodrun``; PyTorch's own ``DistributedDataParallel``, launched by ``torchrun``,
and libraries built on it (Accelerate, DeepSpeed, FSDP) now do that job.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["init_from_env", "average_gradients", "combine_rank_gradients", "shard", "free_port", "torchrun_command", "launch_torchrun",
           "loopback_env"]


def init_from_env(backend: str | None = None) -> tuple[int, int]:
    """Join the process group torchrun describes in the environment; returns ``(rank, world_size)``.

    ``backend`` defaults to ``"nccl"`` when CUDA is available, else ``"gloo"``.
    """
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise RuntimeError(f"{var} is not set: start this script with torchrun, e.g. "
                               "`torchrun --nproc_per_node 2 -m course_lib.efficiency.ddp_train`")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' (CPU) or 'nccl' (NVIDIA GPUs), got {backend!r}")
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def average_gradients(model: nn.Module) -> None:
    """All-reduce every gradient and divide by the world size: :math:`\\bar g = \\frac{1}{W}\\sum_r g_r`."""
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)                     # g <- sum_r g_r (on every rank)
            p.grad /= world                                                    # mean over ranks


def combine_rank_gradients(grads: list[dict], token_counts: list[int]) -> dict:
    r"""The gradient of the global token-mean loss from each rank's gradient of its *own* token mean.

    :math:`g = \sum_r (n_r / N)\, g_r` with :math:`N = \sum_r n_r`. With equal :math:`n_r` this is
    the plain mean that ``all_reduce`` + ``/ W`` (and DDP) compute; with unequal shards the plain
    mean over-weights the tokens of short shards.
    """
    if len(grads) == 0 or len(grads) != len(token_counts):
        raise ValueError(f"give one gradient dict per rank and one token count per rank, got {len(grads)} and "
                         f"{len(token_counts)}")
    total = sum(token_counts)
    if total <= 0:
        raise ValueError("the token counts add up to 0: no rank has a real token")
    return {name: sum(g[name] * (n / total) for g, n in zip(grads, token_counts)) for name in grads[0]}


def shard(batch: tuple, rank: int, world_size: int) -> tuple:
    """Rank ``rank``'s contiguous slice of every tensor in ``batch`` (rows must divide evenly)."""
    n = len(batch[0])
    if n % world_size:
        raise ValueError(f"a batch of {n} rows does not split evenly over {world_size} ranks; use a batch size "
                         f"that is a multiple of {world_size} (unequal shards would weight examples unequally)")
    per = n // world_size
    return tuple(t[rank * per:(rank + 1) * per] for t in batch)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_env(**extra: str) -> dict[str, str]:
    """This process's environment with the rendezvous pinned to 127.0.0.1 (gloo on the loopback device)."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **extra}
    root = str(Path(__file__).resolve().parents[2])                           # so `-m course_lib...` imports
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def torchrun_command(module: str, args: list[str] = (), nproc_per_node: int = 2, port: int | None = None) -> list[str]:
    """``python -m torch.distributed.run --nproc_per_node N --master_addr 127.0.0.1 --master_port P -m module args``."""
    if not isinstance(nproc_per_node, int) or nproc_per_node < 1:
        raise ValueError(f"nproc_per_node must be a positive int, got {nproc_per_node!r}")
    port = free_port() if port is None else port
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc_per_node),
            "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", module, *map(str, args)]


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(c) for t in os.listdir(f"/proc/{p}/task")
                    for c in open(f"/proc/{p}/task/{t}/children").read().split()]
        except OSError:
            continue
        out += kids
        todo += kids
    return out


def _stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop torchrun and its ranks. The ranks run in sessions of their own (torchrun starts them so),
    so killing the launcher's process group is not enough: SIGTERM the launcher (it stops its ranks),
    then SIGKILL whatever is left of the launcher's group and of the descendants found before."""
    family = _descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    for kill in ([lambda: os.killpg(proc.pid, signal.SIGKILL)] +
                 [lambda p=p: os.kill(p, signal.SIGKILL) for p in family]):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass


def launch_torchrun(module: str, args: list[str] = (), nproc_per_node: int = 2, timeout: float = 120,
                    env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``torchrun`` on this machine (loopback only) and wait; output captured as text.

    Whatever happens (success, error, timeout), :func:`_stop` ends the launcher and every rank before
    returning (torchrun starts each rank in a session of its own, so killing one process group is not
    enough), and no rank is left behind.

    Raises
    ------
    RuntimeError
        If torchrun exits with an error (its output is in the message) or runs past ``timeout``.
    """
    cmd = torchrun_command(module, list(args), nproc_per_node)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env or loopback_env(), start_new_session=True)   # own process group
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        out, _ = proc.communicate(timeout=30)
        raise RuntimeError(f"torchrun did not finish within {timeout} s; output so far:\n{out[-3000:]}") from None
    finally:
        _stop(proc)                                                            # ranks that outlived the launcher
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited with code {proc.returncode}:\n{out[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None)
