"""Device, precision and multi-process (torchrun / DistributedDataParallel) plumbing for the one loop.

A stage started by ``torchrun --nproc_per_node N`` finds RANK / WORLD_SIZE / LOCAL_RANK in its
environment; every rank runs the same loop on its share of each global batch, DDP averages the
gradients, loss terms and validation counts are summed over ranks, and only rank 0 writes files.
Started plainly, the world has one process and nothing here communicates.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import RTDError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that prints progress and writes outputs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def resolve_device(name: str, world: World = World()) -> torch.device:
    """``cpu``, ``cuda`` (this rank's GPU under torchrun) or ``auto`` (cuda when available)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RTDError("`train.device` = cuda but no CUDA device is visible: use `-S train.device=cpu` "
                           "(or auto), or run on a GPU machine")
        return torch.device("cuda", world.local_rank)
    return torch.device("cpu")


def init_world(device: str) -> World:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPUs)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    import torch.distributed as dist

    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device in ("cuda", "auto") and torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend)
    return world


def shard(x: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's contiguous share of a global batch (shares differ in size by at most one)."""
    return torch.tensor_split(x, world.size)[world.rank] if world.distributed else x


def all_sum(values: list[float], world: World) -> list[float]:
    """Element-wise sum over ranks (identity in a single process)."""
    if not world.distributed:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def close(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
