"""Probes on data where the answer is known, and against scikit-learn."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from mmib.errors import MMIBError
from mmib.eval.probe import PROBE_DESCRIPTIONS, ProbeConfig, fit_probe, train_probe


def _split(x, y):
    n = len(y)
    a, b = int(0.6 * n), int(0.8 * n)
    return x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:]


def _classes(n=900, k=3, d=10, sep=4.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    rng.shuffle(y)
    centers = rng.normal(size=(k, d)) * sep
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


def test_separable_features_are_decoded():
    x, y = _classes(sep=4.0)
    r = fit_probe(*_split(x, y), "classification", 3, ProbeConfig("linear"))
    assert r.metrics["accuracy"] > 0.97
    assert r.description == PROBE_DESCRIPTIONS["classification"]["linear"] and "cross-entropy" in r.description


def test_label_independent_features_give_chance():
    rng = np.random.default_rng(1)
    _, y = _classes(n=1500)
    x = rng.normal(size=(1500, 10)).astype(np.float32)  # independent of y
    for kind in ("linear", "mlp"):
        r = fit_probe(*_split(x, y), "classification", 3, ProbeConfig(kind))
        assert abs(r.metrics["balanced_accuracy"] - 1 / 3) < 0.08, (kind, r.metrics)


def test_xor_synergy_needs_a_nonadditive_probe():
    """Spec D.3.1: a CE-trained linear probe on additive features of an XOR task is at chance; with the product
    feature, or with the MLP probe, it is not."""
    rng = np.random.default_rng(2)
    n = 3000
    b1, b2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    y = (b1 ^ b2).astype(np.int64)
    x1 = (2 * b1 - 1) + 0.3 * rng.normal(size=n)
    x2 = (2 * b2 - 1) + 0.3 * rng.normal(size=n)
    additive = np.stack([x1, x2, np.tanh(x1), np.tanh(x2)], 1).astype(np.float32)
    lin = fit_probe(*_split(additive, y), "classification", 2, ProbeConfig("linear"))
    assert abs(lin.metrics["balanced_accuracy"] - 0.5) < 0.05
    with_product = np.concatenate([additive, (x1 * x2)[:, None].astype(np.float32)], 1)
    assert fit_probe(*_split(with_product, y), "classification", 2).metrics["accuracy"] > 0.95
    mlp = fit_probe(*_split(additive, y), "classification", 2, ProbeConfig("mlp", max_epochs=300, patience=30))
    assert mlp.metrics["accuracy"] > 0.9


def test_linear_probe_matches_sklearn_logistic_regression():
    x, y = _classes(n=1200, k=4, d=20, sep=0.6, seed=3)
    xtr, ytr, xva, yva, xte, yte = _split(x, y)
    ours = fit_probe(xtr, ytr, xva, yva, xte, yte, "classification", 4).metrics["accuracy"]
    ref = LogisticRegression(max_iter=2000).fit(xtr, ytr).score(xte, yte)
    assert 0.4 < ref < 0.95  # a case that is neither trivial nor hopeless
    assert abs(ours - ref) < 0.05


def test_regression_probe_matches_least_squares():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(800, 6)).astype(np.float32)
    y = (x @ rng.normal(size=6) + 0.3 * rng.normal(size=800)).astype(np.float32)
    xtr, ytr, xva, yva, xte, yte = _split(x, y)
    r = fit_probe(xtr, ytr, xva, yva, xte, yte, "regression")
    ref = LinearRegression().fit(xtr, ytr).score(xte, yte)
    assert r.metrics["r2"] == pytest.approx(ref, abs=0.02)
    assert r.chance["r2"] <= 0.0 and r.metrics["mse"] < r.chance["mse"]


def test_seeded_and_reported():
    x, y = _classes(sep=0.8)
    a = train_probe(*_split(x, y), "classification", 3, ProbeConfig("mlp", seed=5))
    b = train_probe(*_split(x, y), "classification", 3, ProbeConfig("mlp", seed=5))
    assert a == b and a["epochs"] >= 1


def test_bad_input_is_named():
    x, y = _classes(n=60)
    xb = x.copy()
    xb[3, 2] = np.nan
    with pytest.raises(MMIBError, match=r"train features hold NaN or inf \(row 3\)"):
        fit_probe(xb, y, None, None, x, y)
    with pytest.raises(MMIBError, match="must be 2-D"):
        fit_probe(x[:, 0], y, None, None, x, y)
    with pytest.raises(MMIBError, match="unknown probe 'svm'"):
        ProbeConfig("svm")
    with pytest.raises(MMIBError, match="class labels must lie in 0..1"):
        fit_probe(x, y, None, None, x, y, "classification", 2)
    with pytest.raises(MMIBError, match="60 feature rows but 59 targets"):
        fit_probe(x, y[:-1], None, None, x, y)


def test_mlp_regression_probe_known_answers():
    """y a smooth nonlinear function of x: the MLP explains most of it while a linear probe cannot (y is even in x,
    so it has no linear part); y drawn independently of x: neither explains anything (R² ≈ 0 or below)."""
    rng = np.random.default_rng(7)
    x = rng.uniform(-2, 2, size=(1500, 4)).astype(np.float32)
    y = (np.cos(2 * x[:, 0]) + x[:, 1] ** 2 + 0.05 * rng.normal(size=1500)).astype(np.float32)
    cfg = ProbeConfig("mlp", max_epochs=300, patience=30, hidden=64, seed=0)
    r = fit_probe(*_split(x, y), "regression", config=cfg)
    lin = fit_probe(*_split(x, y), "regression")
    assert r.metrics["r2"] > 0.9 and r.metrics["mse"] < 0.1 * r.chance["mse"]
    assert lin.metrics["r2"] < 0.1
    assert r.description == PROBE_DESCRIPTIONS["regression"]["mlp"] == "4-layer MLP (MSE)"
    y_ind = rng.normal(size=1500).astype(np.float32)
    r0 = fit_probe(*_split(x, y_ind), "regression", config=cfg)
    assert r0.metrics["r2"] < 0.05


def test_balanced_class_weight_recovers_a_rare_class_the_plain_probe_drops():
    # a 5 %-positive label that a weak feature predicts: the plain CE probe predicts the majority class (balanced
    # accuracy exactly 0.5), the class-balanced probe finds the direction
    from mmib.eval.probe import ProbeConfig, fit_probe

    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.05).astype(np.int64)
    x = np.stack([y * 1.5 + rng.normal(size=n), rng.normal(size=n)], 1).astype(np.float32)
    tr, va, te = slice(0, 2000), slice(2000, 2500), slice(2500, None)
    plain = fit_probe(x[tr], y[tr], x[va], y[va], x[te], y[te], "classification", 2, ProbeConfig())
    bal = fit_probe(x[tr], y[tr], x[va], y[va], x[te], y[te], "classification", 2,
                    ProbeConfig(class_weight="balanced"))
    assert plain.metrics["balanced_accuracy"] < 0.6
    assert bal.metrics["balanced_accuracy"] > 0.7 and bal.metrics["balanced_accuracy"] - plain.metrics["balanced_accuracy"] > 0.15
    assert bal.description.endswith("(class-balanced cross-entropy)") and plain.description.endswith("(cross-entropy)")
    with pytest.raises(MMIBError, match="class_weight must be none or balanced"):
        ProbeConfig(class_weight="auto")


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_default_schedule_is_the_explicit_one(kind):
    """fit_probe trains with ProbeConfig.schedule: the defaults give the same probe as the resolved values given
    explicitly, and an MLP trained on one batch stops 5 epochs after its best (20 with patience=20)."""
    x, y = _classes(n=300, sep=1.0, seed=3)
    data = _split(x, y)
    default = fit_probe(*data, "classification", 3, ProbeConfig(kind, hidden=32))
    epochs, patience = ProbeConfig(kind).schedule(len(data[1]))
    explicit = fit_probe(*data, "classification", 3, ProbeConfig(kind, hidden=32, max_epochs=epochs,
                                                                  patience=patience))
    assert default.to_dict() == explicit.to_dict() and np.array_equal(default.predictions, explicit.predictions)
    if kind == "mlp":
        longer = fit_probe(*data, "classification", 3, ProbeConfig(kind, hidden=32, patience=20))
        assert longer.epochs - default.epochs == 15 and longer.metrics == default.metrics  # the same best epoch
    else:
        assert default.epochs <= 300  # the general default (the 100-epoch full-batch rule was reverted)
