"""A suite's ``tune:`` block: 2 method variants × 3 trials end to end (equal budget, chosen values in the runs'
config, fingerprints and report), selection that never reads the test split, pruned trials counted, validation of
the block, and a finished study reused rather than redone."""

import json

import numpy as np
import pytest

from mmib.bench.plan import plan_suite
from mmib.bench.runner import run_suite
from mmib.bench.suite import parse_suite
from mmib.errors import MMIBError, UnknownNameError

TUNED = {
    "name": "tiny-tune",
    "seeds": [0, 1],
    "methods": [{"name": "clip-a", "method": "clip"}, {"name": "clip-b", "method": "clip",
                                                        "overrides": {"objective.positive_in_denominator": False}}],
    "data": [{"name": "mf2", "data": "mfeat", "options": {"views": [0, 2], "batch_size": 256}}],
    "trainer": {"max_epochs": 1},
    "overrides": {"method.representation_dim": 16, "method.embed_dim": 8, "encoder.vector.hidden": [16]},
    "protocols": [{"probe": {"probes": ["linear"], "probe_options": {"max_epochs": 5}}}],
    "tune": {
        "data": "mf2", "seed": 0, "n_trials": 3, "sampler": {"name": "random", "seed": 7},
        "metric": {"probe": "linear", "metric": "accuracy", "probe_options": {"max_epochs": 5}},
        "space": {
            "clip-a": {"method.objective.temperature": {"low": 0.05, "high": 1.0, "log": True}},
            "clip-b": {"method.objective.temperature": {"low": 0.05, "high": 1.0, "log": True},
                       "method.optim.lr": {"choices": [0.001, 0.003]}},
        },
    },
}


def _guard_test_split(monkeypatch):
    """Record every data module's test indices and every row any data set hands out; fail on the test loader."""
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.dataset import MultimodalDataset

    test_rows: list[np.ndarray] = []
    read: list[np.ndarray] = []
    init, get_batch = MultimodalDataModule.__init__, MultimodalDataset.get_batch

    def init_spy(self, *a, **k):
        init(self, *a, **k)
        test_rows.append(np.asarray(self.indices["test"]))

    def get_batch_spy(self, indices):
        read.append(np.asarray(indices).reshape(-1).copy())
        return get_batch(self, indices)

    def no_test(self, *a, **k):
        raise AssertionError("the test split was read")

    monkeypatch.setattr(MultimodalDataModule, "__init__", init_spy)
    monkeypatch.setattr(MultimodalDataset, "get_batch", get_batch_spy)
    monkeypatch.setattr(MultimodalDataModule, "test_dataloader", no_test)
    return test_rows, read


def test_tuning_never_reads_the_test_split(tmp_path, monkeypatch):
    from mmib.bench.suite import load_suite
    from mmib.bench.tune import tune_suite

    suite = load_suite({**TUNED, "tune": {**TUNED["tune"], "n_trials": 2, "space": {"clip-a": TUNED["tune"]["space"]["clip-a"]}}})
    test_rows, read = _guard_test_split(monkeypatch)
    records = tune_suite(suite, tmp_path / "out")
    assert set(records) == {"clip-a"} and len(records["clip-a"]["trials"]) == 2
    assert test_rows and read  # the spies saw the data modules and their reads
    seen = np.unique(np.concatenate(read))
    for rows in test_rows:
        assert len(rows) > 0 and not np.isin(rows, seen).any(), "a test row was read during tuning"
    # the guard does catch a read of the test split (the evaluation after tuning reads it)
    from mmib.bench.tune import validation_score

    class R:  # a finished trial whose scoring would use the test split
        pass

    from mmib.runs import load_run

    trial = next((tmp_path / "out" / "tune").glob("clip-a-*/trial-0"))
    _, method, dm = load_run(trial)
    from mmib.eval.representations import extract_split

    read.clear()
    extract_split(method, dm, "test", None, ["concat"])
    assert np.isin(test_rows[-1], np.concatenate(read)).all()
    r = R()
    r.method, r.datamodule, r.metrics = method, dm, {}
    assert 0 <= validation_score(suite.tune, r) <= 1


def test_tiny_tuned_suite_end_to_end(tmp_path):
    out = tmp_path / "tiny"
    res = run_suite(TUNED, out_dir=out, progress=False, print_summary=False, results=tmp_path / "kept.json")
    assert res["complete"] and not res["failures"] and len(res["runs"]) == 4
    tune = res["tune"]
    assert set(tune) == {"clip-a", "clip-b"}
    for v, rec in tune.items():
        # the same budget, sampler and seed for every variant
        assert rec["n_counted"] == 3 and len(rec["trials"]) == 3
        assert rec["budget"] == tune["clip-a"]["budget"] and rec["budget"]["sampler"] == {"name": "random", "seed": 7}
        values = [t["value"] for t in rec["trials"] if t["state"] == "COMPLETE"]
        assert rec["best_value"] == max(values)  # accuracy: maximized
        best = next(t for t in rec["trials"] if t["number"] == rec["best_trial"])
        assert rec["chosen"] == best["params"]
        # the chosen values are in every seed's run config
        for s in (0, 1):
            cfg = json.loads((out / f"{v}-mf2-s{s}" / "results.json").read_text())["config"]
            assert cfg["method"]["objective"]["temperature"] == pytest.approx(rec["chosen"]["method.objective.temperature"])
            if v == "clip-b":
                assert cfg["method"]["optim"]["lr"] == rec["chosen"]["method.optim.lr"]
    report = (out / "report.md").read_text()
    assert "## Tuning" in report and "clip-b" in report
    for rec in tune.values():
        for t in rec["trials"]:
            assert f"{t['value']:.4g}" in report
    # tuning is not redone: a second call neither tunes nor trains
    import mmib.bench.tune as tune_mod

    calls = []
    real = tune_mod.tune_variant
    tune_mod.tune_variant = lambda *a, **k: calls.append(a) or real(*a, **k)
    try:
        again = run_suite(TUNED, out_dir=out, progress=False, print_summary=False)
    finally:
        tune_mod.tune_variant = real
    assert not calls and again["aggregate"] == res["aggregate"]
    # on a fresh machine, the kept results file alone: tuning and runs count as done
    fresh = tmp_path / "fresh"
    from mmib.bench.results import read_results

    kept = read_results(tmp_path / "kept.json")
    plan = plan_suite(TUNED, fresh, previous=kept)
    assert all(r.status == "done" for r in plan)
    # another search space: a new study (the old one's values do not apply)
    changed = {**TUNED, "tune": {**TUNED["tune"], "space": {**TUNED["tune"]["space"], "clip-a": {
        "method.objective.temperature": {"low": 0.1, "high": 0.5}}}}}
    status = {r.folder.name: r.status for r in plan_suite(changed, fresh, previous=kept)}
    assert status["clip-a-mf2-s0"] == "tune" and status["clip-b-mf2-s0"] == "done"


def test_pruned_trials_count_toward_the_budget(tmp_path):
    from mmib.bench.suite import load_suite
    from mmib.bench.tune import tune_variant

    raw = {**TUNED, "trainer": {"max_epochs": 3}, "tune": {
        **TUNED["tune"], "n_trials": 3, "metric": {"logged": "val/loss"},
        # prune every trial after the first, as soon as it reports: a percentile pruner at 0 %
        "pruner": {"name": "percentile", "percentile": 0.0, "n_startup_trials": 1, "n_warmup_steps": 0},
        "space": {"clip-a": {"method.objective.temperature": {"low": 0.05, "high": 1.0, "log": True}}}}}
    suite = load_suite(raw)
    rec = tune_variant(suite, suite.tune, "clip-a", tmp_path / "tune")
    states = [t["state"] for t in rec["trials"]]
    assert len(states) == 3 and rec["n_counted"] == 3, states
    assert "PRUNED" in states and states[0] == "COMPLETE"
    assert all(t["intermediate"] for t in rec["trials"])


@pytest.mark.parametrize("change, error, match", [
    ({"n_trials": 0}, MMIBError, "n_trials"),
    ({"data": "nope"}, UnknownNameError, "nope"),
    ({"space": {"clip-z": {"method.x": [1, 2]}}}, UnknownNameError, "clip-z"),
    ({"space": {"clip-a": {"method.x": {"low": 0, "high": 1, "log": True}}}}, MMIBError, "low > 0"),
    ({"space": {"clip-a": {"method.x": {"low": 1}}}}, MMIBError, "low' and 'high"),
    ({"metric": {"logged": "test/loss"}}, MMIBError, "validation split only"),
    ({"metric": {"probe": "linear", "split": "test"}}, UnknownNameError, "split"),
    ({"sampler": {"name": "grid"}}, UnknownNameError, "grid"),
    ({"per_method_trials": {"clip-a": 5}}, UnknownNameError, "per_method_trials"),
])
def test_tune_block_is_validated(change, error, match):
    with pytest.raises(error, match=match):
        parse_suite({**TUNED, "tune": {**TUNED["tune"], **change}})


COX_TUNED = {
    "name": "cox-tiny-tune", "seeds": [0],
    "methods": [{"name": "erm", "method": "cox_erm"}],
    "data": [{"name": "sim", "data": "cox_sim",
              "options": {"n_im": 120, "n_oom": 120, "n_val": 40, "n_test": 60, "batch_size": 32, "seed": "${seed}"}}],
    "trainer": {"max_epochs": 1},
    "overrides": {"encoder.vector.hidden": [16]},
    "protocols": [{"oom": {"ks": [1]}}],
    "tune": {"n_trials": 2, "sampler": {"name": "random", "seed": 3}, "metric": {"oom": "accuracy"},
             "space": {"erm": {"method.optim.lr": {"low": 1.0e-3, "high": 3.0e-2, "log": True}}}},
}


def test_oom_metric_is_the_val_split_oom_accuracy(tmp_path, monkeypatch):
    """{oom: accuracy}: each trial's score is the top-1 accuracy of predict from the OOM input alone on the val
    rows (recomputed here from the saved trial), and the test split is never read."""
    import torch

    from mmib.bench.suite import load_suite
    from mmib.bench.tune import oom_validation_score, tune_suite
    from mmib.runs import load_run

    suite = load_suite(COX_TUNED)
    assert suite.tune.metric == {"oom": "accuracy"} and suite.tune.direction == "maximize"
    test_rows, read = _guard_test_split(monkeypatch)
    rec = tune_suite(suite, tmp_path / "out")["erm"]
    assert rec["n_counted"] == 2 and test_rows and read
    seen = np.unique(np.concatenate(read))
    for rows in test_rows:
        assert len(rows) > 0 and not np.isin(rows, seen).any(), "a test row was read during tuning"
    for t in rec["trials"]:
        _, method, dm = load_run(next((tmp_path / "out" / "tune").glob(f"erm-*/trial-{t['number']}")))
        val = dm.split_batch("val")
        oom = method.spec.modality_names[-1]
        keep = val["mask"][oom].bool() if "mask" in val and oom in val["mask"] else torch.ones(len(val["y"]), dtype=bool)
        method.eval()
        with torch.no_grad():
            pred = method.predict({"x": {oom: val["x"][oom][keep]}}, [oom]).argmax(1)
        assert int(keep.sum()) == 40
        assert t["value"] == pytest.approx(float((pred == val["y"][keep]).float().mean()), abs=1e-12)
    with pytest.raises(MMIBError, match="has no metric 'acuracy'"):
        oom_validation_score(method, dm, "acuracy")


@pytest.mark.parametrize("metric, match", [
    ({"oom": "accuracy", "split": "test"}, "an oom metric takes no other key"),
    ({"oom": ""}, "expected the name of an oom protocol metric"),
    ({"oom": "accuracy", "logged": "val/loss"}, "give either"),
])
def test_oom_metric_is_validated(metric, match):
    with pytest.raises(MMIBError, match=match):
        parse_suite({**COX_TUNED, "tune": {**COX_TUNED["tune"], "metric": metric}})
