"""MIMIC im.pk: static + time series, mortality and ICD-9 tasks, MultiBench's seeded split, cleaning."""

import pickle
import random

import numpy as np
import pytest

from mmib.data.dataset import DataValidationError
from mmib.data.loaders._common import DataFileNotFoundError
from mmib.data.loaders.mimic import load_mimic, mimic_split

N = 50


def _data(rng):
    ts = rng.normal(size=(N, 24, 12))
    ts[0, 0, 0] = np.inf
    ts[1, 2, 3] = np.nan
    st = rng.normal(size=(N, 5))
    st[2, 1] = -np.inf
    adm = np.zeros((N, 6))
    for i in range(N):
        k = i % 7
        if 1 <= k <= 5:
            adm[i, k] = 1
            if k < 5:
                adm[i, k + 1] = 1  # the first positive column wins
    return {"ep_tdata": ts, "adm_features_all": st, "adm_labels_all": adm,
            "y_icd9": (rng.random((N, 20)) > 0.5).astype(np.int64)}  # fmt: skip


@pytest.fixture
def file(tmp_path):
    data = _data(np.random.default_rng(0))
    p = tmp_path / "im.pk"
    with open(p, "wb") as f:
        pickle.dump(data, f)
    return p, data


def test_mortality_and_cleaning(file):
    p, data = file
    ds = load_mimic(path=str(p))
    assert ds.spec.modality("timeseries").shape == (24, 12) and ds.spec.modality("static").shape == (5,)
    assert ds.spec.n_classes == 6
    want = [(i % 7) if 1 <= i % 7 <= 5 else 0 for i in range(N)]
    assert ds.y.tolist() == want
    assert float(ds.x["timeseries"][0, 0, 0]) == 0.0 and float(ds.x["timeseries"][1, 2, 3]) == 0.0
    assert float(ds.x["static"][2, 1]) == 0.0
    np.testing.assert_allclose(ds.x["static"][3].numpy(), data["adm_features_all"][3], rtol=1e-6)


def test_icd9_task_and_split_matches_multibench(file):
    p, data = file
    ds = load_mimic(path=str(p), task="icd9_7", modalities=["static"])
    assert ds.spec.modality_names == ("static",)
    assert ds.y.tolist() == data["y_icd9"][:, 7].tolist() and ds.spec.n_classes == 2
    assert load_mimic(path=str(p), task=1).y.tolist() == data["y_icd9"][:, 1].tolist()
    # MultiBench: random.seed(10); random.shuffle(datasets); valid [:le//10], test [le//10:le//5], train [le//5:]
    items = list(range(N))
    random.seed(10)
    random.shuffle(items)
    assert sorted(np.flatnonzero(ds.split == "val")) == sorted(items[: N // 10])
    assert sorted(np.flatnonzero(ds.split == "test")) == sorted(items[N // 10 : N // 5])
    assert (mimic_split(N, 3) != mimic_split(N, 10)).any()


def test_malformed(file, tmp_path):
    p, data = file
    for key, value, pattern in (
        ("adm_features_all", data["adm_features_all"][:-1], r"key 'adm_features_all': expected shape \(50, N\)"),
        ("ep_tdata", data["ep_tdata"][:, :, 0], r"key 'ep_tdata': expected shape \(N, N, N\)"),
        ("adm_labels_all", data["adm_labels_all"][:, :3], r"key 'adm_labels_all': expected shape \(50, >= 6\)"),
        ("ep_tdata", None, r"missing key 'ep_tdata'"),
    ):
        bad = dict(data)
        if value is None:
            del bad[key]
        else:
            bad[key] = value
        with open(p, "wb") as f:
            pickle.dump(bad, f)
        with pytest.raises(DataValidationError, match=pattern) as e:
            load_mimic(path=str(p))
        assert str(p) in str(e.value)
    with pytest.raises(DataValidationError, match="icd9_K"):
        load_mimic(path=str(p), task="icd9_25")
    with pytest.raises(DataFileNotFoundError, match=r"im\.pk.*MMIB_DATA"):
        load_mimic()


@pytest.mark.parametrize(
    "key, value, pattern",
    [
        ("ep_tdata", np.full((N, 24, 12), "x"),
         r"key 'ep_tdata': expected a numeric array of shape \(N, N, N\), got ndarray of shape \(50, 24, 12\) and dtype <U1"),
        ("adm_labels_all", np.full((N, 6), "dead"), r"key 'adm_labels_all': expected a numeric array.*dtype <U4"),
        ("adm_features_all", {"age": np.zeros(N)}, r"key 'adm_features_all': expected a numeric array, got a dict \(keys: age\)"),
        ("y_icd9", np.zeros((N, 20), np.complex64), r"key 'y_icd9': expected a numeric array.*dtype complex64"),
    ],
    ids=["string-timeseries", "string-labels", "dict-static", "complex-icd9"],
)
def test_wrong_type(file, key, value, pattern):
    p, data = file
    with open(p, "wb") as f:
        pickle.dump({**data, key: value}, f)
    with pytest.raises(DataValidationError, match=pattern) as e:
        load_mimic(path=str(p), task="icd9_7" if key == "y_icd9" else "mortality")
    assert str(e.value).startswith(f"{p}: ")
