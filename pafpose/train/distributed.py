"""Multi-GPU / multi-node training under torchrun: process group, sampler, rank-0-only writes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

from ..errors import InputError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, local rank, device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1


def setup(device: str | None = None) -> DistInfo:
    """Join the process group that torchrun describes in the environment (or run alone).

    CUDA processes use NCCL and their local GPU; CPU processes use gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but PyTorch sees no CUDA device")
        dev = torch.device("cuda", local if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev)


def teardown() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every process (no-op when alone)."""
    if info.distributed:
        dist.barrier()


def mean_across(info: DistInfo, values: dict[str, float]) -> dict[str, float]:
    """Average scalar values over the processes (for logs)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64,
                     device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    t /= info.world_size
    return dict(zip(keys, t.tolist(), strict=True))


def parameter_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter's bytes, in order: equal digests = identical weights."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_strings(info: DistInfo, value: str) -> list[str]:
    """Every process's string, in rank order."""
    if not info.distributed:
        return [value]
    out: list[str] = [""] * info.world_size
    dist.all_gather_object(out, value)
    return out


class ResumableSampler(Sampler[int]):
    """DistributedSampler over a dataset, yielding keys `epoch * len + index` and able to start
    part-way into an epoch (for an exact resume)."""

    def __init__(self, size: int, info: DistInfo, shuffle: bool = True, seed: int = 0) -> None:
        self.size = size
        self.inner = DistributedSampler(range(size), num_replicas=info.world_size,
                                        rank=info.rank, shuffle=shuffle, seed=seed,
                                        drop_last=True)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's order and how many of this rank's indices to skip."""
        self.epoch = epoch
        self.skip = skip
        self.inner.set_epoch(epoch)

    def per_rank(self) -> int:
        """Indices this rank sees per epoch."""
        return len(self.inner)

    def __iter__(self) -> Iterator[int]:
        indices = list(self.inner)[self.skip:]
        return iter(self.epoch * self.size + i for i in indices)

    def __len__(self) -> int:
        return len(self.inner) - self.skip
