"""Gathered negatives across processes (gloo on CPU) equal the single-process computation on the whole batch."""

import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

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


def test_gathered_negatives_equal_single_process(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    per_rank = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    assert per_rank[0], "no objective supports gather_distributed"
    for name in per_rank[0]:
        full = {k: v.clone().requires_grad_(True) for k, v in _inputs(_n_modalities(name)).items()}
        ref = _make(name, gather=False)(full)
        ref.loss.backward()
        mean_loss = sum(r[name]["loss"] for r in per_rank) / WORLD
        torch.testing.assert_close(mean_loss, ref.loss.detach(), atol=1e-5, rtol=0, msg=f"{name}: loss")
        for k, v in full.items():
            # DDP averages gradients over processes: the gathered gradient of a local slice / WORLD = reference
            got = torch.cat([per_rank[r][name]["grads"][k] for r in range(WORLD)]) / WORLD
            torch.testing.assert_close(got, v.grad, atol=1e-5, rtol=0, msg=f"{name}: gradient of {k}")


def test_without_process_group_gather_is_a_no_op():
    from mmib.utils.dist import gather_with_grad

    x = torch.randn(3, 4)
    assert gather_with_grad(x) is x


def test_two_process_training_writes_one_run(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "mmib.cli", "train", "data.views=[0,2,5]", "trainer.max_epochs=2",
           "trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
           "method.objective.gather_distributed=true", f"run_dir={tmp_path}", "name=ddp"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=280)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "ddp"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list(run.glob("run.json"))) == 1
    assert r.stdout.count("run folder:") == 1, "rank 0 alone reports"
