"""The Python API on arrays held in memory."""

import numpy as np
import pytest

import mmib
from mmib.data.dataset import DataValidationError
from mmib.errors import MMIBError, UnknownNameError


def _arrays(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    centers = rng.normal(size=(4, 6)) * 3
    z = centers[y] + rng.normal(size=(n, 6))
    X = {"a": z @ rng.normal(size=(6, 20)) + 0.1 * rng.normal(size=(n, 20)),
         "b": np.tanh(z @ rng.normal(size=(6, 10))) + 0.1 * rng.normal(size=(n, 10))}
    return X, y


def test_fit_transform_score_evaluate_save_load(tmp_path):
    X, y = _arrays()
    model = mmib.MultimodalModel("clip", max_epochs=3, batch_size=64, progress=False, run_dir=str(tmp_path),
                                 overrides={"method.representation_dim": 32, "method.embed_dim": 16})
    model.fit(X, y)
    Z = model.transform(X)
    assert Z.shape == (400, 64) and np.isfinite(Z).all()
    Za = model.transform(X, modalities=["a"])
    assert Za.shape == (400, 32)
    np.testing.assert_allclose(Za, Z[:, :32], rtol=1e-5, atol=1e-5)
    E = model.transform(X, space="embedding")
    assert E.shape == (400, 32)
    S = model.score({"a": X["a"][:50]}, {"b": X["b"][:50]})
    assert S.shape == (50, 50) and np.all(np.abs(S) <= 1 + 1e-5)
    # aligned pairs are ranked above chance after a few epochs
    ranks = (S > np.diag(S)[:, None]).sum(1)
    assert np.median(ranks) < 25
    met = model.evaluate()
    assert met["accuracy"] > 0.5  # 4 well-separated classes; chance 0.25
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = mmib.MultimodalModel.load(path)
    np.testing.assert_allclose(loaded.transform(X), Z, rtol=1e-5, atol=1e-5)


def test_api_errors(tmp_path):
    X, y = _arrays(100)
    with pytest.raises(UnknownNameError, match="unknown method 'nope'"):
        mmib.MultimodalModel("nope")
    model = mmib.MultimodalModel("clip", max_epochs=1, progress=False, run_dir=str(tmp_path))
    with pytest.raises(MMIBError, match="not fitted yet"):
        model.transform(X)
    with pytest.raises(DataValidationError, match="different numbers of samples"):
        model.fit({"a": X["a"], "b": X["b"][:50]})
    with pytest.raises(DataValidationError, match="non-empty dict"):
        model.fit({})
    model.fit(X)
    with pytest.raises(UnknownNameError, match="unknown modality of data set 'arrays' 'c'"):
        model.transform({"c": X["a"]})
    with pytest.raises(DataValidationError, match=r"modality 'a': expected per-sample shape \(20,\), got \(3,\)"):
        model.transform({"a": X["a"][:, :3]})
    with pytest.raises(MMIBError, match="evaluate needs labels"):
        model.evaluate()


def test_evaluate_after_load(tmp_path):
    X, y = _arrays()
    model = mmib.MultimodalModel("clip", max_epochs=3, batch_size=64, progress=False, run_dir=str(tmp_path),
                                 overrides={"method.representation_dim": 32, "method.embed_dim": 16})
    model.fit(X, y)
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = mmib.MultimodalModel.load(path)
    # the fit data's splits are not saved: evaluate() alone says what it needs
    with pytest.raises(MMIBError, match=r"evaluate after load needs labelled data: evaluate\(X, y\)"):
        loaded.evaluate()
    with pytest.raises(MMIBError, match=r"evaluate\(X, y\): y is needed with X"):
        loaded.evaluate(X)
    # given labelled arrays, the probe is trained and tested on a seeded split of them
    Xn, yn = _arrays(seed=0)  # the same distribution (same centers and maps), 400 samples
    met = loaded.evaluate(Xn, yn)
    assert np.isfinite(met["accuracy"]) and met["accuracy"] > 0.5  # chance 0.25
    assert loaded.evaluate(Xn, yn) == met  # seeded
    met_a = loaded.evaluate(Xn, yn, modalities=["a"], probe="mlp")
    assert 0.0 <= met_a["accuracy"] <= 1.0
    with pytest.raises(UnknownNameError, match="unknown modality of data set 'arrays' 'c'"):
        loaded.evaluate(Xn, yn, modalities=["c"])
    with pytest.raises(DataValidationError, match=r"evaluate\(X, y\): modality \['b'\] requested but not given in X"):
        loaded.evaluate({"a": Xn["a"]}, yn, modalities=["a", "b"])
    with pytest.raises(DataValidationError, match=r"labels y: expected 400 entries \(one per sample\), got 10"):
        loaded.evaluate(Xn, yn[:10])
    with pytest.raises(MMIBError, match="leave the (val|test) split empty"):
        loaded.evaluate({m: v[:4] for m, v in Xn.items()}, yn[:4])
    # a freshly fitted model's evaluate is unchanged: probe trained on the fit data's splits
    assert model.evaluate()["accuracy"] > 0.5
