"""Where training runs: the device, mixed precision, and the torchrun process group.

One process per GPU under ``torchrun`` (DistributedDataParallel, NCCL), or gloo between
CPU processes; a plain ``deepda train`` is a world of one.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def pick_device() -> torch.device:
    """CUDA when present (the rank's own GPU under torchrun), else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA; nothing on CPU (where it is slower, not faster)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def unwrap(net: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (or ``net`` itself)."""
    return net.module if isinstance(net, DistributedDataParallel) else net


def init_distributed() -> int:
    """Join the torchrun process group when launched by torchrun; returns this rank.

    NCCL on GPUs, gloo on CPUs (the tests run two CPU processes).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return rank_and_world_size()[0]


def rank_and_world_size() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value's mean over the ranks (``values`` itself outside torchrun): a window's
    losses logged for all the data the step trained on, not rank 0's share."""
    if rank_and_world_size()[1] == 1:
        return values
    names = sorted(values)
    tensor = torch.tensor([values[n] for n in names], dtype=torch.float64)
    dist.all_reduce(tensor)
    return {n: float(v) / dist.get_world_size() for n, v in zip(names, tensor.tolist(), strict=True)}


def sum_over_ranks(values: list[float]) -> list[float]:
    """Each value's sum over the ranks (``values`` itself outside torchrun)."""
    if rank_and_world_size()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_to_all(value: object) -> list[object]:
    """Every rank's ``value``, in rank order (``[value]`` outside torchrun)."""
    if rank_and_world_size()[1] == 1:
        return [value]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def saved_draws(training: dict, rank: int) -> dict | None:
    """Rank ``rank``'s random state and chains in a saved run's ``training`` record, or None.

    Rank 0's are the record's own; under torchrun every rank's are saved beside them
    (``ranks``). None for a rank with none saved (a larger world, a run saved on Ctrl-C):
    it must draw afresh, or two ranks would train on the same windows.
    """
    ranks = training.get("ranks", [])
    if rank < len(ranks):
        return ranks[rank]
    if rank == 0:
        return {"rng": training["rng"], "chains": training.get("chains", [])}
    return None
