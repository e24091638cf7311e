"""mmib.data.physio.eeg_sim: the simulator's EEG, one component at a time (the others set to zero, no subject
variability): the ERP against its closed form, the gamma burst where and when the event is, the state rhythms in
their bands during their trials."""

import numpy as np
import pytest

from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS, EEGFNIRSSimConfig
from mmib.data.physio.eeg_sim import STATE_RHYTHMS, simulate_eeg
from mmib.data.physio.montage import site_positions
from mmib.data.physio.sim_signals import topography

FS = 128.0
CH = ("Fz", "Cz", "Pz", "Oz")
OFF = {"background_uv": 0.0, "eeg_noise_uv": 0.0, "state_uv": 0.0, "erp_uv": 0.0}
TRIALS = {"onset": np.array([10.0, 30.0]), "e": np.array([1, 0]), "k": np.array([0, 1]), "t0": np.array([1.0, 1.0]),
          "G_value": np.array([0.0, 0.0])}


def _eeg(seed=0, trials=TRIALS, gain=1.0, **cfg):
    import mne

    c = EEGFNIRSSimConfig(eeg_channels=CH, eeg_sfreq=FS, subject_variability=0.0, **{**OFF, **cfg})
    raw, params = simulate_eeg(c, np.random.default_rng(seed), 0, 50.0, trials, gain, None,
                               mne.Annotations([], [], []))
    return raw, params, raw.get_data() * 1e6  # µV


def test_erp_is_n1_plus_p3_at_the_event_only():
    raw, _, x = _eeg(erp_uv=20.0, gain=1.5)
    assert raw.ch_names == list(CH) and raw.info["sfreq"] == FS and x.shape == (4, int(50 * FS))
    # closed form: erp_uv * gain * (P3 topography (centre Pz) x Gaussian(300 ms, 80 ms) - 0.6 N1 topography
    # (centre Cz) x Gaussian(100 ms, 30 ms)) on (t0 - 0.2 s, t0 + 1 s) of the e = 1 trial, nothing elsewhere
    pos = site_positions(CH)
    topo_p3, topo_n1 = topography(pos, site_positions(["Pz"])[0]), topography(pos, site_positions(["Cz"])[0])
    tt = np.arange(x.shape[1]) / FS - 11.0
    seg = (tt > -0.2) & (tt < 1.0)
    p3 = np.exp(-((tt[seg] - 0.3) ** 2) / (2 * 0.08**2))
    n1 = np.exp(-((tt[seg] - 0.1) ** 2) / (2 * 0.03**2))
    expected = 30.0 * (topo_p3[:, None] * p3[None, :] - 0.6 * topo_n1[:, None] * n1[None, :])
    np.testing.assert_allclose(x[:, seg], expected, atol=1e-9)
    assert x[CH.index("Pz"), seg].max() == pytest.approx(30.0, rel=1e-3)  # the P3 peak at its centre
    assert np.abs(x[:, ~seg]).max() == 0.0  # the e = 0 trial has no ERP


def test_gamma_burst_scales_with_g_and_sits_after_t0():
    trials = {**TRIALS, "G_value": np.array([8.0, 8.0])}
    _, _, x = _eeg(trials=trials)
    t = np.arange(x.shape[1]) / FS
    fz = x[CH.index("Fz")]
    on = (t >= 11.1) & (t <= 11.6)
    assert np.abs(fz[(t < 11.0 - 1e-9) | (t > 11.7 + 1e-9)]).max() == 0.0  # only the e = 1 trial, around t0
    assert np.std(fz[on]) > 3.0
    p = np.abs(np.fft.rfft(fz[on] - fz[on].mean())) ** 2
    f = np.fft.rfftfreq(on.sum(), 1 / FS)
    assert p[(f >= 28) & (f <= 46)].sum() / p.sum() > 0.85  # 32-42 Hz noise, gated over 0.5 s (2 Hz bins)
    _, _, x2 = _eeg(trials={**TRIALS, "G_value": np.array([4.0, 4.0])})
    np.testing.assert_allclose(x2[CH.index("Fz")], fz / 2, atol=1e-9)  # amplitude proportional to G_value


def test_state_rhythms_follow_the_trial_state():
    _, params, x = _eeg(state_uv=10.0, states=("alpha", "beta"))
    iaf = params["individual_alpha_frequency"]
    assert iaf == 10.0  # no subject variability: the mean individual alpha frequency
    assert params["state_bands"] == {"alpha": (9.0, 11.0), "beta": STATE_RHYTHMS["beta"][0]}
    t = np.arange(x.shape[1]) / FS

    def band_share(ch, lo_t, hi_t, band):
        s = x[CH.index(ch), (t >= lo_t) & (t < hi_t)]
        p = np.abs(np.fft.rfft(s)) ** 2
        f = np.fft.rfftfreq(len(s), 1 / FS)
        return p[(f >= band[0]) & (f <= band[1])].sum() / max(p.sum(), 1e-30)

    # trial 0 (k = 0, alpha, over Oz) gated from onset - 1 s to onset + iti_min - 6 s; trial 1 (beta, over Cz)
    assert band_share("Oz", 10.0, 27.0, EEG_BANDS["alpha"]) > 0.9
    assert band_share("Cz", 30.0, 47.0, EEG_BANDS["beta"]) > 0.95
    assert band_share("Oz", 30.0, 47.0, EEG_BANDS["alpha"]) < 0.05  # alpha is off during the beta trial
    assert band_share("Cz", 10.0, 27.0, EEG_BANDS["beta"]) < 0.05  # and beta during the alpha trial
    assert np.abs(x[:, t < 8.5]).max() == 0.0  # before the first gate opens: nothing


def test_same_generator_same_eeg():
    a = _eeg(seed=3, background_uv=10.0, eeg_noise_uv=1.0)[2]
    b = _eeg(seed=3, background_uv=10.0, eeg_noise_uv=1.0)[2]
    c = _eeg(seed=4, background_uv=10.0, eeg_noise_uv=1.0)[2]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and 5.0 < a.std() < 20.0
