import numpy as np
import pytest
import torch

from mmib.data.dataset import DataValidationError
from mmib.data.registry import build_dataset, dataset_names
from mmib.data.synthetic.align import make_sim_align


def test_registered_and_shapes():
    assert "sim_align" in dataset_names()
    ds = build_dataset("sim_align", n_samples=50, n_modalities=4, modality_dim=10)
    assert ds.spec.modality_names == ("m0", "m1", "m2", "m3")
    assert ds.spec.task == "classification" and ds.spec.n_classes == 4
    assert len(ds) == 50 and all(ds.x[k].shape == (50, 10) for k in ds.spec.modality_names)
    assert set(ds.spec.latents) == set(ds.latents)
    assert ds.latents["essence"].shape == (50, 8) and ds.latents["nuisance_m2"].shape == (50, 8)
    sample = ds[0]
    assert set(sample["x"]) == set(ds.spec.modality_names) and "latents" in sample


@pytest.mark.parametrize("m", [2, 6])
def test_every_supported_m(m):
    assert len(make_sim_align(n_samples=10, n_modalities=m).spec.modalities) == m


def test_seeded_and_structure_shared_across_seeds():
    a, b = make_sim_align(n_samples=30, seed=3), make_sim_align(n_samples=30, seed=3)
    assert all(torch.equal(a.x[k], b.x[k]) for k in a.spec.modality_names)
    c = make_sim_align(n_samples=30, seed=4)
    assert not torch.equal(a.x["m0"], c.x["m0"])


def test_label_is_determined_by_the_essence():
    from sklearn.linear_model import LogisticRegression

    ds = make_sim_align(n_samples=500, seed=0)
    e, y = ds.latents["essence"].numpy(), ds.y.numpy()
    assert len(np.unique(y)) == 4
    # nearest-prototype classes are linearly separable in the essence
    assert LogisticRegression(C=1e3, max_iter=3000).fit(e, y).score(e, y) > 0.98


def test_synergy_needs_all_modalities():
    ds = make_sim_align(n_samples=4000, n_modalities=3, n_synergy_values=3, seed=1)
    shares = np.stack([ds.latents[f"share_m{i}"].numpy() for i in range(3)])
    syn = ds.latents["synergy"].numpy()
    assert np.array_equal(syn, shares.sum(0) % 3)
    # any two shares leave the synergy uniform: for each value pair of (share_m0, share_m1), all 3 values occur evenly
    for v0 in range(3):
        for v1 in range(3):
            sel = (shares[0] == v0) & (shares[1] == v1)
            counts = np.bincount(syn[sel], minlength=3) / sel.sum()
            assert np.abs(counts - 1 / 3).max() < 0.1


def test_essence_readout_improves_with_more_modalities():
    from sklearn.linear_model import Ridge

    ds = make_sim_align(n_samples=3000, n_modalities=5, essence_noise=1.0, seed=2)
    e = ds.latents["essence"].numpy()
    r2 = []
    for m in (1, 3, 5):
        x = np.concatenate([ds.x[f"m{i}"].numpy() for i in range(m)], axis=1)
        r2.append(Ridge(alpha=1e-3).fit(x[:2000], e[:2000]).score(x[2000:], e[2000:]))
    assert r2[0] < r2[1] < r2[2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_modalities": 1}, "n_modalities must be an int in 2..6"),
        ({"n_modalities": 7}, "n_modalities"),
        ({"n_samples": 0}, "n_samples"),
        ({"essence_noise": -1.0}, "essence_noise"),
        ({"noise_std": float("nan")}, "noise_std"),
        ({"n_classes": 1}, "n_classes"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        make_sim_align(**kwargs)
