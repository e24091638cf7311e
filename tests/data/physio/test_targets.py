"""mmib.data.physio.targets: the rus reconstruction targets against an independent float64 numpy reference
(windowed band powers, their channel-mean envelope and their peak), the dispatch, the batch z-scoring and the target
dimensions."""

import math

import numpy as np
import pytest
import torch

from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS
from mmib.data.physio.targets import (
    ENVELOPE_WINDOW_S,
    band_envelope_targets,
    band_peak_targets,
    band_power_targets,
    chromophore_groups,
    hemodynamic_targets,
    reconstruction_targets,
    require_rate,
    target_dim,
    zscore_batch,
)
from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError, UnknownNameError

RATE = 128.0
FNIRS_CH = tuple(f"S{i}_D{i} {c}" for i in range(1, 4) for c in ("hbo", "hbr"))


def _windowed_reference(x: np.ndarray, rate: float, window_s: float) -> np.ndarray:
    """(N, C, W, B) band powers, one window at a time with an explicit DFT sum (no FFT)."""
    n, c, t = x.shape
    win = int(round(window_s * rate))
    k = np.arange(win // 2 + 1)
    freqs = k * rate / win
    dft = np.exp(-2j * np.pi * np.outer(k, np.arange(win)) / win)  # (F, L)
    out = np.zeros((n, c, t // win, len(EEG_BANDS)))
    for w in range(t // win):
        seg = x[..., w * win:(w + 1) * win]
        seg = seg - seg.mean(-1, keepdims=True)
        p = np.abs(seg @ dft.T) ** 2
        for b, (lo, hi) in enumerate(EEG_BANDS.values()):
            out[:, :, w, b] = p[..., (freqs >= lo) & (freqs < hi)].sum(-1)
    return out


def test_envelope_and_peak_match_the_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 300))  # 4.7 windows of 64 samples: the remainder is dropped
    ref = _windowed_reference(x, RATE, ENVELOPE_WINDOW_S)
    env = band_envelope_targets(torch.from_numpy(x), RATE).numpy()
    np.testing.assert_allclose(env, np.log(ref.mean(1) + 1e-12).reshape(3, -1), rtol=1e-10)  # window-major
    peak = band_peak_targets(torch.from_numpy(x), RATE).numpy()
    np.testing.assert_allclose(peak, np.log(ref.max(axis=(1, 2)) + 1e-12), rtol=1e-10)


def test_a_burst_sets_its_window_and_band():
    t = np.arange(256) / RATE
    x = np.zeros((1, 3, 256))
    x[0, 1] = np.where((t >= 1.0) & (t < 1.5), np.sin(2 * np.pi * 40.0 * t), 0.0)  # gamma in window 2, channel 1
    env = band_envelope_targets(torch.from_numpy(x), RATE).numpy().reshape(4, 5)
    assert np.unravel_index(np.argmax(env), env.shape) == (2, 4)
    bp = band_power_targets(torch.from_numpy(x), RATE).numpy()[0]
    assert np.argmax(bp) == 4 and np.exp(bp).sum() == pytest.approx(1.0, rel=1e-6)  # log relative powers


def test_errors_name_shape_rate_and_window():
    with pytest.raises(MMIBError, match=r"band-envelope targets need a signal batch \(N, C, T\), got shape \(2, 64\)"):
        band_envelope_targets(torch.zeros(2, 64), RATE)
    with pytest.raises(MMIBError, match=r"band-peak targets: a 0.5 s window at 128.0 Hz is 64 samples, the epoch "
                                        "has 40"):
        band_peak_targets(torch.zeros(1, 2, 40), RATE)
    with pytest.raises(MMIBError, match=r"band 'delta' \(1.0–4.0 Hz\) holds no FFT bin"):
        band_power_targets(torch.zeros(1, 2, 16), RATE)  # 8 Hz resolution
    with pytest.raises(MMIBError, match=r"modality 'eeg': the test needs its sampling rate"):
        require_rate(ModalitySpec("eeg", "signal", (2, 64)), "the test")
    assert require_rate(ModalitySpec("eeg", "signal", (2, 64), rate=250), "x") == 250.0


def test_zscore_batch():
    t = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    z = zscore_batch(t)
    torch.testing.assert_close(z[:, 0], torch.tensor([-1.0, 0.0, 1.0]))
    assert float(z[:, 1].abs().max()) == 0.0  # a constant column stays finite (zero)
    torch.testing.assert_close(zscore_batch(torch.tensor([[2.0, 3.0]])), torch.zeros(1, 2))  # one row: centred


@pytest.mark.parametrize("kind", ["band_power", "band_envelope", "band_envelope_peak", "hemodynamic", "input"])
def test_reconstruction_targets_have_target_dim_columns(kind):
    ch = ("S1_D1 hbo", "S1_D1 hbr", "S2_D2 hbo", "S2_D2 hbr")
    ms = ModalitySpec("m", "signal", (4, 300), rate=RATE, channels=ch)
    x = torch.randn(6, 4, 300, dtype=torch.float64)
    out = reconstruction_targets(kind, x, ms)
    assert out.shape == (6, target_dim(kind, ms)) and not out.requires_grad
    if kind != "band_envelope_peak":
        torch.testing.assert_close(out.mean(0), torch.zeros(out.shape[1], dtype=out.dtype), atol=1e-10, rtol=0)
    else:  # the peak block is weighted by sqrt(W) so that both blocks weigh equally
        w = 300 // 64
        env, peak = out[:, : 5 * w], out[:, 5 * w:]
        torch.testing.assert_close(peak.std(0), torch.full((5,), math.sqrt(w), dtype=out.dtype))
        torch.testing.assert_close(env.std(0), torch.ones(5 * w, dtype=out.dtype))
    assert target_dim("none", ms) == 0


def test_reconstruction_targets_check_the_modality():
    vec = ModalitySpec("v", "vector", (7,))
    for kind in ("band_power", "band_envelope", "band_envelope_peak", "hemodynamic"):
        with pytest.raises(MMIBError, match=rf"modality 'v': target '{kind}' needs a signal \(C, T\), it is a vector"):
            reconstruction_targets(kind, torch.randn(4, 7), vec)
    with pytest.raises(UnknownNameError, match=r"unknown reconstruction target 'band_pwr'; did you mean 'band_power'"):
        reconstruction_targets("band_pwr", torch.randn(4, 7), vec)
    with pytest.raises(MMIBError, match="needs its sampling rate"):
        reconstruction_targets("band_power", torch.randn(4, 2, 64), ModalitySpec("e", "signal", (2, 64)))


def test_band_power_targets_match_numpy_periodogram():
    rate, t = 128.0, 256
    tt = np.arange(t) / rate
    x = np.stack([np.sin(2 * np.pi * 10 * tt) + 0.3 * np.sin(2 * np.pi * 20 * tt),
                  0.5 * np.sin(2 * np.pi * 35 * tt) + np.random.default_rng(0).normal(0, 0.1, t)])[None]
    got = band_power_targets(torch.tensor(x, dtype=torch.float64), rate).numpy()[0]
    f = np.fft.rfftfreq(t, 1 / rate)
    p = (np.abs(np.fft.rfft(x[0] - x[0].mean(-1, keepdims=True), axis=-1)) ** 2).mean(0)
    bp = np.array([p[(f >= lo) & (f < hi)].sum() for lo, hi in EEG_BANDS.values()])
    np.testing.assert_allclose(got, np.log(bp / bp.sum() + 1e-12), rtol=1e-6, atol=1e-6)
    assert list(EEG_BANDS)[int(np.argmax(got))] == "alpha"


def test_hemodynamic_targets_and_chromophore_groups():
    assert chromophore_groups(ModalitySpec("fnirs", "signal", (6, 60), rate=10.0, channels=FNIRS_CH)) == [[0, 2, 4], [1, 3, 5]]
    plain = ModalitySpec("f", "signal", (3, 10), rate=10.0)
    assert chromophore_groups(plain) == [[0, 1, 2]]
    x = torch.randn(5, 6, 60, dtype=torch.float64)
    got = hemodynamic_targets(x, [[0, 2, 4], [1, 3, 5]]).numpy()
    xn = x.numpy()
    ref = []
    for g in ([0, 2, 4], [1, 3, 5]):
        s = xn[:, g].mean(1)
        ref += [s.max(-1), s.min(-1), s.mean(-1)]
    np.testing.assert_allclose(got, np.stack(ref, 1), rtol=1e-12)
