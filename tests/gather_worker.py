"""Worker for tests/test_distributed.py, importable by name in processes started with spawn.

It lives in its own top-level module (``tests/`` is on pytest's ``pythonpath``) because another installed package
ships a top-level ``tests`` package that would shadow ``tests.test_distributed`` in the child processes.
"""

import os

import torch
import torch.distributed as dist

from mmib import objectives

WORLD = 2
N_LOCAL, D = 6, 8
#: per-objective settings for the comparison (deterministic negatives: Symile's O(N²) form)
SETTINGS = {"symile": {"negatives": "n_squared"}}


def _inputs(m: int):
    g = torch.Generator().manual_seed(11)
    return {f"m{i}": torch.randn(WORLD * N_LOCAL, D, generator=g, dtype=torch.float64) for i in range(m)}


def _n_modalities(name: str) -> int:
    return 3


def _make(name: str, gather: bool):
    cls = objectives.ALIGNMENT_OBJECTIVES[name]
    import inspect

    params = inspect.signature(cls.__init__).parameters
    kw = dict(SETTINGS.get(name, {}))
    kw["gather_distributed"] = gather
    if "n_modalities" in params:
        kw["n_modalities"] = _n_modalities(name)
    if "embed_dim" in params:
        kw["embed_dim"] = D
    torch.manual_seed(0)
    return cls(**kw).double()


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    results = {}
    for name in objectives.ALIGNMENT_OBJECTIVES:
        if "gather_distributed" not in __import__("inspect").signature(
            objectives.ALIGNMENT_OBJECTIVES[name].__init__).parameters:
            continue
        full = _inputs(_n_modalities(name))
        local = {k: v[rank * N_LOCAL : (rank + 1) * N_LOCAL].clone().requires_grad_(True) for k, v in full.items()}
        obj = _make(name, gather=True)
        out = obj(local)
        out.loss.backward()
        results[name] = {"loss": out.loss.detach(), "grads": {k: v.grad for k, v in local.items()}}
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()
