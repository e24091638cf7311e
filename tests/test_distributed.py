"""Multi-process training (gloo on CPU): gathered negatives equal the single-process computation on the whole batch,
one run folder and report per run, and the epoch train loss is the mean over every process's batches.

The tests that start several processes carry the ``distributed`` marker (``pytest -m distributed``); they run in
``make test`` too (only ``slow`` is deselected by default)."""

import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from gather_worker import WORLD, _inputs, _make, _n_modalities, _worker  # noqa: E402


@pytest.mark.distributed
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


@pytest.mark.distributed
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


@pytest.mark.distributed
def test_two_process_demo_writes_one_report(tmp_path):
    """`mmib demo` under DDP: Lightning re-runs the command on rank 1; rank 0 alone evaluates, writes and prints."""
    import json

    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "mmib.cli", "demo", "--out", str(out), "--epochs", "1", "--no-progress",
           "trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu",
           "method.objective.gather_distributed=true"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=280, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    reports = sorted(p.relative_to(out).as_posix() for p in out.rglob("report.md"))
    results = sorted(p.relative_to(out).as_posix() for p in out.rglob("results.json"))
    # one suite report + the run's own evaluation report, each exactly once
    assert reports == ["clip-mfeat-s0/report.md", "report.md"], reports
    assert results == ["clip-mfeat-s0/results.json", "results.json"], results
    assert r.stdout.count(f"report: {out}/report.md") == 1, "rank 0 alone prints the summary"
    suite = json.loads((out / "results.json").read_text())
    assert suite["kind"] == "mmib-bench" and suite["complete"] and not suite["failures"]
    assert [run["complete"] for run in suite["runs"]] == [True]
    run = json.loads((out / "clip-mfeat-s0" / "results.json").read_text())
    assert run["complete"] and "skipped_on_rank" not in run
    assert run["config"]["trainer"]["devices"] == 2
    rows = {row["id"]: row for row in run["protocols"]["probe"]["rows"]}
    acc = rows["method/concat/linear"]["metrics"]["accuracy"]
    assert 0.5 < acc <= 1.0, f"probe accuracy {acc}: far above chance (0.1) even after one epoch"
    assert set(run["protocols"]) == {"probe", "subsets", "retrieval", "plots"}
    assert "demo" in (out / "report.md").read_text()
    marker = json.loads((out / "clip-mfeat-s0" / "bench.json").read_text())
    assert "trainer.devices=2" in marker["overrides"]


def test_batch_sampler_shards_disjoint_covering_equal_length():
    from mmib.data.datamodule import EpochShuffledBatchSampler

    for n, bs, drop_last in [(10, 3, False), (11, 3, False), (12, 4, True), (13, 2, True)]:
        shards = [EpochShuffledBatchSampler(n, bs, drop_last, seed=7, rank=r, world_size=2) for r in range(2)]
        for s in shards:
            s.set_epoch(3)
        batches = [list(s) for s in shards]
        assert len(batches[0]) == len(batches[1]) == len(shards[0]) == len(shards[1]), (n, bs, drop_last)
        per_rank = [[i for b in bb for i in b] for bb in batches]
        # disjoint apart from the one padding sample of an odd n (repeated as DistributedSampler does)
        assert len(set(per_rank[0]) & set(per_rank[1])) <= n % 2
        if drop_last:
            assert all(len(b) == bs for bb in batches for b in bb)
        else:  # covering: every sample is on some rank
            assert set(per_rank[0]) | set(per_rank[1]) == set(range(n))
            assert len(per_rank[0]) == len(per_rank[1]) == -(-n // 2)
        # the shards are the two halves of the single-process permutation of the same epoch
        full = EpochShuffledBatchSampler(n, n, False, seed=7)
        full.set_epoch(3)
        perm = next(iter(full))
        assert per_rank[0] == (perm + perm[: n % 2])[0::2][: len(per_rank[0])]
        assert per_rank[1] == (perm + perm[: n % 2])[1::2][: len(per_rank[1])]
        # another epoch: another permutation, still the same number of batches
        shards[0].set_epoch(4)
        assert len(list(shards[0])) == len(batches[0])


_LOSS_SCRIPT = """
import json, sys
from pathlib import Path

import lightning as L

from mmib.config import compose_config
from mmib.engine import train

out = Path(sys.argv[1])


class Record(L.Callback):
    # each process's own training losses and batch sizes
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        n = int(next(iter(batch["x"].values())).shape[0])
        self.rows.append([trainer.current_epoch, float(outputs["loss"]), n])

    def on_fit_end(self, trainer, pl_module):
        (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.rows))


cfg = compose_config(["method=clip", "data=sim_align", "data.n_samples=256", "data.n_modalities=2",
                      "data.modality_dim=8", "data.batch_size=16", "method.representation_dim=16",
                      "method.embed_dim=8", "trainer.max_epochs=2", "trainer.devices=2", "trainer.strategy=ddp",
                      "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", f"run_dir={out}", "name=loss"])
train(cfg, callbacks=[Record()])
"""


@pytest.mark.distributed
def test_epoch_train_loss_is_the_mean_over_processes(tmp_path):
    """With 2 processes, ``train/loss_epoch`` (written by rank 0) is the batch-size-weighted mean of both ranks'
    losses (``sync_dist=True``), not rank 0's own mean."""
    import csv
    import json

    script = tmp_path / "ddp_loss.py"
    script.write_text(_LOSS_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=280, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{k}.json").read_text()) for k in range(2)]
    assert all(ranks), "every rank trained"
    rows = list(csv.DictReader((tmp_path / "loss" / "logs" / "version_0" / "metrics.csv").open()))
    logged = {int(row["epoch"]): float(row["train/loss_epoch"]) for row in rows if row.get("train/loss_epoch")}
    assert sorted(logged) == [0, 1]
    gaps = []
    for epoch, value in logged.items():
        both = [(loss, n) for rk in ranks for e, loss, n in rk if e == epoch]
        mean = sum(loss * n for loss, n in both) / sum(n for _, n in both)
        own = [(loss, n) for e, loss, n in ranks[0] if e == epoch]
        rank0 = sum(loss * n for loss, n in own) / sum(n for _, n in own)
        assert abs(value - mean) < 2e-6, (epoch, value, mean, rank0)  # float32 sums of the same numbers
        gaps.append(abs(rank0 - mean))
    assert max(gaps) > 2e-5, f"rank 0's own mean is as close as the synced one ({gaps}): the test would not tell"
