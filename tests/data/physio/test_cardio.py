"""mmib.data.physio.cardio: simulated cardio-respiratory windows carry the heart and breathing rates they report,
and the window / rate options are checked before anything is read. (pyphysio's real recording in windows:
test_datasets.py.)"""

import numpy as np
import pytest

from mmib.data.physio.cardio import _check_window, _rates, pyphysio_cardio_windows, simulate_cardio_windows
from mmib.data.physio.read_base import PhysioInputError


@pytest.fixture(scope="module")
def sim():
    return simulate_cardio_windows(n_subjects=4, windows_per_subject=4, window_s=16.0, ecg_method="simple", seed=1,
                                   include_eda=True)


def test_layout_rates_and_groups(sim):
    assert list(sim.signals) == ["resp", "ecg", "bvp", "eda"]
    for m, r in {"resp": 16.0, "ecg": 128.0, "bvp": 64.0, "eda": 8.0}.items():
        assert sim.rates[m] == r and sim.signals[m].shape == (16, 1, int(16 * r))
        assert sim.signals[m].dtype == np.float32 and np.isfinite(sim.signals[m]).all()
    assert sim.groups.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert np.all((55 <= sim.heart_rate) & (sim.heart_rate <= 110))
    assert np.all((8 <= sim.breathing_rate) & (sim.breathing_rate <= 24))
    for s in range(4):  # a window's rates lie within ±15 % of the range around its subject's
        hr = sim.heart_rate[sim.groups == s]
        assert np.ptp(hr) <= 0.3 * 55 + 1e-9
    again = simulate_cardio_windows(n_subjects=4, windows_per_subject=4, window_s=16.0, ecg_method="simple", seed=1,
                                    include_eda=True)
    np.testing.assert_array_equal(again.signals["ecg"], sim.signals["ecg"])


def _peak_per_min(x, rate):
    p = np.abs(np.fft.rfft(x - x.mean())) ** 2
    return 60 * np.fft.rfftfreq(len(x), 1 / rate)[1:][np.argmax(p[1:])]


def test_signals_beat_and_breathe_at_the_reported_rates(sim):
    for i in range(16):  # the ECG's beat period (autocorrelation peak) is the reported heart rate's
        ecg = sim.signals["ecg"][i, 0].astype(float) - sim.signals["ecg"][i, 0].mean()
        ac = np.correlate(ecg, ecg, "full")[len(ecg) - 1:]
        lags = np.arange(len(ac)) / 128.0
        sel = (lags >= 60 / 130) & (lags <= 60 / 45)
        assert 60 / lags[sel][np.argmax(ac[sel])] == pytest.approx(sim.heart_rate[i], rel=0.08)
    # BVP and respiration: spectral peaks (3.75 /min bins; simulated breaths vary in length) follow the rates
    bvp = np.array([_peak_per_min(sim.signals["bvp"][i, 0], 64.0) for i in range(16)])
    resp = np.array([_peak_per_min(sim.signals["resp"][i, 0], 16.0) for i in range(16)])
    assert np.median(np.abs(bvp - sim.heart_rate)) < 8.0 and np.corrcoef(bvp, sim.heart_rate)[0, 1] > 0.9
    assert np.median(np.abs(resp - sim.breathing_rate)) < 2.0 and np.corrcoef(resp, sim.breathing_rate)[0, 1] > 0.85


def test_options_are_checked():
    assert _rates({"ecg": 256}, ["ecg", "bvp"]) == {"ecg": 256.0, "bvp": 64.0}
    with pytest.raises(PhysioInputError, match="cardio rates: unknown modality 'ppg'; valid: ecg, resp, bvp, eda"):
        _rates({"ppg": 64}, ["ecg"])
    with pytest.raises(PhysioInputError, match="the rate of 'ecg' must be a whole number of Hz > 0, got 12.5"):
        _rates({"ecg": 12.5}, ["ecg"])
    assert _check_window(2.5, {"ecg": 128.0, "resp": 16.0}) == {"ecg": 320, "resp": 40}
    with pytest.raises(PhysioInputError, match=r"window_s × rate of 'resp' must be a whole number of samples"):
        _check_window(2.1, {"resp": 16.0})
    with pytest.raises(PhysioInputError, match="cardio window_s must be > 0 s"):
        _check_window(0.0, {"resp": 16.0})
    with pytest.raises(PhysioInputError, match="cardio stride_s must be > 0 s"):
        pyphysio_cardio_windows(stride_s=0.0)
    with pytest.raises(PhysioInputError, match=r"cardio block_s \(4.0 s\) must be at least window_s \(8.0 s\)"):
        pyphysio_cardio_windows(block_s=4.0)
    with pytest.raises(PhysioInputError, match="n_subjects and windows_per_subject must be >= 1"):
        simulate_cardio_windows(n_subjects=0)
    with pytest.raises(PhysioInputError, match=r"heart_rate_range must be \(low, high\) with 0 < low <= high"):
        simulate_cardio_windows(heart_rate_range=(90.0, 60.0))
    with pytest.raises(PhysioInputError, match="ecg_method must be 'ecgsyn' or 'simple'"):
        simulate_cardio_windows(ecg_method="fast")
