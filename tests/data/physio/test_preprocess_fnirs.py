"""mmib.data.physio.preprocess_fnirs: raw intensities made from known HbO/HbR (the inverse of MNE's Beer-Lambert law)
come back through the pipeline; short-channel regression per wavelength removes each wavelength's own scalp signal;
features of a known response; inputs that cannot work are named."""

import numpy as np
import pytest

from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig
from mmib.data.physio.fnirs_forward import fnirs_raw_info, mbll_forward_matrices
from mmib.data.physio.preprocess_fnirs import (
    FNIRSPipeline,
    fnirs_epochs,
    fnirs_features,
    fnirs_haemoglobin,
    short_channel_regression_per_wavelength,
)
from mmib.data.physio.read_base import PhysioInputError

SF = 10.0
RAW_OFF = FNIRSPipeline(l_freq=None, h_freq=None)


def _hb(n_pairs=2, seconds=120.0, seed=0):
    """(n_pairs, 2, T) HbO/HbR (mol/L): slow random walks of a few µM."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 5e-8, (n_pairs, 2, int(seconds * SF)))
    return np.cumsum(steps, axis=-1)


def _intensity_raw(hb, n_short=0):
    import mne

    cfg = EEGFNIRSSimConfig(n_fnirs_channels=hb.shape[0] - n_short, n_short_channels=n_short, fnirs_sfreq=SF)
    info = fnirs_raw_info(cfg)
    od = np.einsum("pij,pjt->pit", mbll_forward_matrices(info, 6.0), hb).reshape(2 * hb.shape[0], -1)
    return mne.io.RawArray(0.02 * np.exp(-od), info, verbose="error")


def test_pipeline_options_are_checked():
    with pytest.raises(PhysioInputError, match="motion_correction must be 'tddr' or None"):
        FNIRSPipeline(motion_correction="spline")
    with pytest.raises(PhysioInputError, match=r"tmax \(-5.0\) must exceed tmin \(-2.0\)"):
        FNIRSPipeline(tmax=-5.0)
    with pytest.raises(PhysioInputError, match="ppf must be > 0"):
        FNIRSPipeline(ppf=0.0)


def test_haemoglobin_of_intensities_made_from_known_hb():
    hb = _hb()
    out = fnirs_haemoglobin(_intensity_raw(hb), RAW_OFF)
    assert out.get_channel_types() == ["hbo", "hbr", "hbo", "hbr"]
    got = out.get_data().reshape(2, 2, -1)
    # optical density is relative to the mean intensity: each channel comes back up to its mean
    np.testing.assert_allclose(got - got.mean(-1, keepdims=True), hb - hb.mean(-1, keepdims=True), atol=1e-12)
    again = fnirs_haemoglobin(out, RAW_OFF)  # HbO/HbR input passes through
    np.testing.assert_allclose(again.get_data(), out.get_data())


def test_bad_fnirs_inputs_are_named():
    import mne

    raw = _intensity_raw(_hb())
    raw._data[1] = 0.0
    with pytest.raises(PhysioInputError, match="rec.snirf: channel S1_D1 850 holds no positive finite light"):
        fnirs_haemoglobin(raw, RAW_OFF, source="rec.snirf")
    eeg = mne.io.RawArray(np.zeros((1, 100)), mne.create_info(["Cz"], SF, "eeg"), verbose="error")
    with pytest.raises(PhysioInputError, match=r"rec: no fNIRS channels \(types: \['eeg'\]\)"):
        fnirs_haemoglobin(eeg, source="rec")
    no_pos = _intensity_raw(_hb())
    for ch in no_pos.info["chs"]:
        ch["loc"][3:9] = 0.0
    with pytest.raises(PhysioInputError, match="source-detector distances are unknown"):
        fnirs_haemoglobin(no_pos, RAW_OFF, source="rec")
    with pytest.raises(PhysioInputError, match=r"rec: 120 s of data is too short for a 0.01 Hz high-pass \(needs "
                                               r"about 330 s\)"):
        fnirs_haemoglobin(_intensity_raw(_hb()), FNIRSPipeline(), source="rec")


def test_short_channel_regression_removes_each_wavelengths_own_scalp_signal():
    from mne.preprocessing import nirs

    rng = np.random.default_rng(1)
    raw = nirs.optical_density(_intensity_raw(_hb(n_pairs=3), n_short=1), verbose="error")
    n = raw.n_times
    brain = rng.normal(0, 1e-3, (4, n))  # the two long pairs x two wavelengths
    scalp = np.cumsum(rng.normal(0, 1e-3, (2, n)), axis=-1)  # one scalp signal per wavelength
    scalp -= scalp.mean(-1, keepdims=True)
    raw._data[:4] = brain + np.tile(scalp, (2, 1))  # long channels: brain + their wavelength's scalp signal
    raw._data[4:] = scalp  # the short channel (both wavelengths)
    out = short_channel_regression_per_wavelength(raw).get_data()
    resid = out[:4] - brain
    assert np.abs(resid - resid.mean(-1, keepdims=True)).max() < 0.2 * brain.std()
    np.testing.assert_array_equal(out[4:], raw.get_data()[4:])


def test_epochs_and_features_of_a_known_response():
    import mne

    onsets = [20.0, 60.0, 100.0]
    t = np.arange(int(140 * SF)) / SF
    resp = sum(np.exp(-((t - o - 6.0) ** 2) / (2 * 1.5**2)) for o in onsets)  # peak 6 s after each marker
    hb = np.zeros((1, 2, len(t)))
    hb[0, 0], hb[0, 1] = 2e-6 * resp, -0.5e-6 * resp
    raw = _intensity_raw(hb)
    raw.set_annotations(mne.Annotations(onsets, 0.0, ["task"] * 3))
    cfg = FNIRSPipeline(l_freq=None, h_freq=None, tmin=-2.0, tmax=15.0)
    ep = fnirs_epochs(raw, cfg)
    assert len(ep) == 3 and ep.ch_names == ["S1_D1 hbo", "S1_D1 hbr"] and ep.times[-1] == pytest.approx(15.0)
    feats, names = fnirs_features(ep)
    assert names == ["S1_D1 hbo:peak", "S1_D1 hbo:time_to_peak", "S1_D1 hbo:area",
                     "S1_D1 hbr:peak", "S1_D1 hbr:time_to_peak", "S1_D1 hbr:area"]
    np.testing.assert_allclose(feats[:, 0, 0], 2.0, rtol=0.01)  # µM, the HbO maximum
    np.testing.assert_allclose(feats[:, 1, 0], -0.5, rtol=0.01)  # the HbR minimum
    np.testing.assert_allclose(feats[:, :, 1], 6.0, atol=0.11)
    area = 1.5 * np.sqrt(2 * np.pi)  # the Gaussian's integral (its tails outside 0..15 s are negligible)
    np.testing.assert_allclose(feats[:, 0, 2], 2.0 * area, rtol=0.01)
    np.testing.assert_allclose(feats[:, 1, 2], -0.5 * area, rtol=0.01)
    assert fnirs_features(ep, window=(0.0, 4.0))[0][:, 0, 1].max() <= 4.0
    with pytest.raises(PhysioInputError, match="holds fewer than 2 samples"):
        fnirs_features(ep, window=(30.0, 40.0))
