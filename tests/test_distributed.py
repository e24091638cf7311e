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
