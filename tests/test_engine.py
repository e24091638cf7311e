"""Training engine: checkpoints, resume, determinism, run folders."""

import json

import lightning as L
import pytest
import torch

from mmib.config import compose_config
from mmib.engine import train
from mmib.errors import MMIBError
from mmib.runs import load_run

BASE = ["data.views=[0,2,5]", "trainer.enable_progress_bar=false", "data.batch_size=128"]


def _cfg(tmp_path, *extra):
    return compose_config([*BASE, f"run_dir={tmp_path}", *extra])


class _RecordOptimizerAtStart(L.Callback):
    def on_train_start(self, trainer, pl_module):
        opt = trainer.optimizers[0]
        self.state = {id_: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
                      for id_, s in enumerate(opt.state.values())}
        self.epoch, self.step = trainer.current_epoch, trainer.global_step


def test_checkpoint_and_resume_continue_at_the_right_epoch_and_step(tmp_path):
    res = train(_cfg(tmp_path, "trainer.max_epochs=2", "name=r"))
    run = res.run_dir
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    steps_per_epoch = res.trainer.global_step // 2
    assert steps_per_epoch > 0
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 1 and saved["global_step"] == 2 * steps_per_epoch
    saved_state = saved["optimizer_states"][0]["state"]
    assert saved_state, "the checkpoint holds the optimizer state"

    rec = _RecordOptimizerAtStart()
    res2 = train(_cfg(tmp_path, "trainer.max_epochs=3", "name=r", f"resume={ckpt}"), callbacks=[rec])
    # it continued: starts at epoch 2, step 2*k, and ends after one more epoch
    assert rec.epoch == 2 and rec.step == 2 * steps_per_epoch
    assert res2.trainer.global_step == 3 * steps_per_epoch
    # the optimizer state was restored (Adam moments equal to the saved ones)
    assert len(rec.state) == len(saved_state)
    for i, s in saved_state.items():
        torch.testing.assert_close(rec.state[i]["exp_avg"], s["exp_avg"])
        torch.testing.assert_close(rec.state[i]["exp_avg_sq"], s["exp_avg_sq"])
    meta = json.loads((run / "run.json").read_text())
    assert meta["resumed_from"] == str(ckpt) and meta["global_step"] == 3 * steps_per_epoch
    assert meta["seed"] == 0 and meta["versions"]["torch"] and "git_commit" in meta
    assert (run / "config.yaml").is_file()
    assert len(list((run / "logs").glob("version_*/metrics.csv"))) == 2
    # "last" resumes this run's last checkpoint
    res3 = train(_cfg(tmp_path, "trainer.max_epochs=4", "name=r", "resume=last"))
    assert res3.trainer.global_step == 4 * steps_per_epoch


def test_same_seed_same_metrics_and_reload(tmp_path):
    a = train(_cfg(tmp_path, "trainer.max_epochs=1", "name=a", "seed=5"))
    b = train(_cfg(tmp_path, "trainer.max_epochs=1", "name=b", "seed=5"))
    c = train(_cfg(tmp_path, "trainer.max_epochs=1", "name=c", "seed=6"))
    assert a.metrics == b.metrics
    assert a.metrics["val/loss"] != c.metrics["val/loss"]
    for p, q in zip(a.method.parameters(), b.method.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    cfg, method, dm = load_run(a.run_dir)
    batch = dm.split_batch("test")
    with torch.no_grad():
        e1 = method.embed(batch)
        e2 = a.method.embed(batch)
    for k in e1:
        torch.testing.assert_close(e1[k], e2[k])


def test_resume_errors(tmp_path):
    with pytest.raises(MMIBError, match="resume: no checkpoint at"):
        train(_cfg(tmp_path, "trainer.max_epochs=1", "name=z", "resume=last"))
    with pytest.raises(MMIBError, match="not an mmib run folder"):
        load_run(tmp_path)


def test_loss_terms_are_logged_once_per_epoch_as_batch_weighted_means(tmp_path):
    """Terms are accumulated per step and logged at the epoch's end (cheap logging); the logged value is the
    batch-size-weighted mean of the per-batch terms."""
    res = train(_cfg(tmp_path, "name=terms", "trainer.max_epochs=1"))
    term_keys = [k for k in res.metrics if k.startswith("train/") and k not in ("train/loss", "train/loss_epoch",
                                                                                 "train/loss_step")]
    assert term_keys, res.metrics
    assert any(k.startswith("val/") and k != "val/loss" for k in res.metrics)
    # the weighting itself, on a bare method: two batches of sizes 2 and 6
    m = res.method
    m._term_sums.clear()
    m.log = lambda *a, **k: None
    from mmib.objectives.base import LossOutput

    m._log_terms("val", LossOutput(torch.tensor(0.0), {"t": torch.tensor(1.0)}), 2)
    m._log_terms("val", LossOutput(torch.tensor(0.0), {"t": torch.tensor(3.0)}), 6)
    logged = {}
    m.log = lambda k, v, **kw: logged.__setitem__(k, float(v))
    m._flush_terms("val")
    assert logged == {"val/t": pytest.approx((1 * 2 + 3 * 6) / 8)} and not m._term_sums


class _Built(Exception):
    pass


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_rank_seed_offset_reaches_the_method(tmp_path, monkeypatch, rank):
    """Rank 0 builds the method under the run seed (single-process runs unchanged); rank r > 0 under seed + r, so
    whatever the method draws from the global RNG when built (AugmentedMethod's augmentation seed) differs."""
    import mmib.engine as engine
    import mmib.utils.dist as dist

    seen = {}

    def record(cfg, spec):
        seen["initial_seed"] = torch.initial_seed()
        seen["draw"] = int(torch.randint(0, 2**62, (1,)))
        raise _Built

    monkeypatch.setattr(dist, "launch_rank", lambda: rank)
    monkeypatch.setattr(engine, "build_method_from_config", record)
    with pytest.raises(_Built):
        train(_cfg(tmp_path, "trainer.max_epochs=1", "name=s", "seed=11"))
    assert seen["initial_seed"] == 11 + rank
    torch.manual_seed(11 + rank)
    assert seen["draw"] == int(torch.randint(0, 2**62, (1,)))
    assert engine.rank_seed(11, 0) == 11 and engine.rank_seed(11, 2) == 13


def test_evaluation_on_rank_above_zero_writes_nothing(tmp_path, monkeypatch):
    import mmib.utils.dist as dist
    from mmib.eval.evaluate import evaluate

    res = train(_cfg(tmp_path, "trainer.max_epochs=1", "name=e"))
    out = tmp_path / "eval"
    monkeypatch.setattr(dist, "launch_rank", lambda: 1)
    r = evaluate(res.method, res.datamodule, [{"protocol": "probe", "probes": ["linear"]}], out_dir=out)
    assert r["skipped_on_rank"] == 1 and r["complete"] is False and r["protocols"] == {}
    assert not out.exists()
    monkeypatch.setattr(dist, "launch_rank", lambda: 0)
    r = evaluate(res.method, res.datamodule, [{"protocol": "probe", "probes": ["linear"]}], out_dir=out)
    assert r["complete"] and "skipped_on_rank" not in r
    assert (out / "results.json").is_file() and (out / "report.md").is_file()


def test_loader_with_its_own_split_gets_the_configs_fractions():
    # spkit_ppg_eda (like vision_touch) draws its own predefined split: data.val_fraction must reach the loader,
    # not be dropped by the data module (which keeps a predefined split as it is)
    pytest.importorskip("spkit")
    from mmib.runs import build_datamodule

    sizes = {}
    for v in (0.15, 0.3):
        dm = build_datamodule(compose_config(["data=spkit_ppg_eda", f"data.val_fraction={v}"]))
        dm.setup("fit")
        sizes[v] = {k: len(i) for k, i in dm.indices.items()}
    n = sum(sizes[0.15].values())
    assert sizes[0.3]["val"] > sizes[0.15]["val"] and sizes[0.3]["test"] == sizes[0.15]["test"]
    assert abs(sizes[0.3]["val"] / n - 0.3) < 0.03 and abs(sizes[0.15]["val"] / n - 0.15) < 0.03
