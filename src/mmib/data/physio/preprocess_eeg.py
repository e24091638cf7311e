"""EEG preprocessing built on MNE: band-pass (1–45 Hz) → optional re-reference → epochs with baseline correction →
single-trial ERP features (peak amplitude, peak latency, mean amplitude after a low-pass) and band powers δ θ α β γ
(Welch or multitaper, :meth:`mne.Epochs.compute_psd`) with relative band ratios. Arrays in µV, times in s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS
from mmib.data.physio.preprocess_events import epochs_for, trial_events
from mmib.data.physio.read_base import PhysioInputError


@dataclass
class EEGPipeline:
    """EEG preprocessing parameters.

    Attributes:
        l_freq, h_freq: band-pass edges (Hz).
        notch: line-noise frequency to notch out (50 or 60 Hz), or ``None``.
        reference: ``"average"`` to re-reference to the average, or ``None`` to keep the recorded reference.
        tmin, tmax: epoch window around the trial marker (s).
        baseline: baseline interval (MNE convention; ``None`` = no correction).
        resample: new sampling rate (Hz) of the epochs, or ``None``.
        bands: frequency bands (Hz) of the band powers.
        psd_method: ``"welch"`` or ``"multitaper"``.
        erp_lowpass: low-pass (Hz) applied before the single-trial ERP features.
        erp_window: interval (s) searched for the ERP peak; default from 0 to the end of the epoch.
    """

    l_freq: float | None = 1.0
    h_freq: float | None = 45.0
    notch: float | None = None
    reference: str | None = None
    tmin: float = -0.5
    tmax: float = 4.0
    baseline: tuple[float | None, float | None] | None = (None, 0.0)
    resample: float | None = None
    bands: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(EEG_BANDS))
    psd_method: str = "welch"
    erp_lowpass: float = 8.0
    erp_window: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.psd_method not in ("welch", "multitaper"):
            raise PhysioInputError(f"EEG psd_method must be 'welch' or 'multitaper', got {self.psd_method!r}")
        if self.reference not in (None, "average"):
            raise PhysioInputError(f"EEG reference must be 'average' or None, got {self.reference!r}")
        if self.tmax <= self.tmin:
            raise PhysioInputError(f"EEG epoch window: tmax ({self.tmax}) must exceed tmin ({self.tmin})")
        for name, (lo, hi) in self.bands.items():
            if not 0 <= lo < hi:
                raise PhysioInputError(f"EEG band '{name}': expected 0 <= low < high, got ({lo}, {hi})")


def eeg_epochs(raw, cfg: EEGPipeline | None = None, conditions=None, source: str = "EEG recording"):
    """Filtered, baseline-corrected EEG epochs (``mne.Epochs``, volts) around the annotated trials."""

    cfg = cfg or EEGPipeline()
    events, event_id, _ = trial_events(raw, conditions, source)
    raw = raw.copy().load_data().pick("eeg")
    nyq = raw.info["sfreq"] / 2
    top = max(hi for _, hi in cfg.bands.values())
    if top >= nyq:
        raise PhysioInputError(
            f"{source}: sampled at {raw.info['sfreq']} Hz, too slow for a band up to {top} Hz (Nyquist {nyq} Hz)"
        )
    if cfg.notch:
        raw.notch_filter(np.arange(cfg.notch, nyq, cfg.notch), verbose="error")
    if cfg.l_freq is not None or cfg.h_freq is not None:
        raw.filter(cfg.l_freq, cfg.h_freq, verbose="error")
    if cfg.reference == "average":
        raw.set_eeg_reference("average", verbose="error")
    return epochs_for(raw, events, event_id, cfg, raw, source)


def eeg_band_powers(epochs, cfg: EEGPipeline | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Absolute band powers (µV²) and relative band ratios per epoch and channel.

    Returns:
        ``(absolute, relative, band_names)``: two (n_epochs, n_channels, n_bands) arrays; ``relative`` divides each
        band by the sum over the bands.
    """
    cfg = cfg or EEGPipeline()
    fmin = min(lo for lo, _ in cfg.bands.values())
    fmax = max(hi for _, hi in cfg.bands.values())
    sfreq = epochs.info["sfreq"]
    kw: dict[str, Any] = {}
    if cfg.psd_method == "welch":
        kw["n_fft"] = int(min(len(epochs.times), 2 * sfreq))
    else:  # MNE's multitaper default ("length") is not per Hz: "full" makes the band powers µV², as Welch's
        kw["normalization"] = "full"
    spec = epochs.compute_psd(method=cfg.psd_method, fmin=fmin, fmax=fmax, verbose="error", **kw)
    psd, freqs = spec.get_data(return_freqs=True)
    psd = psd * 1e12  # V²/Hz → µV²/Hz
    df = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 1.0
    names = list(cfg.bands)
    absolute = np.empty(psd.shape[:2] + (len(names),))
    for j, name in enumerate(names):
        lo, hi = cfg.bands[name]
        sel = (freqs >= lo) & (freqs < hi)
        if not sel.any():
            raise PhysioInputError(f"EEG band '{name}' ({lo}-{hi} Hz) holds no frequency bin; lengthen the epochs")
        absolute[..., j] = psd[..., sel].sum(axis=-1) * df
    relative = absolute / absolute.sum(axis=-1, keepdims=True)
    return absolute, relative, names


def erp_features(epochs, cfg: EEGPipeline | None = None) -> tuple[np.ndarray, list[str]]:
    """Single-trial ERP features per channel: peak amplitude (µV), peak latency (s), mean amplitude (µV).

    The epochs are low-passed at ``cfg.erp_lowpass`` first; the peak is the maximum over ``cfg.erp_window``.
    """
    cfg = cfg or EEGPipeline()
    low = epochs.copy().filter(None, cfg.erp_lowpass, verbose="error")
    times = low.times
    lo, hi = cfg.erp_window if cfg.erp_window is not None else (0.0, times[-1])
    sel = (times >= lo) & (times <= hi)
    data = low.get_data(copy=True)[:, :, sel] * 1e6
    t = times[sel]
    idx = np.argmax(data, axis=-1)
    peak = np.take_along_axis(data, idx[..., None], axis=-1)[..., 0]
    return np.stack([peak, t[idx], data.mean(axis=-1)], axis=-1), ["erp_peak", "erp_latency", "erp_mean"]


def eeg_features(epochs, cfg: EEGPipeline | None = None) -> tuple[np.ndarray, list[str]]:
    """(n_epochs, n_channels × (2·n_bands + 3)) vector per epoch: log10 band powers, relative ratios, ERP features."""
    absolute, relative, bands = eeg_band_powers(epochs, cfg)
    erp, erp_names = erp_features(epochs, cfg)
    per_ch = np.concatenate([np.log10(absolute + 1e-12), relative, erp], axis=-1)
    names = [
        f"{ch}:{f}"
        for ch in epochs.ch_names
        for f in [f"log_{b}" for b in bands] + [f"rel_{b}" for b in bands] + erp_names
    ]
    return per_ch.reshape(per_ch.shape[0], -1), names
