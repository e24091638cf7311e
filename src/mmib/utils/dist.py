"""Small distributed helpers: all-gather with gradients that is a no-op without a process group."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor):  # type: ignore[override]
        out = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):  # type: ignore[override]
        all_grads = torch.stack(grads)
        dist.all_reduce(all_grads)
        return all_grads[dist.get_rank()]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all processes along dim 0, keeping gradients to every process's copy.

    Without an initialized process group (or with one process) this returns ``x`` unchanged.
    """
    if not is_dist() or dist.get_world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


def local_offset(n_local: int) -> int:
    """Row offset of this process's samples in the gathered batch (equal batch sizes assumed)."""
    return rank() * n_local


def launch_rank() -> int:
    """This process's global rank, also before the process group exists (launchers set RANK / LOCAL_RANK /
    SLURM_PROCID; Lightning's DDP launcher sets them for the processes it starts)."""
    if is_dist():
        return dist.get_rank()
    import os

    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0
