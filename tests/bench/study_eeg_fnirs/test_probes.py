"""mmib.bench.study_eeg_fnirs.probes: the probe family (against scikit-learn fitted by hand), the pooling of encoder
outputs, the rows each latent is probed on, and the method's arrays per split."""

import numpy as np
import pytest
import torch

from mmib.bench.study_eeg_fnirs import probes
from mmib.errors import MMIBError


def test_linear_probe_chooses_the_regularization_on_val_and_scores_test():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)

    def split(n):
        x = rng.standard_normal((n, 20))
        y = (x[:, 0] + 0.8 * rng.standard_normal(n) > 0).astype(np.int64)
        return x, y

    xs, ys = zip(*(split(n) for n in (60, 200, 300)))
    x, y = dict(zip(("train", "val", "test"), xs)), dict(zip(("train", "val", "test"), ys))
    f = probes.linear_probe(x, y, "classification")
    vals = {}
    mu, sd = x["train"].mean(0), x["train"].std(0)
    for c in (0.01, 0.1, 1.0, 10.0, 100.0):  # the reference: sklearn by hand for every C
        def z(a):
            return np.clip((a - mu) / sd, -5, 5)

        m = LogisticRegression(C=c, max_iter=5000).fit(z(x["train"]), y["train"])
        vals[c] = (balanced_accuracy_score(y["val"], m.predict(z(x["val"]))),
                   balanced_accuracy_score(y["test"], m.predict(z(x["test"]))))
    best = max(vals, key=lambda c: vals[c][0])
    assert f.reg == best and f.val == pytest.approx(vals[best][0]) and f.test == pytest.approx(vals[best][1])
    # regression: ridge, R² on test
    yr = {s: 2.0 * x[s][:, 1] + 0.1 * rng.standard_normal(len(x[s])) for s in x}
    fr = probes.linear_probe(x, yr, "regression")
    assert fr.test > 0.95


def test_pool_of_token_outputs():
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    p = probes._pool(t)
    assert p.shape == (2, 8)
    assert np.allclose(p[:, :4], t.mean(1).numpy()) and np.allclose(p[:, 4:], t.amax(1).numpy())
    assert probes._pool(torch.ones(5, 7)).shape == (5, 7)


def test_a_single_class_train_split_predicts_that_class():
    x = {s: np.random.default_rng(0).normal(size=(n, 3)) for s, n in (("train", 10), ("val", 6), ("test", 6))}
    y = {"train": np.ones(10, int), "val": np.array([1, 0, 1, 0, 1, 0]), "test": np.ones(6, int)}
    f = probes.linear_probe(x, y, "classification")
    assert all((f.pred[s] == 1).all() for s in x) and f.val == pytest.approx(0.5) and f.reg == 0.01


def test_rows_targets_and_chance(fake_study):
    ctx, lat, _ = fake_study()
    idx = probes.split_indices_of(ctx)
    assert {s: (i[0], len(i)) for s, i in idx.items()} == {"train": (0, 180), "val": (180, 60), "test": (240, 60)}
    assert probes.rows_for(lat, "k", idx) == idx  # e and k: every trial
    rows = probes.rows_for(lat, "synergy", idx)  # the others: task trials (e = 1) only
    for s in idx:
        np.testing.assert_array_equal(rows[s], idx[s][lat["e"][idx[s]] == 1])
    t = probes.target_values(lat, "synergy", rows["test"])
    assert t.dtype == np.int64 and np.array_equal(t, lat["synergy"][rows["test"]])
    assert probes.target_values(lat, "tau", rows["test"]).dtype == np.float64
    assert probes.chance_level("classification", np.array([0, 2, 1, 1])) == pytest.approx(1 / 3)
    assert probes.chance_level("classification", np.zeros(4)) == 0.5 and probes.chance_level("regression", np.zeros(4)) == 0.0
    got = probes.latents_of(ctx)
    assert set(got) == set(probes.TARGETS) and np.array_equal(got["k"], lat["k"])
    assert {s: list(v) for s, v in probes.sorted_indices({"a": np.array([3, 1, 2])}).items()} == {"a": [1, 2, 3]}


def test_missing_latents_and_empty_splits_are_named(fake_study):
    ctx, _, _ = fake_study()
    del ctx.dm.dataset.latents["tau"]
    with pytest.raises(MMIBError, match=r"data set 'fake' lacks the latents \['tau'\] \(expected those of "
                                        r"eeg_fnirs_sim: e, k, A, G, tau"):
        probes.latents_of(ctx)
    ctx.dm.indices["val"] = np.array([], int)
    with pytest.raises(MMIBError, match="the val split is empty"):
        probes.split_indices_of(ctx)


def test_method_arrays_follow_the_index_order_across_batches(fake_study):
    ctx, _, _ = fake_study("rus")
    perm = np.random.default_rng(1).permutation(300)
    comps, hid = probes.method_arrays(ctx, {"all": perm, "few": np.array([5, 2])}, want_hidden=True)
    assert hid == {"all": {}, "few": {}}  # the fake has no hidden(batch)
    for name, full in ctx.method.comps.items():
        np.testing.assert_array_equal(comps["all"][name], full.numpy()[perm])  # two batches of 256 and 44 rows
        np.testing.assert_array_equal(comps["few"][name], full.numpy()[[5, 2]])
