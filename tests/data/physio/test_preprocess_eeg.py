"""mmib.data.physio.preprocess_eeg: epochs of a synthetic recording with known content - a sine's band power is
A²/2 in its band, an evoked bump is found at its latency and amplitude, options and sampling rates are checked."""

import numpy as np
import pytest

from mmib.data.physio.preprocess_eeg import (
    EEGPipeline,
    eeg_band_powers,
    eeg_epochs,
    eeg_features,
    erp_features,
)
from mmib.data.physio.read_base import PhysioInputError

FS = 128.0
ONSETS = [5.0, 15.0, 25.0, 35.0, 45.0]


def _raw(sfreq=FS, bump_uv=15.0):
    """Fz: 10 Hz sine of 8 µV; Cz: 20 Hz sine of 4 µV; Pz: a Gaussian bump (40 ms) 300 ms after each marker;
    an EOG channel that the pipeline drops."""
    import mne

    t = np.arange(int(60 * sfreq)) / sfreq
    pz = sum(bump_uv * np.exp(-((t - o - 0.3) ** 2) / (2 * 0.04**2)) for o in ONSETS)
    data = np.stack([8 * np.sin(2 * np.pi * 10 * t), 4 * np.sin(2 * np.pi * 20 * t), pz, np.ones_like(t)]) * 1e-6
    raw = mne.io.RawArray(data, mne.create_info(["Fz", "Cz", "Pz", "EOG"], sfreq, ["eeg"] * 3 + ["eog"]),
                          verbose="error")
    raw.set_annotations(mne.Annotations(ONSETS, 0.0, ["a", "b", "a", "b", "a"]))
    return raw


def test_pipeline_options_are_checked():
    with pytest.raises(PhysioInputError, match="psd_method must be 'welch' or 'multitaper'"):
        EEGPipeline(psd_method="fft")
    with pytest.raises(PhysioInputError, match="reference must be 'average' or None"):
        EEGPipeline(reference="Cz")
    with pytest.raises(PhysioInputError, match=r"tmax \(0.0\) must exceed tmin \(0.5\)"):
        EEGPipeline(tmin=0.5, tmax=0.0)
    with pytest.raises(PhysioInputError, match=r"EEG band 'x': expected 0 <= low < high, got \(8, 4\)"):
        EEGPipeline(bands={"x": (8, 4)})


def test_epochs_window_channels_and_rate():
    ep = eeg_epochs(_raw(), EEGPipeline(tmin=-0.5, tmax=2.0), source="rec.edf")
    assert ep.ch_names == ["Fz", "Cz", "Pz"] and len(ep) == 5  # EOG dropped
    assert ep.times[0] == pytest.approx(-0.5) and ep.times[-1] == pytest.approx(2.0)
    assert ep.events[:, 2].tolist() == [1, 2, 1, 2, 1] and ep.event_id == {"a": 1, "b": 2}
    base = ep.get_data()[:, :, ep.times <= 0].mean(-1)
    np.testing.assert_allclose(base, 0.0, atol=1e-18)  # baseline-corrected
    low = eeg_epochs(_raw(), EEGPipeline(tmin=0.0, tmax=1.0, baseline=None, resample=64.0), ["a"])
    assert low.info["sfreq"] == 64.0 and len(low) == 3 and len(low.times) == 64  # 129 samples halved
    with pytest.raises(PhysioInputError, match=r"slow.*sampled at 80.0 Hz, too slow for a band up to 45.0 Hz"):
        eeg_epochs(_raw(sfreq=80.0), source="slow")


@pytest.mark.parametrize("method", ["welch", "multitaper"])
def test_band_power_of_a_sine_is_half_its_squared_amplitude(method):
    cfg = EEGPipeline(tmin=0.0, tmax=4.0, baseline=None, psd_method=method)
    absolute, relative, names = eeg_band_powers(eeg_epochs(_raw(), cfg), cfg)
    assert names == ["delta", "theta", "alpha", "beta", "gamma"] and absolute.shape == (5, 3, 5)
    # both methods in µV² (multitaper with normalization="full": MNE's default "length" is not per Hz)
    np.testing.assert_allclose(absolute[:, 0, 2], 8**2 / 2, rtol=0.05)  # Fz: 10 Hz, 8 µV -> 32 µV² in alpha
    np.testing.assert_allclose(absolute[:, 1, 3], 4**2 / 2, rtol=0.05)  # Cz: 20 Hz, 4 µV -> 8 µV² in beta
    np.testing.assert_allclose(absolute[:, 0, 2] / absolute[:, 1, 3], 4.0, rtol=0.05)  # (8 / 4)²
    assert relative[:, 0, 2].min() > 0.98 and relative[:, 1, 3].min() > 0.98
    np.testing.assert_allclose(relative.sum(-1), 1.0)
    short = EEGPipeline(tmin=0.0, tmax=0.5, baseline=None, bands={"low": (1.0, 1.2), "rest": (2.0, 40.0)})
    with pytest.raises(PhysioInputError, match=r"EEG band 'low' \(1.0-1.2 Hz\) holds no frequency bin"):
        eeg_band_powers(eeg_epochs(_raw(), short), short)


def test_erp_features_find_the_bump_and_features_concatenate():
    cfg = EEGPipeline(tmin=-0.5, tmax=1.5)
    ep = eeg_epochs(_raw(), cfg)
    erp, names = erp_features(ep, cfg)
    assert names == ["erp_peak", "erp_latency", "erp_mean"] and erp.shape == (5, 3, 3)
    np.testing.assert_allclose(erp[:, 2, 1], 0.3, atol=1.5 / FS)  # Pz's peak latency
    np.testing.assert_allclose(erp[:, 2, 0], 15.0, rtol=0.1)  # and amplitude (after the 1-45 Hz band-pass)
    feats, fnames = eeg_features(ep, cfg)
    assert feats.shape == (5, 3 * 13) and len(fnames) == 39
    assert fnames[:6] == ["Fz:log_delta", "Fz:log_theta", "Fz:log_alpha", "Fz:log_beta", "Fz:log_gamma", "Fz:rel_delta"]
    assert fnames[13 * 2 + 11] == "Pz:erp_latency"
    np.testing.assert_allclose(feats[:, 13 * 2 + 11], erp[:, 2, 1])
    absolute, relative, _ = eeg_band_powers(ep, cfg)
    np.testing.assert_allclose(feats[:, 2], np.log10(absolute[:, 0, 2] + 1e-12))
    np.testing.assert_allclose(feats[:, 13 + 5 + 3], relative[:, 1, 3])
