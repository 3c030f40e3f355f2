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


def wrap(
    module: nn.Module, ctx: DistContext, strategy: str, shard_units: list[nn.Module]
) -> nn.Module:
    """DDP over the whole step module, or FSDP2: shard each unit (LLM layers), then the root."""
    if not ctx.distributed:
        return module
    if sharded(ctx, strategy):
        from torch.distributed.fsdp import fully_shard

        for unit in shard_units:
            fully_shard(unit)
        fully_shard(module)
        return module
    device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def sharded(ctx: DistContext, strategy: str) -> bool:
    return ctx.distributed and strategy == "fsdp"


def decoder_layers(llm: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a transformers causal LM (FSDP's shard units)."""
    inner = getattr(llm, "model", llm)
    layers = getattr(inner, "layers", None)
    return list(layers) if layers is not None else []


def _options(**kwargs):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, ignore_frozen_params=True, **kwargs)


def trainable_weights(
    root: nn.Module, model: nn.Module, names: list[str], ctx: DistContext, strategy: str
) -> dict[str, torch.Tensor]:
    """Full (unsharded) trainable tensors on CPU; with FSDP a collective, rank 0 gets them."""
    if sharded(ctx, strategy):
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        full = get_model_state_dict(root, options=_options(cpu_offload=True))
        wanted = set(names)
        return {
            k.removeprefix("model."): v
            for k, v in full.items()
            if k.removeprefix("model.") in wanted
        }
    params = dict(model.named_parameters())
    return {name: params[name].detach().cpu().clone() for name in names}


def load_weights(
    root: nn.Module,
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    ctx: DistContext,
    strategy: str,
) -> None:
    if sharded(ctx, strategy):
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        full = {f"model.{k}": v for k, v in weights.items()}
        set_model_state_dict(root, full, options=_options(strict=False))
        return
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)


def optimizer_state(root: nn.Module, optimizer, ctx: DistContext, strategy: str) -> dict:
    if sharded(ctx, strategy):
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(root, optimizer, options=_options(cpu_offload=True))
    return optimizer.state_dict()


def load_optimizer_state(
    root: nn.Module, optimizer, state: dict, ctx: DistContext, strategy: str
) -> None:
    if sharded(ctx, strategy):
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(root, optimizer, state, options=_options())
        return
    optimizer.load_state_dict(state)


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
