"""WESAD subject pickles (protocol 2, read with latin1 as for the Python-2 originals): windows, labels, subjects."""

import pickle

import numpy as np
import pytest

from mmib.data.datamodule import split_indices
from mmib.data.dataset import DataValidationError
from mmib.data.loaders._common import DataFileNotFoundError
from mmib.data.loaders.wesad import load_wesad

DUR = 40  # seconds per subject
SEGMENTS = [(0, 2), (1, 11), (2, 21), (3, 28), (4, 33), (0, 40)]  # (label, end second)


def _subject(num):
    n = DUR * 700
    t = np.arange(n) / 700.0
    label = np.zeros(n, dtype=np.int32)
    start = 0
    for lab, end in SEGMENTS:
        label[start : end * 700] = lab
        start = end * 700
    tw = np.arange(DUR * 64) / 64.0
    return {
        "subject": f"S{num}",
        "label": label,
        "signal": {
            "chest": {
                "ACC": np.stack([t, -t, 2 * t], 1),
                "ECG": (np.sin(t) + num).reshape(-1, 1),
                "EMG": np.zeros((n, 1)),
                "EDA": np.ones((n, 1)),
                "Temp": np.full((n, 1), 33.0, dtype=np.float32),
                "Resp": t.reshape(-1, 1),
            },
            "wrist": {
                "ACC": np.zeros((DUR * 32, 3)),
                "BVP": tw.reshape(-1, 1),
                "EDA": np.ones((DUR * 4, 1)),
                "TEMP": np.ones((DUR * 4, 1)),
            },
        },
    }


def _write(root, num, d):
    (root / f"S{num}").mkdir(parents=True, exist_ok=True)
    with open(root / f"S{num}" / f"S{num}.pkl", "wb") as f:
        pickle.dump(d, f, protocol=2)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "WESAD"
    for num in (2, 3, 5, 7):
        _write(r, num, _subject(num))
    return r


def _expected(win_s, step_s, keep):
    lab = _subject(2)["label"]
    win, step = int(win_s * 700), int(step_s * 700)
    out = []
    for s in range(0, len(lab) - win + 1, step):
        w = lab[s : s + win]
        if (w == w[0]).all() and w[0] in keep:
            out.append((s, keep.index(int(w[0]))))
    return out


def test_windows_labels_and_sync(root):
    ds = load_wesad(path=str(root), step_s=1.0)
    assert ds.spec.modality_names == ("resp", "ecg", "bvp")
    assert ds.spec.modality("resp").shape == (1, 3500) and ds.spec.modality("bvp").shape == (1, 320)
    assert ds.spec.modality("bvp").rate == 64.0 and ds.spec.n_classes == 3
    exp = _expected(5, 1, [1, 2, 3])
    assert len(ds) == 4 * len(exp)
    assert ds.y[: len(exp)].tolist() == [c for _, c in exp]
    assert ds.groups.tolist() == [n for n in (2, 3, 5, 7) for _ in exp]
    for row, (s, _) in enumerate(exp):  # chest and wrist windows start at the same time
        assert float(ds.x["resp"][row, 0, 0]) == pytest.approx(s / 700, abs=1e-4)
        assert float(ds.x["bvp"][row, 0, 0]) == pytest.approx(s / 700, abs=1 / 64)
        assert float(ds.x["resp"][row, 0, -1]) == pytest.approx((s + 3499) / 700, abs=1e-4)


def test_subject_wise_split_and_options(root):
    ds = load_wesad(path=str(root), modalities=["chest_acc", "wrist_eda", "chest_temp"], window_s=2.0,
                    labels=(2, 1), subjects=["S2", 3, "S5"])  # fmt: skip
    assert ds.spec.modality("chest_acc").shape == (3, 1400) and ds.spec.modality("wrist_eda").shape == (1, 8)
    exp = _expected(2, 2, [2, 1])
    assert len(ds) == 3 * len(exp) and ds.y[: len(exp)].tolist() == [c for _, c in exp]
    parts = split_indices(ds, val_fraction=0.34, test_fraction=0.34, seed=0)
    groups = [set(ds.groups[v].tolist()) for v in parts.values()]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 3
    ret = load_wesad(path=str(root), task="retrieval")
    assert ret.spec.task == "none" and ret.y is None


def test_malformed_subject(root):
    d = _subject(3)
    del d["signal"]["wrist"]["BVP"]
    _write(root, 3, d)
    with pytest.raises(DataValidationError, match=r"S3\.pkl: missing key 'signal/wrist/BVP'"):
        load_wesad(path=str(root))
    d = _subject(3)
    d["signal"]["chest"]["ECG"] = d["signal"]["chest"]["ECG"][:-5]
    _write(root, 3, d)
    with pytest.raises(DataValidationError, match=r"S3\.pkl: key 'signal/chest/ECG': expected 28000 samples"):
        load_wesad(path=str(root))
    d = _subject(3)
    d["signal"]["chest"]["Resp"] = np.zeros((DUR * 700, 2))
    _write(root, 3, d)
    with pytest.raises(DataValidationError, match=r"key 'signal/chest/Resp': expected shape \(N, 1\)"):
        load_wesad(path=str(root))
    d = _subject(3)
    d["label"] = "baseline"
    _write(root, 3, d)
    with pytest.raises(DataValidationError, match=r"key 'label': expected a numeric array"):
        load_wesad(path=str(root))


def test_missing_and_bad_options(root, tmp_path, monkeypatch):
    with pytest.raises(DataFileNotFoundError, match="WESAD"):
        load_wesad()
    monkeypatch.setenv("MMIB_DATA", str(tmp_path))
    assert len(load_wesad(subjects=[2])) > 0  # $MMIB_DATA/WESAD
    with pytest.raises(DataValidationError, match="S4 requested"):
        load_wesad(subjects=[4])
    with pytest.raises(DataValidationError, match="labels"):
        load_wesad(labels=(1, 9))
    with pytest.raises(DataValidationError, match="unknown modality 'eeg'"):
        load_wesad(modalities=["eeg"])
