"""FactorCL's shared/unique generator: structure, the unique-ratio knob and the exact information values (checked
against an independent Monte-Carlo estimate from regression residuals)."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from mmib.data.registry import build_dataset
from mmib.data.synthetic.factorcl_sim import make_factorcl_sim


def _hb(p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def test_structure_and_ratio():
    ds = build_dataset("factorcl_sim", n_samples=500, unique_ratio=0.0)
    assert ds.x["x1"].shape == (500, 100) and set(ds.spec.latents) >= {"shared", "unique_1", "unique_2"}
    assert ds.information["label_coordinates"] == {"shared": 10, "unique_1": 0, "unique_2": 0}
    y = (ds.latents["label_shared"].numpy() >= 0).astype(int)
    assert np.array_equal(y, ds.y.numpy())
    full = make_factorcl_sim(n_samples=500, unique_ratio=1.0)
    assert full.information["label_coordinates"] == {"shared": 0, "unique_1": 5, "unique_2": 5}


def test_information_values_against_monte_carlo():
    ds = make_factorcl_sim(n_samples=20000, unique_ratio=0.5, noise=0.5)
    info = ds.information
    score = (ds.latents["label_shared"] + ds.latents["label_unique_1"] + ds.latents["label_unique_2"]).numpy()
    x1 = ds.x["x1"].numpy().astype(np.float64)
    # a | X1 is Gaussian: its mean is the least-squares prediction, its variance the residual variance
    design = np.concatenate([x1, np.ones((len(x1), 1))], 1)
    coef, *_ = np.linalg.lstsq(design, score, rcond=None)
    mu = design @ coef
    s = math.sqrt(np.mean((score - mu) ** 2))
    mc = 1.0 - float(np.mean(_hb(norm.cdf(mu / s))))
    assert info["I_X1_Y"] == pytest.approx(mc, abs=0.02)
    r = info["FactorCL"]
    assert r["U1"] == pytest.approx(info["I_X1X2_Y"] - info["I_X2_Y"])
    assert r["S"] == pytest.approx(info["I_X1_Y"] + info["I_X2_Y"] - info["I_X1X2_Y"])
    assert info["I_X1X2_Y"] >= max(info["I_X1_Y"], info["I_X2_Y"]) - 1e-9


def test_more_unique_ratio_means_less_single_modality_information():
    vals = [make_factorcl_sim(n_samples=50, unique_ratio=r).information["I_X1_Y"] for r in (0.0, 0.5, 1.0)]
    assert vals[0] > vals[1] > vals[2]
    assert vals[0] == pytest.approx(1.0, abs=0.01)


def test_bad_options():
    with pytest.raises(ValueError, match="unique_ratio"):
        make_factorcl_sim(unique_ratio=1.5)
    with pytest.raises(ValueError, match="dim"):
        make_factorcl_sim(dim=5)
    with pytest.raises(ValueError, match="coordinates"):
        make_factorcl_sim(label_dim=30)
