"""mmib.data.physio.preprocess: one recording into paired epochs - an EEG-only recording as arrays, trials paired in
order on a shared clock or by aligned trigger times otherwise (with a warning for trials without a partner), and the
JSON-ready pipeline settings. (Both modalities of a simulated recording: test_clock.py, test_io_roundtrip.py.)"""

import json
import warnings

import numpy as np
import pytest

from mmib.data.physio.preprocess import (
    EEGPipeline,
    FNIRSPipeline,
    PhysioInputError,
    PhysioWarning,
    config_dict,
    pair_trials,
    preprocess_recording,
)

FS = 128.0


def _eeg(onsets, labels, first_samp=0):
    import mne

    rng = np.random.default_rng(0)
    raw = mne.io.RawArray(rng.normal(0, 10e-6, (2, int(40 * FS))), mne.create_info(["Cz", "Pz"], FS, "eeg"),
                          first_samp=first_samp, verbose="error")
    raw.set_annotations(mne.Annotations(onsets, 0.0, labels))
    return raw


def test_eeg_only_recording_to_arrays():
    raw = _eeg([5.0, 12.0, 19.0, 26.0], ["rest", "task", "task", "rest"], first_samp=640)
    cfg = EEGPipeline(tmin=-0.5, tmax=2.0)
    rec = preprocess_recording(eeg=raw, eeg_cfg=cfg, source="sub-01")
    assert list(rec.signals) == ["eeg"] and rec.signals["eeg"].shape == (4, 2, 321)
    assert rec.conditions == ["rest", "task"] and rec.y.tolist() == [0, 1, 1, 0] and rec.y.dtype == np.int64
    np.testing.assert_allclose(rec.onsets, [5.0, 12.0, 19.0, 26.0])  # from the recording's start
    assert rec.rates == {"eeg": FS} and rec.channels == {"eeg": ["Cz", "Pz"]} and rec.alignment is None
    assert rec.features["eeg"].shape == (4, len(rec.feature_names["eeg"])) == (4, 26)
    np.testing.assert_allclose(rec.times["eeg"][[0, -1]], [-0.5, 2.0])
    assert np.abs(rec.signals["eeg"]).max() < 100  # µV, not V
    only_task = preprocess_recording(eeg=raw, eeg_cfg=cfg, conditions=["task"])
    assert only_task.y.tolist() == [0, 0] and only_task.conditions == ["task"]
    with pytest.raises(PhysioInputError, match="sub-01: give an EEG recording, an fNIRS recording or both"):
        preprocess_recording(source="sub-01")


def test_same_clock_pairs_in_order():
    t = np.array([10.0, 20.0, 30.0])
    ia, ib, al = pair_trials(t, [0, 1, 0], t + 0.1, [0, 1, 0])
    assert ia.tolist() == ib.tolist() == [0, 1, 2] and al is None


def test_other_clock_pairs_by_aligned_triggers_and_warns_for_the_unpaired():
    rng = np.random.default_rng(0)
    t_eeg = np.cumsum(rng.uniform(8.0, 14.0, 30))
    y = rng.integers(0, 2, 30)
    t_nirs = 3.0 + (1 + 40e-6) * t_eeg  # a 3 s later start and 40 ppm drift
    keep = np.setdiff1d(np.arange(30), [4, 17])  # two triggers the fNIRS device missed
    with pytest.warns(PhysioWarning, match=r"EEG a.edf and fNIRS b.snirf: 2 of 30 EEG and 0 of 28 fNIRS trials have "
                                           r"no partner after clock alignment \(offset 3.000 s, drift 40.0 ppm\)"):
        ia, ib, al = pair_trials(t_eeg, y, t_nirs[keep], y[keep], "EEG a.edf", "fNIRS b.snirf")
    assert ia.tolist() == keep.tolist() and ib.tolist() == list(range(28))
    assert al["offset_s"] == pytest.approx(3.0, abs=1e-6) and al["drift_ppm"] == pytest.approx(40.0, abs=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ia, ib, al = pair_trials(t_eeg, y, t_nirs, y)  # all paired: no warning
    assert ia.tolist() == ib.tolist() == list(range(30)) and al["n_matched"] == 30


def test_config_dict_is_json_ready():
    d = config_dict(EEGPipeline(bands={"alpha": (8.0, 13.0)}))
    assert type(d["bands"]) is dict and d["bands"] == {"alpha": (8.0, 13.0)}
    assert json.loads(json.dumps(d))["psd_method"] == "welch"
    f = config_dict(FNIRSPipeline(motion_correction="tddr"))
    assert f["motion_correction"] == "tddr" and f["baseline"] == (None, 0.0) and json.dumps(f)
