"""``mmib.runs.load_run`` and the normalization statistics in checkpoints (issue 23): a checkpoint carries the
statistics its data module applied, loading a run uses them instead of fitting them again, and a checkpoint written
before they were stored still loads (the statistics are fitted again on the train split: the same values)."""

import shutil

import pytest
import torch

import mmib.data.datamodule as datamodule
from mmib.config import compose_config
from mmib.data.datamodule import CHECKPOINT_KEY, checkpoint_normalization
from mmib.engine import train
from mmib.errors import MMIBError
from mmib.runs import load_run
from mmib.utils.checkpoint import add_digest


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    cfg = compose_config(["method=clip", "data=rus_sim", "data.n_samples=200", "data.batch_size=32",
                          "trainer.max_epochs=1", "trainer.enable_progress_bar=false", f"run_dir={tmp}", "name=r",
                          "encoder.vector.hidden=[16]"])
    res = train(cfg)
    return tmp / "r", {m: (mean.clone(), std.clone()) for m, (mean, std) in res.datamodule.normalization.items()}


def _count_fits(monkeypatch) -> list:
    calls, real = [], datamodule.fit_normalization

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(datamodule, "fit_normalization", counted)
    return calls


def _assert_same(a, b):
    assert set(a) == set(b) and a
    for m in a:
        assert torch.equal(a[m][0], b[m][0]) and torch.equal(a[m][1], b[m][1]), m


def _rewrite(folder, dst, edit):
    """A copy of the run folder whose last.ckpt is edited by ``edit(checkpoint)`` (digest renewed)."""
    shutil.copytree(folder, dst)
    path = dst / "checkpoints" / "last.ckpt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    edit(ck)
    torch.save(add_digest(ck), path)
    return dst


def test_the_checkpoint_stores_the_statistics_and_load_run_uses_them(run, monkeypatch):
    folder, trained = run
    ck = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)  # data only
    _assert_same(checkpoint_normalization(ck), trained)
    calls = _count_fits(monkeypatch)
    _, method, dm = load_run(folder)
    assert calls == []  # not fitted again
    _assert_same(dm.dataset.normalization, trained)
    # the same values fitting them again gives (what load_run did before)
    _assert_same(datamodule.fit_normalization(dm.dataset, dm.indices["train"]), trained)


def test_a_checkpoint_without_statistics_still_loads_by_fitting_them_again(run, tmp_path, monkeypatch):
    folder, trained = run
    old = _rewrite(folder, tmp_path / "old", lambda ck: ck[CHECKPOINT_KEY].pop("normalization"))
    assert checkpoint_normalization(torch.load(old / "checkpoints" / "last.ckpt", weights_only=True)) is None
    calls = _count_fits(monkeypatch)
    _, _, dm = load_run(old)
    assert calls == [1]
    _assert_same(dm.dataset.normalization, trained)


def test_a_checkpoint_without_any_data_module_state_still_loads(run, tmp_path, monkeypatch):
    folder, trained = run
    old = _rewrite(folder, tmp_path / "older", lambda ck: ck.pop(CHECKPOINT_KEY))
    calls = _count_fits(monkeypatch)
    _, _, dm = load_run(old)
    assert calls == [1]
    _assert_same(dm.dataset.normalization, trained)


@pytest.mark.parametrize("bad, message", [
    (lambda s: s.update(x1={"mean": s["x1"]["mean"][:-1], "std": s["x1"]["std"][:-1]}), "modality 'x1'"),
    (lambda s: s.update(nope=dict(s["x1"])), "modality 'nope'"),
    (lambda s: s.update(x1={"mean": s["x1"]["mean"]}), "modality 'x1'"),
    (lambda s: s["x1"]["std"].fill_(0.0), "std"),
])
def test_statistics_that_do_not_fit_the_data_are_a_one_line_error(run, tmp_path, bad, message):
    folder, _ = run
    broken = _rewrite(folder, tmp_path / "broken", lambda ck: bad(ck[CHECKPOINT_KEY]["normalization"]))
    with pytest.raises(MMIBError, match=message) as e:
        load_run(broken)
    assert "\n" not in str(e.value)
