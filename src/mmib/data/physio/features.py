"""Time-resolved hand-made features of EEG + fNIRS epochs (issue 20: the hand-made-feature ceiling).

The MNE pipeline's features (:func:`mmib.data.physio.preprocess_eeg.eeg_features`, ``fnirs_features``) summarize a whole
epoch: a Welch band power over 4.5 s dilutes a 0.5 s gamma burst, and a per-channel argmax time-to-peak of a slow,
noisy haemodynamic response scatters by seconds. The features here keep time:

* EEG: **band envelopes** (band-pass + Hilbert magnitude, :func:`band_envelope`) averaged in short windows
  (:func:`window_means`), the **peak of a smoothed envelope** and its latency (:func:`envelope_peak`; e.g. the gamma
  burst at Fz), and **ERP peak latencies** (:func:`erp_peak`; e.g. the P3 at Pz after Gaussian smoothing);
* fNIRS: the **onset of a fitted haemodynamic response** (:func:`fit_hrf_onset`: the canonical Glover response to a
  block, passed through the same band-pass and baseline correction as the data, shifted over a grid of onsets and
  scaled by least squares, after removing a constant and a linear trend), a **channel-weighted time-to-peak**
  (:func:`weighted_time_to_peak`), and response **amplitudes** (the fitted scale, the peak and window means of the
  channel-mean HbO / HbR).

:func:`eeg_fnirs_feature_groups` computes all of them for epochs of the ``eeg_fnirs_sim`` layout (EEG 10-20 channel
names, fNIRS ``"<pair> hbo"`` / ``"<pair> hbr"``) as named groups of columns; ``mmib.bench.study_eeg_fnirs`` probes
them. Inputs are in the pipeline's units (EEG µV, HbO/HbR µM) and time is in seconds from the trial marker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mmib.errors import MMIBError

__all__ = [
    "band_envelope", "window_means", "envelope_peak", "erp_peak", "gaussian_smooth", "hrf_templates",
    "fit_hrf_onset", "weighted_time_to_peak", "EEGFNIRSFeatureConfig", "eeg_fnirs_feature_groups",
]


def _times(n: int, sfreq: float, tmin: float) -> np.ndarray:
    return tmin + np.arange(n) / float(sfreq)


def _check_array(x: np.ndarray, name: str, ndim_min: int = 1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < ndim_min:
        raise MMIBError(f"{name}: expected an array with at least {ndim_min} dimension(s) (..., time), got {x.shape}")
    if not np.isfinite(x).all():
        raise MMIBError(f"{name}: the signal holds NaN or inf")
    return x


def _sel(times: np.ndarray, window: tuple[float, float], name: str) -> np.ndarray:
    lo, hi = window
    sel = (times >= lo) & (times <= hi)
    if sel.sum() < 2:
        raise MMIBError(f"{name}: the window {window} s holds fewer than 2 samples of the epoch "
                        f"({times[0]:.2f}..{times[-1]:.2f} s)")
    return sel


# ---------------------------------------------------------------------------------------------------- EEG
def band_envelope(x: np.ndarray, sfreq: float, band: tuple[float, float], smooth_s: float = 0.0) -> np.ndarray:
    """Amplitude envelope of ``x`` (..., T) in ``band`` (Hz): zero-phase band-pass along time (MNE ``filter_data``,
    4th-order Butterworth applied forward and backward: an FIR long enough for a 1 Hz edge would exceed a 4.5 s
    epoch), then the magnitude of the analytic signal (``scipy.signal.hilbert``); optionally smoothed by a moving
    average of ``smooth_s`` s."""
    import mne
    from scipy.signal import hilbert

    x = _check_array(x, "band_envelope")
    lo, hi = band
    if not 0 < lo < hi < sfreq / 2:
        raise MMIBError(f"band_envelope: band must satisfy 0 < low < high < Nyquist ({sfreq / 2} Hz), got {band}")
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    filt = mne.filter.filter_data(flat, sfreq, lo, hi, method="iir",
                                  iir_params={"order": 4, "ftype": "butter", "output": "sos"}, verbose="error")
    env = np.abs(hilbert(filt, axis=-1))
    if smooth_s > 0:
        from scipy.ndimage import uniform_filter1d

        env = uniform_filter1d(env, max(1, int(round(smooth_s * sfreq))), axis=-1, mode="nearest")
    return env.reshape(shape)


def window_means(x: np.ndarray, times: np.ndarray, start: float, stop: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``x`` (..., T) over consecutive windows of ``width`` s from ``start`` to ``stop``:
    ``(means (..., W), window centres (W,))``."""
    x = _check_array(x, "window_means")
    if width <= 0 or stop <= start:
        raise MMIBError(f"window_means: expected width > 0 and stop > start, got width {width}, [{start}, {stop}]")
    edges = np.arange(start, stop + 1e-9, width)
    if len(edges) < 2:
        raise MMIBError(f"window_means: [{start}, {stop}] s holds no window of {width} s")
    out, centres = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = (times >= a) & (times < b)
        if not sel.any():
            raise MMIBError(f"window_means: the window [{a:.3f}, {b:.3f}) s holds no sample")
        out.append(x[..., sel].mean(axis=-1))
        centres.append((a + b) / 2)
    return np.stack(out, axis=-1), np.asarray(centres)


def _refined_argmax(y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak value and time of each row of ``y`` (..., T), refined by a parabola through the three samples around
    the maximum (sub-sample latency)."""
    idx = np.argmax(y, axis=-1)
    peak = np.take_along_axis(y, idx[..., None], axis=-1)[..., 0]
    i = np.clip(idx, 1, y.shape[-1] - 2)
    y0 = np.take_along_axis(y, (i - 1)[..., None], axis=-1)[..., 0]
    y1 = np.take_along_axis(y, i[..., None], axis=-1)[..., 0]
    y2 = np.take_along_axis(y, (i + 1)[..., None], axis=-1)[..., 0]
    den = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where((den < 0) & (idx == i), 0.5 * (y0 - y2) / den, 0.0)
    off = np.clip(off, -0.5, 0.5)
    dt = float(t[1] - t[0]) if len(t) > 1 else 0.0
    return peak, t[idx] + off * dt


def gaussian_smooth(x: np.ndarray, sfreq: float, sd_s: float) -> np.ndarray:
    """``x`` (..., T) convolved along time with a Gaussian of standard deviation ``sd_s`` seconds."""
    from scipy.ndimage import gaussian_filter1d

    x = _check_array(x, "gaussian_smooth")
    return gaussian_filter1d(x, sd_s * sfreq, axis=-1, mode="nearest") if sd_s > 0 else x


def envelope_peak(env: np.ndarray, times: np.ndarray, window: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Largest value of an envelope (..., T) within ``window`` (s) and its time: ``(amplitude, latency)``."""
    env = _check_array(env, "envelope_peak")
    sel = _sel(times, window, "envelope_peak")
    return _refined_argmax(env[..., sel], times[sel])


def erp_peak(x: np.ndarray, sfreq: float, times: np.ndarray, window: tuple[float, float], sign: float = 1.0,
             sd_s: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Single-trial ERP component: the extremum (``sign`` +1: maximum, e.g. the P3; −1: minimum, e.g. the N1) of
    the Gaussian-smoothed signal (..., T) within ``window`` s: ``(amplitude (signed, µV), latency (s))``."""
    if sign not in (1.0, -1.0, 1, -1):
        raise MMIBError(f"erp_peak: sign must be +1 or -1, got {sign}")
    sm = gaussian_smooth(x, sfreq, sd_s)
    sel = _sel(times, window, "erp_peak")
    amp, lat = _refined_argmax(sign * sm[..., sel], times[sel])
    return sign * amp, lat


# ---------------------------------------------------------------------------------------------------- fNIRS
def hrf_templates(times: np.ndarray, onsets: np.ndarray, duration: float = 2.0, sfreq: float | None = None,
                  band: tuple[float | None, float | None] | None = (0.01, 0.1),
                  trans: tuple[float, float] = (0.01, 0.05),
                  baseline: tuple[float | None, float] | None = (None, 0.0)) -> np.ndarray:
    """Canonical (Glover, nilearn) responses to a ``duration`` s block starting at each of ``onsets`` (s), sampled
    at ``times`` (the epoch's, evenly spaced), unit peak before filtering, passed through the fNIRS pipeline's
    zero-phase FIR band-pass (``band``, transition bands ``trans``; MNE ``filter_data``, on a long zero-padded
    record as the continuous data were) and baseline-corrected like the epochs: ``(len(onsets), len(times))``."""
    import mne

    from mmib.data.physio.fnirs_forward import hrf_response

    times = np.asarray(times, dtype=np.float64)
    sfreq = float(sfreq or 1.0 / (times[1] - times[0]))
    pad = 400.0  # the 0.01 Hz high-pass is ~330 s long: filter one response in the middle of a long record
    grid = np.arange(0.0, 2 * pad, 1.0 / sfreq)
    unit = hrf_response(grid, [pad], [1.0], duration)
    if band is not None and (band[0] is not None or band[1] is not None):
        unit = mne.filter.filter_data(unit[None, :], sfreq, band[0], band[1],
                                      l_trans_bandwidth=trans[0] if band[0] else "auto",
                                      h_trans_bandwidth=trans[1] if band[1] else "auto", verbose="error")[0]
    rel = grid - pad
    out = np.stack([np.interp(times - float(s), rel, unit) for s in np.asarray(onsets, dtype=np.float64)])
    if baseline is not None:
        lo = times[0] if baseline[0] is None else baseline[0]
        sel = (times >= lo) & (times <= baseline[1])
        if sel.any():
            out = out - out[:, sel].mean(axis=1, keepdims=True)
    return out


@dataclass
class HRFFit:
    """Result of :func:`fit_hrf_onset` per row: ``onset`` (s), ``amplitude`` (the least-squares scale, in the
    data's unit per unit-peak response), ``r2`` (variance of the row explained by the fitted response)."""

    onset: np.ndarray
    amplitude: np.ndarray
    r2: np.ndarray


def fit_hrf_onset(y: np.ndarray, times: np.ndarray, onsets: Sequence[float] | np.ndarray | None = None,
                  duration: float = 2.0, window: tuple[float, float] | None = None,
                  band: tuple[float | None, float | None] | None = (0.01, 0.1),
                  trans: tuple[float, float] = (0.01, 0.05),
                  baseline: tuple[float | None, float] | None = (None, 0.0), sign: float = 1.0) -> HRFFit:
    """Onset of a haemodynamic response in each row of ``y`` (..., T): the shifted canonical response
    (:func:`hrf_templates`, onsets on ``onsets``, default 0..10 s in 0.05 s steps) that explains most of the row
    after a constant and a linear trend are projected out of both, with a least-squares scale of sign ``sign``
    (+1 for HbO, −1 for HbR). Over ``window`` (s; default the whole epoch)."""
    y = _check_array(y, "fit_hrf_onset")
    times = np.asarray(times, dtype=np.float64)
    if y.shape[-1] != len(times):
        raise MMIBError(f"fit_hrf_onset: the signal has {y.shape[-1]} samples but times has {len(times)}")
    grid = np.arange(0.0, 10.0 + 1e-9, 0.05) if onsets is None else np.asarray(onsets, dtype=np.float64)
    tpl = hrf_templates(times, grid, duration, band=band, trans=trans, baseline=baseline)
    sel = np.ones(len(times), bool) if window is None else _sel(times, window, "fit_hrf_onset")
    t = times[sel]
    nuis = np.stack([np.ones_like(t), (t - t.mean()) / (t.std() + 1e-12)], axis=1)
    q, _ = np.linalg.qr(nuis)

    def resid(a: np.ndarray) -> np.ndarray:
        return a - (a @ q) @ q.T

    r = resid(tpl[:, sel])  # (S, T')
    rr = (r ** 2).sum(axis=1)  # (S,)
    flat = resid(y.reshape(-1, y.shape[-1])[:, sel])  # (N, T')
    yr = flat @ r.T  # (N, S)
    amp = sign * np.maximum(sign * yr / rr[None, :], 0.0)
    explained = amp ** 2 * rr[None, :]
    best = np.argmax(explained, axis=1)
    n = np.arange(len(flat))
    tot = (flat ** 2).sum(axis=1)
    r2 = np.where(tot > 0, explained[n, best] / np.maximum(tot, 1e-30), 0.0)
    shape = y.shape[:-1]
    return HRFFit(grid[best].reshape(shape), amp[n, best].reshape(shape), r2.reshape(shape))


def weighted_time_to_peak(y: np.ndarray, times: np.ndarray, window: tuple[float, float], sd_s: float = 1.0,
                          sfreq: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Channel-weighted time to peak of (N, C, T) responses: each channel's peak time of the Gaussian-smoothed
    signal in ``window`` (s), averaged over channels with weights = the channels' positive peak amplitudes (a
    channel without a rise weighs nothing; all-zero weights fall back to the plain mean). Returns ``(latency (N,),
    weighted mean peak (N,))``."""
    y = _check_array(y, "weighted_time_to_peak", 3)
    sfreq = float(sfreq or 1.0 / (times[1] - times[0]))
    sm = gaussian_smooth(y, sfreq, sd_s)
    sel = _sel(times, window, "weighted_time_to_peak")
    peak, lat = _refined_argmax(sm[..., sel], times[sel])
    w = np.maximum(peak, 0.0)
    s = w.sum(axis=1, keepdims=True)
    w = np.where(s > 0, w / np.where(s > 0, s, 1.0), 1.0 / y.shape[1])
    return (w * lat).sum(axis=1), (w * peak).sum(axis=1)


# ---------------------------------------------------------------------------------------------------- groups
@dataclass
class EEGFNIRSFeatureConfig:
    """Where and when the features look (defaults: the ``eeg_fnirs_sim`` epochs: EEG −0.5…4 s, fNIRS −2…18 s,
    events between 0.5 and 2.5 s after the marker, fNIRS responses 1–3 s later).

    Attributes:
        eeg_tmin, fnirs_tmin: start of the epochs (s relative to the marker).
        gamma_band, gamma_sites: the burst's band (Hz) and the sites averaged for its envelope (Fz first).
        p3_site, n1_site: sites of the P3 and the N1.
        event_window: where an event's EEG correlates are searched (s).
        envelope_window: width (s) of the windows of the time-resolved envelopes.
        bands: bands of the whole-trial log envelopes per channel (the rhythm state).
        hrf_duration: block duration (s) of the fitted response; fnirs_window: fitted / searched interval (s).
        fnirs_band, fnirs_trans: the pipeline's band-pass (applied to the response templates as well).
        fnirs_window_width: width (s) of the windows of the time-resolved channel-mean HbO / HbR.
    """

    eeg_tmin: float = -0.5
    fnirs_tmin: float = -2.0
    gamma_band: tuple[float, float] = (30.0, 45.0)
    gamma_sites: tuple[str, ...] = ("Fz", "F3", "F4")
    p3_site: str = "Pz"
    n1_site: str = "Cz"
    event_window: tuple[float, float] = (0.2, 3.6)
    envelope_window: float = 0.25
    bands: Mapping[str, tuple[float, float]] | None = None
    hrf_duration: float = 2.0
    fnirs_window: tuple[float, float] = (-2.0, 18.0)
    fnirs_band: tuple[float | None, float | None] | None = (0.01, 0.1)
    fnirs_trans: tuple[float, float] = (0.01, 0.05)
    fnirs_window_width: float = 2.0


def _site(channels: Sequence[str], name: str, what: str) -> int:
    low = [c.lower() for c in channels]
    if name.lower() not in low:
        raise MMIBError(f"EEG features: the {what} site '{name}' is not among the EEG channels {list(channels)}")
    return low.index(name.lower())


def eeg_fnirs_feature_groups(eeg: np.ndarray, fnirs: np.ndarray, eeg_channels: Sequence[str],
                             fnirs_channels: Sequence[str], eeg_sfreq: float, fnirs_sfreq: float,
                             cfg: EEGFNIRSFeatureConfig | None = None) -> dict[str, np.ndarray]:
    """Named groups of hand-made features (each (N, d)) of paired EEG (N, C, T) µV and fNIRS (N, 2·pairs, T) µM
    epochs. Group names start with the modality (``eeg_`` / ``fnirs_``):

    ========================= ===========================================================================
    ``eeg_band_power``        log mean band envelope per channel and band over the event window (rhythms)
    ``eeg_gain_reference``    log of the theta, alpha and beta envelopes at their strongest channel: the level
                              of the ongoing rhythm, a within-trial reference for the gamma level
    ``eeg_gamma_windows``     gamma envelope of the ``gamma_sites`` mean in windows over the event window
    ``eeg_gamma_peak``        log peak of the smoothed gamma envelope and its latency
    ``eeg_erp``               P3 (max at ``p3_site``) and N1 (min at ``n1_site``) amplitude and latency
    ``eeg_latency``           the event-time estimates alone: P3 latency, N1 latency, gamma-peak latency
    ``fnirs_amplitude``       channel-mean HbO / HbR: fitted response scale, peak, log of the positive scale
    ``fnirs_latency``         fitted HRF onset (HbO mean, HbR mean), channel-weighted time to peak, channel-mean
                              HbO time to peak
    ``fnirs_windows``         channel-mean HbO and HbR in windows over the fNIRS window
    ========================= ===========================================================================
    """
    cfg = cfg or EEGFNIRSFeatureConfig()
    eeg = _check_array(eeg, "EEG epochs", 3)
    fnirs = _check_array(fnirs, "fNIRS epochs", 3)
    if len(eeg) != len(fnirs):
        raise MMIBError(f"features: {len(eeg)} EEG epochs but {len(fnirs)} fNIRS epochs")
    if eeg.shape[1] != len(eeg_channels) or fnirs.shape[1] != len(fnirs_channels):
        raise MMIBError(f"features: channel names ({len(eeg_channels)} EEG, {len(fnirs_channels)} fNIRS) do not match "
                        f"the epochs ({eeg.shape[1]}, {fnirs.shape[1]} channels)")
    te = _times(eeg.shape[-1], eeg_sfreq, cfg.eeg_tmin)
    tf = _times(fnirs.shape[-1], fnirs_sfreq, cfg.fnirs_tmin)
    out: dict[str, np.ndarray] = {}
    # -------- EEG: rhythms
    from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS

    bands = dict(cfg.bands or EEG_BANDS)
    win = _sel(te, cfg.event_window, "EEG event window")
    envs = {name: band_envelope(eeg, eeg_sfreq, b)[..., win].mean(axis=-1) for name, b in bands.items()}
    out["eeg_band_power"] = np.concatenate([np.log(v + 1e-6) for v in envs.values()], axis=1)
    # the level of the ongoing rhythms (the strongest band of 4-30 Hz at its strongest site): the simulator, like a
    # real head, scales every EEG source by one subject-level gain, so the gamma level relative to it is comparable
    # across subjects
    rhythm = np.stack([envs[b].max(axis=1) for b in envs if b in ("theta", "alpha", "beta")], axis=1)
    out["eeg_gain_reference"] = np.log(rhythm + 1e-6)
    # -------- EEG: gamma burst
    gi = [_site(eeg_channels, s, "gamma") for s in cfg.gamma_sites]
    genv = band_envelope(eeg[:, gi].mean(axis=1), eeg_sfreq, cfg.gamma_band, smooth_s=0.1)
    gw, _ = window_means(genv, te, cfg.event_window[0], cfg.event_window[1], cfg.envelope_window)
    out["eeg_gamma_windows"] = gw
    gamp, glat = envelope_peak(genv, te, cfg.event_window)
    out["eeg_gamma_peak"] = np.stack([np.log(gamp + 1e-6), glat], axis=1)
    # -------- EEG: ERP
    p3 = eeg[:, _site(eeg_channels, cfg.p3_site, "P3")]
    n1 = eeg[:, _site(eeg_channels, cfg.n1_site, "N1")]
    p3a, p3l = erp_peak(p3, eeg_sfreq, te, cfg.event_window, 1.0, sd_s=0.05)
    n1a, n1l = erp_peak(n1, eeg_sfreq, te, cfg.event_window, -1.0, sd_s=0.02)
    out["eeg_erp"] = np.stack([p3a, p3l, n1a, n1l], axis=1)
    out["eeg_latency"] = np.stack([p3l, n1l, glat], axis=1)
    # -------- fNIRS
    kinds = [c.rsplit(" ", 1)[-1].lower() for c in fnirs_channels]
    hbo_i = [i for i, k in enumerate(kinds) if k == "hbo"]
    hbr_i = [i for i, k in enumerate(kinds) if k == "hbr"]
    if not hbo_i or not hbr_i:
        raise MMIBError(f"fNIRS features: expected channels named '<pair> hbo' and '<pair> hbr', got {list(fnirs_channels)}")
    hbo, hbr = fnirs[:, hbo_i].mean(axis=1), fnirs[:, hbr_i].mean(axis=1)
    kw = dict(duration=cfg.hrf_duration, window=cfg.fnirs_window, band=cfg.fnirs_band, trans=cfg.fnirs_trans)
    fo = fit_hrf_onset(hbo, tf, sign=1.0, **kw)
    fr = fit_hrf_onset(hbr, tf, sign=-1.0, **kw)
    search = (0.0, cfg.fnirs_window[1])
    wlat, wpeak = weighted_time_to_peak(fnirs[:, hbo_i], tf, search, sfreq=fnirs_sfreq)
    mpeak, mlat = _refined_argmax(gaussian_smooth(hbo, fnirs_sfreq, 1.0)[:, _sel(tf, search, "fNIRS window")],
                                  tf[_sel(tf, search, "fNIRS window")])
    out["fnirs_amplitude"] = np.stack([fo.amplitude, fr.amplitude, mpeak, wpeak, np.log(fo.amplitude + 0.05)], axis=1)
    out["fnirs_latency"] = np.stack([fo.onset, fr.onset, wlat, mlat], axis=1)
    ww, _ = window_means(np.stack([hbo, hbr], axis=1), tf, 0.0, cfg.fnirs_window[1], cfg.fnirs_window_width)
    out["fnirs_windows"] = ww.reshape(len(ww), -1)
    return {k: v.astype(np.float64) for k, v in out.items()}
