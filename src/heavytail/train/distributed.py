"""Process-group setup for `torchrun --nproc_per_node N` (gloo on CPU, NCCL on CUDA) and the single-process case."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from heavytail.device import resolve_device


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_values(self, values: dict[str, float]) -> dict[str, float]:
        """{key: sum over ranks}: evaluation's partial sums, one all-reduce for all keys."""
        if not self.distributed:
            return dict(values)
        keys = sorted(values)
        packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        self.all_reduce_sum(packed)
        return dict(zip(keys, packed.tolist(), strict=True))

    def shard(self, n: int) -> range:
        """This rank's share of n items: contiguous, the first ranks one longer when n does not divide."""
        per, extra = divmod(n, self.world_size)
        start = self.rank * per + min(self.rank, extra)
        return range(start, start + per + (self.rank < extra))

    def all_gather_objects(self, obj) -> list:
        if not self.distributed:
            return [obj]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def broadcast_object(self, obj):
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def init_distributed(device_name: str = "auto", gpus: int | None = None) -> DistContext:
    """Join the process group torchrun describes in the environment; a plain process is rank 0 of 1.
    `gpus` is what the job was given (None: run by hand, use a GPU if there is one)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name, gpus)
    if world_size == 1:
        return DistContext(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def join_job(device_name: str, gpus: int | None) -> DistContext:
    """`init_distributed` for an entry point: a job that cannot get its devices stops with one line, exit 2."""
    import sys

    from heavytail.errors import ConfigError

    try:
        return init_distributed(device_name, gpus)
    except ConfigError as exc:
        sys.stderr.write(f"heavytail: {exc}\n")
        raise SystemExit(2) from exc


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
