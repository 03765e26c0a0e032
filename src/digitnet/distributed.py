"""Data-parallel training across processes with torch.distributed, as torchrun launches it.

    torchrun --nproc-per-node=N -m digitnet train ...                      # one machine
    torchrun --nnodes=M --nproc-per-node=N --rdzv-backend=c10d \\
             --rdzv-endpoint=HOST:PORT -m digitnet train ...               # several machines

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them (or with WORLD_SIZE=1) digitnet runs
as one process and nothing here is used. Backend: nccl when training on CUDA, gloo on the CPU.

Semantics: --batch-size is the *global* batch. Every rank computes the same seeded order for an
epoch and takes every world_size-th example of each global batch, so together the ranks see
exactly the batches one process would. Each rank's loss is weighted by its share of the global
batch, and DistributedDataParallel averages the gradients, so every step applies the gradient of
the global batch's loss: the learning rate means what it means in one process.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch

TIMEOUT_ENV = "DIGITNET_DIST_TIMEOUT"  # seconds a collective may wait for a missing rank


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block first (it downloads, say); the others run it after it finished."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def is_collective_failure(exc: BaseException) -> bool:
    """True for an error raised by a collective: NCCL's DistBackendError and the other
    torch.distributed errors, or gloo's, which arrive as a plain RuntimeError naming gloo (a lost
    peer reads "gloo/transport/tcp/pair.cc: Connection reset by peer"). A local out-of-memory or
    shape error is none of these and keeps its own message."""
    if isinstance(exc, torch.distributed.DistError):
        return True
    return isinstance(exc, RuntimeError) and "gloo" in str(exc)


def from_environment(device: torch.device) -> Distributed:
    """Join the process group torchrun prepared, if any. Must run before any collective."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "300")))
    torch.distributed.init_process_group(backend=backend, timeout=timeout)
    return Distributed(rank, world_size, local_rank)
