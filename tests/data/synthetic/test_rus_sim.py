"""The R/U/S generator: latents, exact information values, pure synergy (additivity barrier), biased variant."""

import numpy as np
import pytest

from mmib.data.registry import build_dataset
from mmib.data.synthetic.rus import make_rus, rus_information
from mmib.errors import MMIBError
from mmib.eval.probe import ProbeConfig, train_probe


def test_shapes_latents_and_registry():
    ds = build_dataset("rus_sim", n_samples=200, n_modalities=3, dim=40)
    assert ds.spec.modality_names == ("x1", "x2", "x3")
    assert ds.spec.latents["redundant"] == 4 and ds.spec.latents["nuisance_1"] == 0
    assert ds.x["x1"].shape == (200, 40)
    s = sum(ds.latents[f"carrier_{i}"].numpy() for i in (1, 2, 3)) % 2
    assert np.array_equal(s, ds.latents["synergy"].numpy()) and np.array_equal(ds.y.numpy(), s)
    again = make_rus(n_samples=200, n_modalities=3, dim=40)
    assert np.array_equal(ds.x["x2"].numpy(), again.x["x2"].numpy())


def test_exact_information_values():
    info = rus_information(2, 4, 4)["targets"]
    assert info["synergy"]["PID"] == pytest.approx({"R": 0, "U1": 0, "U2": 0, "S": 1})
    assert info["synergy"]["I"] == pytest.approx({"1": 0, "2": 0, "1+2": 1})
    assert info["redundant"]["PID"] == pytest.approx({"R": 2, "U1": 0, "U2": 0, "S": 0})
    assert info["unique_1"]["PID"] == pytest.approx({"R": 0, "U1": 2, "U2": 0, "S": 0})
    three = rus_information(3, 2, 2)["targets"]["synergy"]["I"]
    assert three["1+2"] == pytest.approx(0) and three["1+2+3"] == pytest.approx(1)
    biased = rus_information(2, 2, 2, biased=True, bias_q=1.0)["targets"]["synergy"]
    assert biased["H"] == pytest.approx(0)
    half = rus_information(2, 2, 2, biased=True, bias_q=0.5)["targets"]["synergy"]
    assert 0 < half["H"] < 1


def test_synergy_is_invisible_to_a_linear_probe_on_raw_inputs_but_not_to_a_product_feature():
    ds = make_rus(n_samples=3000, noise=0.05)
    x = np.concatenate([ds.x["x1"].numpy(), ds.x["x2"].numpy()], 1)
    y = ds.latents["synergy"].numpy()
    tr, va, te = slice(0, 2000), slice(2000, 2500), slice(2500, 3000)
    lin = train_probe(x[tr], y[tr], x[va], y[va], x[te], y[te], n_classes=2, config=ProbeConfig(kind="linear"))
    assert abs(lin["balanced_accuracy"] - 0.5) < 0.06
    c = (2 * ds.latents["carrier_1"].numpy() - 1) * (2 * ds.latents["carrier_2"].numpy() - 1)
    xp = np.concatenate([x, c[:, None]], 1).astype(np.float32)
    prod = train_probe(xp[tr], y[tr], xp[va], y[va], xp[te], y[te], n_classes=2, config=ProbeConfig(kind="linear"))
    assert prod["balanced_accuracy"] > 0.95


def test_biased_variant_copies_carriers_and_shares_the_world():
    a = make_rus(n_samples=500, biased=True, bias_q=1.0)
    b = make_rus(n_samples=500)
    assert np.array_equal(a.latents["carrier_1"].numpy(), a.latents["carrier_2"].numpy())
    assert int(a.latents["synergy"].sum()) == 0
    assert a.information["targets"]["synergy"]["H"] == 0
    # same codebooks and maps: the redundant code of a sample maps to the same point up to noise
    i = int(np.flatnonzero(a.latents["redundant"].numpy() == 0)[0])
    assert i >= 0 and b.spec.latents == a.spec.latents


def test_bad_options():
    with pytest.raises(ValueError, match="n_modalities"):
        make_rus(n_modalities=1)
    with pytest.raises(ValueError, match="full-rank"):
        make_rus(dim=8)
    with pytest.raises(ValueError, match="target"):
        make_rus(n_samples=10, target="unique_3")
    with pytest.raises(MMIBError, match="option"):
        build_dataset("rus_sim", n_sample=10)
