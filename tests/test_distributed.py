"""Gathered negatives across processes (gloo on CPU) equal the single-process computation on the whole batch."""

import os
import subprocess
import sys

import torch
import torch.multiprocessing as mp

from gather_worker import WORLD, _inputs, _make, _n_modalities, _worker  # noqa: E402


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
