"""mmib.data.physio.tuberlin: the TU Berlin (BBCI toolbox) .mat layouts read directly - units, channel types, the
HbO/HbR variant, optodes from mnt.sd, event codes, and each malformed field named. (The reader-level round trip and
`mmib physio preprocess` on these files are in test_readers.py.)"""

from pathlib import Path

import numpy as np
import pytest

from mmib.data.physio.read_base import PhysioInputError
from mmib.data.physio.tuberlin import _split_sites, _unit_scale, read_tuberlin

FS = 100.0
N = 300


def _save(folder: Path, cnt=None, mrk=None, mnt=None, tail="") -> Path:
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    if cnt is not None:
        savemat(folder / f"cnt{tail}.mat", {"cnt" + tail: cnt})
    if mrk is not None:
        savemat(folder / f"mrk{tail}.mat", {"mrk" + tail: mrk})
    if mnt is not None:
        savemat(folder / f"mnt{tail}.mat", {"mnt" + tail: mnt})
    return folder / f"cnt{tail}.mat"


def _mrk(times_ms=(500.0, 1500.0, 2500.0), classes=(0, 1, 0)):
    y = np.zeros((2, len(classes)))
    y[list(classes), range(len(classes))] = 1.0
    return {"time": np.array(times_ms), "y": y, "className": np.array(["left", "right"], dtype=object)}


def test_split_sites_and_unit_scale():
    sites = {"AF7", "Fp1", "C3", "FC3", "Cz"}
    assert _split_sites("AF7Fp1", sites) == ("AF7", "Fp1")
    assert _split_sites("c3fc3", sites) == ("C3", "FC3")  # case-insensitive, the template's spelling back
    assert _split_sites("C3XX", sites) is None
    p = Path("cnt.mat")
    assert _unit_scale({}, 1e-6, p, "cnt") == 1e-6
    assert _unit_scale({"yUnit": "mV"}, 1e-6, p, "cnt") == 1e-3
    assert _unit_scale({"yUnit": " µV "}, 1.0, p, "cnt") == 1e-6
    with pytest.raises(PhysioInputError, match=r"cnt\.yUnit 'furlong' unknown; expected one of"):
        _unit_scale({"yUnit": "furlong"}, 1e-6, p, "cnt")


def test_eeg_units_channel_types_and_markers(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3))
    cnt = {"x": x, "fs": FS, "clab": np.array(["Cz", "EOGv", "ECG"], dtype=object), "yUnit": "mV"}
    path = _save(tmp_path, cnt, _mrk(), tail="_imag")  # cnt_<task>.mat with its mrk_<task>.mat
    raw = read_tuberlin(path, "eeg")
    assert raw.get_channel_types() == ["eeg", "eog", "ecg"] and raw.info["sfreq"] == FS
    np.testing.assert_allclose(raw.get_data(), x.T * 1e-3, rtol=1e-12)  # mV -> V
    assert list(raw.annotations.description) == ["left", "right", "left"]
    np.testing.assert_allclose(raw.annotations.onset, [0.5, 1.5, 2.5])
    assert np.isfinite(raw.info["chs"][0]["loc"][:3]).all() and np.abs(raw.info["chs"][0]["loc"][:3]).max() > 0


def test_event_codes_when_there_are_no_class_names(tmp_path):
    cnt = {"x": np.zeros((N, 1)), "fs": FS, "clab": "Cz"}
    path = _save(tmp_path, cnt, {"time": np.array([100.0, 900.0]), "event": {"desc": np.array([16, 32])}})
    assert list(read_tuberlin(path, "eeg").annotations.description) == ["16", "32"]


def test_nirs_hbo_hbr_and_optodes_from_mnt(tmp_path):
    from mne.preprocessing.nirs import source_detector_distances

    rng = np.random.default_rng(1)
    xo, xd = rng.normal(size=(N, 2)), rng.normal(size=(N, 2))
    lab = np.array(["ch1oxy", "ch2oxy"], dtype=object)
    cnt = {"oxy": {"x": xo, "fs": FS, "clab": lab}, "deoxy": {"x": xd, "fs": FS, "clab": lab}}
    mnt = {"sd": np.array([[1, 1], [2, 1]]), "source": {"clab": np.array(["C3", "C4"], dtype=object)},
           "detector": {"clab": np.array(["Cz"], dtype=object)}}
    raw = read_tuberlin(_save(tmp_path, cnt, _mrk(), mnt), "nirs")
    assert raw.ch_names == ["S1_D1 hbo", "S1_D1 hbr", "S2_D1 hbo", "S2_D1 hbr"]
    assert raw.get_channel_types() == ["hbo", "hbr", "hbo", "hbr"]
    np.testing.assert_allclose(raw.get_data()[0::2], xo.T * 1e-3)  # mmol/L -> mol/L
    np.testing.assert_allclose(raw.get_data()[1::2], xd.T * 1e-3)
    d = source_detector_distances(raw.info)
    assert np.all((d > 0.03) & (d < 0.09)), d  # C3-Cz and C4-Cz


def test_sessions_and_malformed_fields_are_named(tmp_path):
    cnt = {"x": np.zeros((N, 2)), "fs": FS, "clab": np.array(["Cz", "Pz"], dtype=object)}
    with pytest.raises(PhysioInputError, match="expected the continuous-data file cnt.mat"):
        read_tuberlin(tmp_path / "data.mat", "eeg")
    path = _save(tmp_path / "a", cnt, {"time": np.array([100.0, 200.0]), "y": np.ones((2, 2)),
                                       "className": np.array(["l", "r"], dtype=object)})
    assert list(read_tuberlin(path, "eeg").annotations.description) == ["l", "l"]  # a tie: the first class
    bad_y = _save(tmp_path / "b", cnt, {"time": np.array([100.0, 200.0]), "y": np.ones((2, 3)),
                                        "className": np.array(["l", "r"], dtype=object)})
    with pytest.raises(PhysioInputError, match=r"mrk\.y has shape \(2, 3\), expected \(2 classes, 2 markers\)"):
        read_tuberlin(bad_y, "eeg")
    neg = _save(tmp_path / "c", cnt, {"time": np.array([-5.0]), "event": {"desc": np.array([1])}})
    with pytest.raises(PhysioInputError, match="mrk.time must hold one non-negative time"):
        read_tuberlin(neg, "eeg")
    shape = _save(tmp_path / "d", {**cnt, "x": np.zeros((N, 3))}, _mrk())
    with pytest.raises(PhysioInputError, match=r"cnt\.x has shape \(300, 3\), expected \(samples, 2 channels"):
        read_tuberlin(shape, "eeg")
    nofs = _save(tmp_path / "e", {"x": np.zeros((N, 1)), "clab": "Cz"}, _mrk())
    with pytest.raises(PhysioInputError, match=r"cnt has no field 'fs' \(fields: x, clab\)"):
        read_tuberlin(nofs, "eeg")
    two = np.empty((1, 2), dtype=object)
    two[0, 0], two[0, 1] = cnt, cnt
    one_mrk = _save(tmp_path / "f", two, _mrk())
    with pytest.raises(PhysioInputError, match="1 marker sessions for 2 data sessions"):
        read_tuberlin(one_mrk, "eeg")


@pytest.mark.parametrize("times, classes, expected", [((700.0,), (1,), ["right"]),  # one marker: y (2, 1) squeezed
                                                      ((100.0, 900.0), (0, 0), ["left", "left"])])
def test_squeezed_marker_matrices(tmp_path, times, classes, expected):
    """pymatreader squeezes mrk.y: a single marker's (classes, 1) column and a single class's (1, markers) row
    both read back."""
    x = np.random.default_rng(1).normal(size=(N, 1))
    cnt = {"x": x, "fs": FS, "clab": np.array(["Cz"], dtype=object)}
    mrk = _mrk(times, classes)
    if len(set(classes)) == 1 and len(classes) > 1:  # a single class
        mrk = {"time": np.array(times), "y": np.ones((1, len(times))), "className": np.array(["left"], dtype=object)}
    raw = read_tuberlin(_save(tmp_path, cnt, mrk), "eeg")
    assert list(raw.annotations.description) == expected
    np.testing.assert_allclose(raw.annotations.onset, np.array(times) / 1000.0)
