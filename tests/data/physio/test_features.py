"""Time-resolved hand-made EEG + fNIRS features (mmib.data.physio.features) on signals with known latencies."""

import numpy as np
import pytest

from mmib.data.physio import features as F
from mmib.errors import MMIBError

pytest.importorskip("mne")
pytest.importorskip("nilearn")


def _fnirs_epochs(delays, amps, fs=10.0, noise=0.0, filtered=True, seed=0):
    """Continuous HbO with a 2 s block response at marker + delay (the simulator's nilearn HRF), band-passed over
    the whole record like the pipeline, then cut into -2..18 s epochs and baseline-corrected on [-2, 0]: an
    independent path from the feature's template construction (which filters one padded response)."""
    import mne

    from mmib.data.physio.fnirs_forward import hrf_response

    markers = 60.0 + 30.0 * np.arange(len(delays))
    times = np.arange(0.0, markers[-1] + 400.0, 1.0 / fs)
    x = hrf_response(times, markers + np.asarray(delays), amps, 2.0)
    if filtered:
        x = mne.filter.filter_data(x[None, :], fs, 0.01, 0.1, l_trans_bandwidth=0.01, h_trans_bandwidth=0.05,
                                   verbose="error")[0]
    rel = np.arange(-2.0, 18.0 + 1e-9, 1.0 / fs)
    ep = np.stack([np.interp(m + rel, times, x) for m in markers])
    ep -= ep[:, rel <= 0].mean(axis=1, keepdims=True)
    ep += noise * np.random.default_rng(seed).standard_normal(ep.shape)
    return ep, rel


def test_fitted_hrf_onset_recovers_the_delay():
    delays = np.array([0.5, 1.3, 2.0, 2.7, 3.4, 4.6, 6.1])
    ep, t = _fnirs_epochs(delays, np.full(len(delays), 2.0))
    fit = F.fit_hrf_onset(ep, t)
    assert fit.onset == pytest.approx(delays, abs=0.1)
    assert np.all(fit.r2 > 0.95)
    # the amplitude scales with the response (a response twice as large: twice the scale, same onset)
    ep2, _ = _fnirs_epochs(delays, np.full(len(delays), 4.0))
    fit2 = F.fit_hrf_onset(ep2, t)
    assert fit2.amplitude == pytest.approx(2 * fit.amplitude, rel=1e-6)
    assert fit2.onset == pytest.approx(fit.onset)


def test_fitted_hrf_onset_under_noise_and_for_a_dip():
    rng = np.random.default_rng(1)
    delays = rng.uniform(1.0, 5.0, 40)
    ep, t = _fnirs_epochs(delays, np.full(len(delays), 2.0), noise=0.2, seed=2)
    fit = F.fit_hrf_onset(ep, t)
    err = fit.onset - delays
    assert np.sqrt(np.mean(err ** 2)) < 0.35 and abs(err.mean()) < 0.15
    # HbR dips: sign -1 finds the same onsets with a negative scale; a positive response explains them worse
    neg = F.fit_hrf_onset(-ep, t, sign=-1.0)
    assert neg.onset == pytest.approx(fit.onset) and np.all(neg.amplitude < 0)
    assert np.all(F.fit_hrf_onset(-ep, t, sign=1.0).r2 < neg.r2)
    # without the band-pass in the data, the unfiltered templates recover the delay too
    raw, t = _fnirs_epochs(delays[:5], np.ones(5), filtered=False)
    assert F.fit_hrf_onset(raw, t, band=None).onset == pytest.approx(delays[:5], abs=0.1)


def test_channel_weighted_time_to_peak():
    t = np.arange(-2.0, 18.0 + 1e-9, 0.1)
    bump = lambda c, a: a * np.exp(-((t - c) ** 2) / (2 * 1.5 ** 2))  # noqa: E731
    # channel 0 peaks at 6 s (amplitude 3), channel 1 at 8 s (amplitude 1), channel 2 only dips (weight 0)
    y = np.stack([np.stack([bump(6.0, 3.0), bump(8.0, 1.0), -bump(4.0, 2.0)])])
    lat, peak = F.weighted_time_to_peak(y, t, (0.0, 18.0), sd_s=0.3)
    assert lat[0] == pytest.approx((3 * 6.0 + 1 * 8.0) / 4, abs=0.05)
    assert peak[0] == pytest.approx((9 + 1) / 4, rel=0.02)


def _eeg_background(n, fs=128.0, dur=4.5, seed=0):
    rng = np.random.default_rng(seed)
    return 0.5 * rng.standard_normal((n, int(dur * fs) + 1))


def test_gamma_burst_shows_in_its_envelope_window():
    fs, tmin = 128.0, -0.5
    x = _eeg_background(6)
    t = tmin + np.arange(x.shape[1]) / fs
    starts = np.array([0.6, 1.0, 1.5, 2.0, 2.5, 3.0])
    amps = np.array([4.0, 10.0, 4.0, 10.0, 4.0, 10.0])
    for i, (s, a) in enumerate(zip(starts, amps)):
        on = (t >= s) & (t < s + 0.5)
        x[i, on] += a * np.sin(2 * np.pi * 37.0 * t[on])
    env = F.band_envelope(x, fs, (30.0, 45.0), smooth_s=0.1)
    amp, lat = F.envelope_peak(env, t, (0.2, 3.6))
    assert np.all((lat >= starts) & (lat <= starts + 0.5))  # on the burst's plateau (a 0.5 s box)
    assert amp[amps == 10].min() > 1.8 * amp[amps == 4].max()  # the level G shows in the peak
    wm, centres = F.window_means(env, t, 0.0, 4.0, 0.25)
    assert centres[0] == pytest.approx(0.125) and wm.shape == (6, 16)
    for i, s in enumerate(starts):  # the largest window mean lies inside the burst
        assert s - 0.125 <= centres[np.argmax(wm[i])] <= s + 0.5 + 0.125
    # an envelope of a band the burst is not in stays flat
    alpha = F.band_envelope(x, fs, (8.0, 13.0))
    assert alpha.max() < 0.3 * env.max()


def test_erp_peak_latency_and_sign():
    fs = 128.0
    x = _eeg_background(3, seed=1)
    t = -0.5 + np.arange(x.shape[1]) / fs
    lats = np.array([0.8, 1.7, 2.6])
    for i, c in enumerate(lats):
        x[i] += 20.0 * np.exp(-((t - c) ** 2) / (2 * 0.08 ** 2)) - 12.0 * np.exp(-((t - c + 0.2) ** 2) / (2 * 0.03 ** 2))
    amp, lat = F.erp_peak(x, fs, t, (0.2, 3.6), 1.0)
    assert lat == pytest.approx(lats, abs=0.01) and np.all(amp > 15)
    namp, nlat = F.erp_peak(x, fs, t, (0.2, 3.6), -1.0, sd_s=0.01)
    assert nlat == pytest.approx(lats - 0.2, abs=0.01) and np.all(namp < -8)


def test_feature_groups_shapes_and_bad_input():
    from mmib.data.physio.montage import DEFAULT_EEG_CHANNELS

    n = 4
    rng = np.random.default_rng(0)
    eeg = rng.standard_normal((n, len(DEFAULT_EEG_CHANNELS), 577))
    pairs = [f"S{i}_D{i} {k}" for i in range(1, 5) for k in ("hbo", "hbr")]
    fn, _ = _fnirs_epochs([1.0, 2.0, 3.0, 4.0], np.full(4, 2.0))
    fnirs = np.repeat(fn[:, None, :], len(pairs), axis=1)
    fnirs[:, 1::2] *= -0.3
    g = F.eeg_fnirs_feature_groups(eeg, fnirs, DEFAULT_EEG_CHANNELS, pairs, 128.0, 10.0)
    assert set(g) == {"eeg_band_power", "eeg_gain_reference", "eeg_gamma_windows", "eeg_gamma_peak", "eeg_erp", "eeg_latency",
                      "fnirs_amplitude", "fnirs_latency", "fnirs_windows"}
    assert all(v.shape[0] == n and np.isfinite(v).all() for v in g.values())
    assert g["eeg_band_power"].shape[1] == 5 * len(DEFAULT_EEG_CHANNELS)
    assert g["fnirs_latency"][:, 0] == pytest.approx([1.0, 2.0, 3.0, 4.0], abs=0.1)  # HbO onset
    assert g["fnirs_latency"][:, 1] == pytest.approx([1.0, 2.0, 3.0, 4.0], abs=0.1)  # HbR dip onset
    with pytest.raises(MMIBError, match="gamma site 'Fz'"):
        F.eeg_fnirs_feature_groups(eeg, fnirs, [f"E{i}" for i in range(16)], pairs, 128.0, 10.0)
    with pytest.raises(MMIBError, match="hbo"):
        F.eeg_fnirs_feature_groups(eeg, fnirs, DEFAULT_EEG_CHANNELS, [f"c{i}" for i in range(8)], 128.0, 10.0)
    with pytest.raises(MMIBError, match="EEG epochs but"):
        F.eeg_fnirs_feature_groups(eeg[:2], fnirs, DEFAULT_EEG_CHANNELS, pairs, 128.0, 10.0)
    with pytest.raises(MMIBError, match="window"):
        F.envelope_peak(np.ones((2, 10)), np.arange(10.0), (20.0, 30.0))
    with pytest.raises(MMIBError, match="Nyquist"):
        F.band_envelope(eeg, 128.0, (30.0, 80.0))
    with pytest.raises(MMIBError, match="NaN"):
        F.band_envelope(np.full((2, 100), np.nan), 128.0, (8.0, 13.0))
