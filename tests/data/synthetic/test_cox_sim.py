"""The COX OOM data sets: presence masks express the missing correspondence; the testbed has OOM-unique classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmib.data.dataset import DataValidationError
from mmib.data.registry import build_dataset
from mmib.data.synthetic.cox_sim import BLIND_PAIRS, make_cox_sim, unpair_for_oom


def _roles(ds):
    im = ds.mask["im1"].numpy() & ds.mask["im2"].numpy()
    oom = ds.mask["oom"].numpy()
    return im, oom


@pytest.mark.parametrize("scenario", ["semi", "unsup"])
def test_cox_sim_rows_and_masks(scenario):
    ds = make_cox_sim(n_im=400, n_oom=300, n_val=50, n_test=80, scenario=scenario, seed=3)
    assert ds.spec.modality_names[-1] == "oom"
    im, oom = _roles(ds)
    assert np.array_equal(ds.mask["im1"].numpy(), ds.mask["im2"].numpy())
    tr = ds.split == "train"
    assert int((tr & im).sum()) == 400 and int((tr & oom).sum()) == 300
    paired = tr & im & oom
    if scenario == "semi":
        assert int(paired.sum()) == pytest.approx(30, abs=10)
        counts = np.bincount(ds.y.numpy()[paired], minlength=10)
        assert counts.min() >= 1  # class-balanced: every class is represented
    else:
        assert int(paired.sum()) == 0
    for s, n in (("val", 50), ("test", 80)):
        rows = ds.split == s
        assert int(rows.sum()) == n and bool(im[rows].all() and oom[rows].all())
    assert bool((im | oom).all())
    # absent modalities are zero-filled
    assert float(ds.x["oom"][torch.from_numpy(~oom)].abs().sum()) == 0.0


def test_cox_sim_is_seeded():
    a, b = make_cox_sim(n_im=100, n_oom=100, n_val=10, n_test=10, seed=1), \
        make_cox_sim(n_im=100, n_oom=100, n_val=10, n_test=10, seed=1)
    c = make_cox_sim(n_im=100, n_oom=100, n_val=10, n_test=10, seed=2)
    assert torch.equal(a.x["oom"], b.x["oom"]) and not torch.equal(a.x["oom"], c.x["oom"])


def test_cox_sim_blind_pairs_make_pair_01_oom_unique():
    ds = make_cox_sim(n_im=4000, n_oom=100, n_val=10, n_test=10, scenario="unsup", seed=0)
    im, _ = _roles(ds)
    y = ds.y.numpy()[im]
    s = ds.latents["s"].numpy()[im]
    from sklearn.linear_model import LogisticRegression

    def pair_acc(x, a, b):
        sel = np.isin(y, [a, b])
        clf = LogisticRegression(max_iter=500).fit(x[sel][::2], y[sel][::2])
        return clf.score(x[sel][1::2], y[sel][1::2])

    z1, z2 = ds.x["im1"].numpy()[im], ds.x["im2"].numpy()[im]
    # both IM modalities are blind to (0, 1); each resolves the pair the other is blind to
    assert pair_acc(z1, 0, 1) < 0.6 and pair_acc(z2, 0, 1) < 0.6
    assert pair_acc(z1, 2, 3) < 0.6 and pair_acc(z2, 2, 3) > 0.8
    assert pair_acc(z2, 4, 5) < 0.6 and pair_acc(z1, 4, 5) > 0.8
    # the latent (hence the OOM modality) resolves (0, 1)
    assert pair_acc(s, 0, 1) > 0.8
    assert BLIND_PAIRS[0][0] == BLIND_PAIRS[1][0] == (0, 1)


def test_cox_sim_registered_and_validates():
    ds = build_dataset("cox_sim", n_im=50, n_oom=50, n_val=5, n_test=5)
    assert ds.spec.name == "cox_sim"
    with pytest.raises(DataValidationError, match="scenario"):
        make_cox_sim(scenario="weak")
    with pytest.raises(DataValidationError, match="labeled_fraction"):
        make_cox_sim(labeled_fraction=0.0)
    with pytest.raises(DataValidationError, match="n_im"):
        make_cox_sim(n_im=10, n_oom=1000, labeled_fraction=0.5)


def test_unpair_for_oom_hides_correspondence():
    from mmib.data.dataset import MultimodalDataset
    from mmib.data.spec import DatasetSpec, ModalitySpec

    rng = np.random.default_rng(0)
    spec = DatasetSpec("toy", (ModalitySpec("a", "vector", (3,)), ModalitySpec("b", "vector", (2,)),
                               ModalitySpec("c", "vector", (4,))), task="classification", n_classes=3)
    n = 300
    src = MultimodalDataset(spec, {"a": rng.normal(size=(n, 3)), "b": rng.normal(size=(n, 2)),
                                   "c": rng.normal(size=(n, 4))}, y=rng.integers(0, 3, n))
    ds = unpair_for_oom(src, "b", "semi", 0.1, seed=0)
    assert ds.spec.modality_names == ("a", "c", "b")
    tr = ds.split == "train"
    im = ds.mask["a"].numpy() & ds.mask["c"].numpy()
    oom = ds.mask["b"].numpy()
    n_oom = int((tr & oom).sum())
    assert int((tr & im & oom).sum()) == pytest.approx(0.1 * n_oom, abs=3)
    assert bool((im | oom).all())
    assert torch.equal(ds.x["b"][torch.from_numpy(oom)], src.x["b"][torch.from_numpy(oom)])
    un = unpair_for_oom(src, "b", "unsup", seed=0)
    assert int(((un.split == "train") & un.mask["a"].numpy() & un.mask["b"].numpy()).sum()) == 0
    with pytest.raises(DataValidationError, match="not a modality"):
        unpair_for_oom(src, "z")


def test_cox_mfeat_builds():
    ds = build_dataset("cox_mfeat", oom_view="zer", views=[0, 2, 4])
    assert ds.spec.modality_names == ("fou", "kar", "zer")
    assert ds.spec.name == "cox_mfeat"


def test_cox_sim_majority_fraction_default_is_the_balanced_draw_and_shifts_the_oom_prior():
    kw = dict(n_im=2000, n_oom=2000, n_val=100, n_test=1000, seed=4)
    a, b = make_cox_sim(**kw), make_cox_sim(**kw, majority_fraction=None, majority_class=3, majority_rows="oom")
    assert torch.equal(a.y, b.y) and all(torch.equal(a.x[m], b.x[m]) for m in a.x)  # the default draw, bit for bit
    ds = make_cox_sim(**kw, majority_fraction=0.8, majority_class=0, majority_rows="oom")
    im, oom = _roles(ds)
    y = ds.y.numpy()
    for rows in (oom & ~im, ds.split == "test", oom & im):  # OOM-only, test and paired rows follow the prior
        assert abs(float(np.mean(y[rows] == 0)) - 0.8) < 0.05
    im_only = im & ~oom & (ds.split == "train")
    assert abs(float(np.mean(y[im_only] == 0)) - 0.1) < 0.03  # IM-only rows stay uniform
    every = make_cox_sim(**kw, majority_fraction=0.8, majority_class=0)
    assert abs(float(np.mean(every.y.numpy()[_roles(every)[0] & ~_roles(every)[1]] == 0)) - 0.8) < 0.05
    for bad in (dict(majority_fraction=0.05), dict(majority_fraction=1.0), dict(majority_fraction=0.5, majority_class=10),
                dict(majority_fraction=0.5, majority_rows="im")):
        with pytest.raises(DataValidationError):
            make_cox_sim(n_im=50, n_oom=50, n_val=5, n_test=5, **bad)
