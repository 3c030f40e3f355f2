"""torch.distributed glue: one code path for a single process and for torchrun (DDP or FSDP).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; without them we run as
one process and never initialise a process group. Backend: nccl on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup(device: str = "auto") -> DistContext:
    """Join the torchrun process group if there is one and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistContext(rank, world, local_rank, dev)


def seed_everything(seed: int) -> None:
    """Same seed → same run; callers pass seed + rank so ranks differ in dropout draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def wrap(model: nn.Module, ctx: DistContext, strategy: str) -> nn.Module:
    """DDP over the whole model, or FSDP2 sharding of the LLM's decoder layers and the rest."""
    if not ctx.distributed:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in _decoder_layers(model.llm):
            fully_shard(layer)
        fully_shard(model)
        return model
    device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _decoder_layers(llm: nn.Module) -> list[nn.Module]:
    inner = getattr(llm, "model", llm)
    layers = getattr(inner, "layers", None)
    return list(layers) if layers is not None else []


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_sum(values: list[float], ctx: DistContext) -> list[float]:
    """Sum numbers over ranks (identity in one process)."""
    if not ctx.distributed:
        return list(values)
    device = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def teardown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def gather_objects(obj: object, ctx: DistContext) -> list:
    """Every rank's `obj`, in rank order (a one-item list in one process)."""
    if not ctx.distributed:
        return [obj]
    out: list = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out
