"""OMIB's synthetic data (spec omib §4; claim 6)."""

import numpy as np
import pytest

from mmib.data.dataset import DataValidationError
from mmib.data.registry import build_dataset
from mmib.data.synthetic.omib_sim import (
    OMIB_SIM_CASES,
    bayes_accuracy,
    make_omib_sim,
    reference_classifiers,
)


@pytest.mark.parametrize("case", ["I", "II", "III"])
def test_layout_shapes_and_shared_blocks(case):
    d = make_omib_sim(500, case, seed=1)
    d11, d21 = OMIB_SIM_CASES[case]
    assert d.x["x1"].shape == (500, 200 + 200 + d11 + 200)
    assert d.x["x2"].shape == (500, 200 + 200 + d21 + 200)
    # x1 = [a0; b0; a1; b1], x2 = [a0; b0; a2; b2] with the same copy of a0 and b0
    np.testing.assert_allclose(d.x["x1"][:, :200], d.blocks["a0"], rtol=1e-6)
    np.testing.assert_allclose(d.x["x1"][:, :400], d.x["x2"][:, :400])
    np.testing.assert_allclose(d.x["x2"][:, 400:400 + d21], d.blocks["a2"], rtol=1e-6)
    a = np.concatenate([d.blocks["a0"], d.blocks["a1"], d.blocks["a2"]], 1)
    np.testing.assert_array_equal(d.y, (a @ d.delta > 0).astype(np.int64))


def test_balanced_labels_and_determinism():
    d = make_omib_sim(8000, "I", seed=0)
    assert abs(d.y.mean() - 0.5) < 0.03
    e = make_omib_sim(8000, "I", seed=0)
    np.testing.assert_array_equal(d.x["x1"], e.x["x1"])
    f = make_omib_sim(8000, "I", seed=1)
    assert not np.array_equal(d.x["x1"], f.x["x1"])


def test_superfluous_dims_are_parameters():
    d = make_omib_sim(50, "III", d12=7, d22=3)
    assert d.blocks["b1"].shape == (50, 7) and d.blocks["b2"].shape == (50, 3)
    assert d.x["x1"].shape[1] == 200 + 200 + 300 + 7


def test_bayes_accuracy_formula():
    d = make_omib_sim(10, "I", seed=0)
    n = len(d.delta)
    assert bayes_accuracy(d.delta, np.ones(n, bool)) == 1.0
    mask = np.zeros(n, bool)
    mask[:200] = True  # a0 only
    assert abs(bayes_accuracy(d.delta, mask) - (1 - np.arccos(np.sqrt(200 / 800)) / np.pi)) < 0.02


def test_registered_dataset_and_latents():
    ds = build_dataset("omib_sim", case="II", n_samples=300, seed=2)
    assert ds.spec.modality_names == ("x1", "x2")
    assert ds.spec.task == "classification" and ds.spec.n_classes == 2
    assert set(ds.latents) == {"a0", "a1", "a2", "b0", "b1", "b2"}
    assert ds.spec.modality("x2").shape == (200 + 200 + 500 + 200,)


def test_three_modality_extension():
    d = make_omib_sim(400, n_modalities=3, tri_block_dim=5, seed=0)
    assert set(d.x) == {"x1", "x2", "x3"}
    assert d.layout["x1"] == ("a00", "a11", "a12", "a13", "b00", "b11", "b12", "b13")
    assert "a23" not in d.layout["x1"] and "a23" in d.layout["x2"] and "a23" in d.layout["x3"]
    ds = build_dataset("omib_sim", n_modalities=3, tri_block_dim=5, n_samples=100)
    assert len(ds.spec.modalities) == 3 and len(ds.latents) == 14


def test_bad_options_are_named():
    with pytest.raises(DataValidationError, match="case"):
        make_omib_sim(10, "IV")
    with pytest.raises(DataValidationError, match="n_modalities"):
        make_omib_sim(10, n_modalities=4)
    with pytest.raises(DataValidationError, match="d12"):
        make_omib_sim(10, d12=-1)


def test_reference_classifier_ordering():
    """Claim 6: logistic regression on [a0; a1; a2] > union > the better unimodal set (reduced dims, fast)."""
    d = make_omib_sim(4000, "I", d0=20, d0_superfluous=20, d11=50, d21=10, d12=40, d22=40, seed=0)
    idx = np.random.default_rng(0).permutation(4000)
    acc = reference_classifiers(d.blocks, d.y, idx[:3500], idx[3500:])
    assert set(acc) == {"a0", "a1+a2", "unimodal:x1", "unimodal:x2", "authentic_mib", "union"}
    assert acc["authentic_mib"] > acc["union"] > max(acc["unimodal:x1"], acc["unimodal:x2"])
    assert acc["unimodal:x1"] > acc["unimodal:x2"]  # SIM-I: modality I carries more relevant dims
