"""Signal primitives of the EEG + fNIRS simulator: seeds drawn from a generator, scalp topographies, narrow-band
noise, raised-cosine gates, resampling and z-scoring.

Used by :mod:`mmib.data.physio.eeg_fnirs_sim` (the recordings) and :mod:`mmib.data.physio.fnirs_forward` (the scalp
field); each draws from the generator it is given, in the order the simulator calls it.
"""

from __future__ import annotations

import numpy as np


def draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def topography(positions: np.ndarray, centre: np.ndarray, width_m: float = 0.06) -> np.ndarray:
    d2 = ((positions - centre[None, :]) ** 2).sum(axis=1)
    w = np.exp(-d2 / (2 * width_m**2))
    return w / w.max()


def band_noise(rng: np.random.Generator, n: int, sfreq: float, band: tuple[float, float]) -> np.ndarray:
    """Unit-variance narrow-band Gaussian noise (MNE FIR band-pass of white noise)."""
    import mne

    white = rng.standard_normal(n)
    x = mne.filter.filter_data(white[None, :], sfreq, band[0], band[1], verbose=False)[0]
    return x / x.std()


def raised_cosine_gate(times: np.ndarray, start: float, stop: float, ramp: float = 0.5) -> np.ndarray:
    """0/1 window on [start, stop] with raised-cosine ramps of ``ramp`` seconds."""
    g = np.zeros_like(times)
    inside = (times >= start) & (times <= stop)
    g[inside] = 1.0
    up = (times >= start - ramp) & (times < start)
    g[up] = 0.5 - 0.5 * np.cos(np.pi * (times[up] - (start - ramp)) / ramp)
    down = (times > stop) & (times <= stop + ramp)
    g[down] = 0.5 + 0.5 * np.cos(np.pi * (times[down] - stop) / ramp)
    return g


def resampled(x: np.ndarray, sfreq_in: float, times_out: np.ndarray) -> np.ndarray:
    t_in = np.arange(x.shape[-1]) / sfreq_in
    return np.interp(times_out, t_in, x)


def zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return (x - x.mean()) / (x.std() + 1e-12)
