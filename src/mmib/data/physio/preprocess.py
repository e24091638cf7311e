"""EEG and fNIRS preprocessing built on MNE / MNE-NIRS: readers, events, epochs and hand-crafted features.

fNIRS: raw intensity → optical density (:func:`mne.preprocessing.nirs.optical_density`) → optional motion
correction (TDDR, :func:`mne.preprocessing.nirs.temporal_derivative_distribution_repair`) → optional short-channel
regression (:func:`mne_nirs.signal_enhancement.short_channel_regression`) → HbO/HbR by the modified Beer–Lambert law
(:func:`mne.preprocessing.nirs.beer_lambert_law`) → band-pass 0.01–0.1 Hz → epochs with baseline correction →
per channel and chromophore: peak amplitude, time to peak, area (spec Part C, Step 2).

EEG: band-pass (1–45 Hz) → optional re-reference → epochs with baseline correction → single-trial ERP features
(peak amplitude, peak latency, mean amplitude after a low-pass) and band powers δ θ α β γ (Welch or multitaper,
:meth:`mne.Epochs.compute_psd`) with relative band ratios.

Units of the arrays these functions return: EEG in µV, HbO/HbR in µM, times in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS
from mmib.data.physio.readers import (  # noqa: F401  (re-exported: the readers' public names)
    EEG_EXTENSIONS,
    FNIRS_EXTENSIONS,
    PhysioInputError,
    PhysioWarning,
    read_any,
    read_eeg,
    read_fnirs,
)


# ---------------------------------------------------------------------------------------------------- events
def trial_conditions(raw) -> list[str]:
    """The annotation descriptions of a recording that can be trials (sorted): all but MNE's ``BAD…``/``EDGE…``
    markers and BrainVision's ``New Segment`` marker."""
    return sorted(
        d for d in set(raw.annotations.description) if not d.upper().startswith(("BAD", "EDGE", "NEW SEGMENT"))
    )


def trial_events(raw, conditions: Sequence[str] | None = None, source: str = "recording"):
    """Events from the recording's annotations.

    Args:
        raw: an MNE Raw with annotations.
        conditions: annotation descriptions to keep, in class order (``y`` = index in this list); ``None`` keeps
            every description except MNE's ``BAD…``/``EDGE…`` markers, sorted alphabetically.
        source: name of the recording for error messages.

    Returns:
        ``(events, event_id, onsets_s)``: MNE events array, ``{description: code}`` (code = class index + 1) and
        the event times in seconds from the start of the recording.

    Raises:
        PhysioInputError: when there are no annotations or a requested condition never occurs.
    """
    import mne

    present = sorted(set(raw.annotations.description))
    if not trial_conditions(raw):
        raise PhysioInputError(f"{source}: no trial annotations (besides BAD/EDGE markers), so no events to epoch around")
    if conditions is None:
        conditions = trial_conditions(raw)
    missing = [c for c in conditions if c not in present]
    if missing:
        raise PhysioInputError(
            f"{source}: condition {', '.join(map(repr, missing))} not among the annotations "
            f"({', '.join(present)})"
        )
    event_id = {c: i + 1 for i, c in enumerate(conditions)}
    events, _ = mne.events_from_annotations(raw, event_id=event_id, verbose="error")
    onsets = (events[:, 0] - raw.first_samp) / raw.info["sfreq"]
    return events, event_id, onsets


def warn_dropped_epochs(epochs, n_events: int, raw, source: str) -> None:
    """Warn, naming ``source``, when MNE dropped epochs (their window runs past the recording's start or end)."""
    n_drop = n_events - len(epochs)
    if n_drop > 0:
        import warnings

        reasons = sorted({r for log in epochs.drop_log for r in log})
        warnings.warn(
            f"{source}: {n_drop} of {n_events} trials dropped ({', '.join(reasons) or 'no data'}: the epoch window "
            f"[{epochs.tmin:g}, {epochs.tmax:g}] s runs past the recording, which ends at {raw.times[-1]:.1f} s)",
            PhysioWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------------- fNIRS

def short_channel_regression_per_wavelength(raw):
    """MNE-NIRS's short-channel regression run on each wavelength's channels apart.

    :func:`mne_nirs.signal_enhancement.short_channel_regression` pairs every long optical-density channel with the
    short channel whose midpoint is nearest; both wavelengths of a short channel share that midpoint, so it picks
    the first one listed, and the second wavelength's long channel is regressed on the *other* wavelength's short
    channel (mne-nirs 0.7.3). Scalp HbO and HbR mix differently at the two wavelengths, so that leaves much of the
    scalp signal in. Here each wavelength is regressed on its own short channels.
    """
    from mne_nirs.signal_enhancement import short_channel_regression

    raw = raw.copy().load_data()
    for wl in sorted({float(ch["loc"][9]) for ch in raw.info["chs"]}):
        picks = [i for i, ch in enumerate(raw.info["chs"]) if float(ch["loc"][9]) == wl]
        raw._data[picks] = short_channel_regression(raw.copy().pick(picks)).get_data()
    return raw

@dataclass
class FNIRSPipeline:
    """fNIRS preprocessing parameters.

    Attributes:
        ppf: partial pathlength factor of the modified Beer–Lambert law (MNE's default 6).
        l_freq, h_freq: band-pass edges (Hz), 0.01–0.1 Hz after the design (spec C.5).
        l_trans_bandwidth, h_trans_bandwidth: transition bands (Hz). MNE's automatic choice for a 0.1 Hz low-pass
            is a 2 Hz transition, which would keep the cardiac pulsation; 0.05 Hz puts the stop band at 0.15 Hz.
        tmin, tmax: epoch window around the trial marker (s).
        baseline: baseline interval for the correction (MNE convention; ``None`` = no correction).
        motion_correction: ``"tddr"`` (temporal derivative distribution repair) or ``None`` (default). TDDR
            treats fast haemodynamic changes as outliers when the slow physiological fluctuations are weak: on our
            simulations it shrinks HbO peaks by ~15% (and erases them on nearly noise-free data).
        short_channel_regression: regress out short (< 1.5 cm) channels with MNE-NIRS, then drop them.
        sci_threshold: mark channels whose scalp coupling index is below this as bad and drop them (``None``: off).
        resample: new sampling rate (Hz) of the epochs, or ``None``.
    """

    ppf: float = 6.0
    l_freq: float | None = 0.01
    h_freq: float | None = 0.1
    l_trans_bandwidth: float = 0.01
    h_trans_bandwidth: float = 0.05
    tmin: float = -2.0
    tmax: float = 18.0
    baseline: tuple[float | None, float | None] | None = (None, 0.0)
    motion_correction: str | None = None
    short_channel_regression: bool = False
    sci_threshold: float | None = None
    resample: float | None = None

    def __post_init__(self) -> None:
        if self.motion_correction not in (None, "tddr"):
            raise PhysioInputError(f"fNIRS motion_correction must be 'tddr' or None, got {self.motion_correction!r}")
        if self.tmax <= self.tmin:
            raise PhysioInputError(f"fNIRS epoch window: tmax ({self.tmax}) must exceed tmin ({self.tmin})")
        if self.ppf <= 0:
            raise PhysioInputError(f"fNIRS ppf must be > 0, got {self.ppf}")


def fnirs_haemoglobin(raw, cfg: FNIRSPipeline | None = None, source: str = "fNIRS recording"):
    """Continuous HbO/HbR (mol/L) from raw intensities (or optical densities), filtered as ``cfg`` says."""
    from mne.preprocessing import nirs

    cfg = cfg or FNIRSPipeline()
    raw = raw.copy().load_data()
    types = set(raw.get_channel_types())
    if "fnirs_cw_amplitude" in types:
        raw.pick("fnirs_cw_amplitude")
        data = raw.get_data()
        bad = np.flatnonzero((data <= 0).all(axis=1) | ~np.isfinite(data).all(axis=1))
        if bad.size:
            raise PhysioInputError(
                f"{source}: channel {raw.ch_names[bad[0]]} holds no positive finite light intensity; "
                "mark it bad and drop it before preprocessing"
            )
        raw = nirs.optical_density(raw, verbose="error")
        if cfg.sci_threshold is not None:  # MNE computes the scalp coupling index on optical densities
            sci = nirs.scalp_coupling_index(raw, verbose="error")
            raw.info["bads"] = [c for c, s in zip(raw.ch_names, sci) if s < cfg.sci_threshold]
    elif "fnirs_od" in types:
        raw.pick("fnirs_od")
    elif types & {"hbo", "hbr"}:
        raw.pick(["hbo", "hbr"])
    else:
        raise PhysioInputError(f"{source}: no fNIRS channels (types: {sorted(types)})")
    if "fnirs_od" in raw.get_channel_types():
        if cfg.motion_correction == "tddr":
            raw = nirs.temporal_derivative_distribution_repair(raw, verbose="error")
        if cfg.short_channel_regression:
            raw = short_channel_regression_per_wavelength(raw)
        dist = nirs.source_detector_distances(raw.info)
        if not np.all(np.isfinite(dist)) or np.all(dist == 0):
            raise PhysioInputError(
                f"{source}: source-detector distances are unknown; the optode positions (channel locations, in "
                "metres) are needed for the Beer–Lambert law"
            )
        raw = nirs.beer_lambert_law(raw, ppf=cfg.ppf)
        if cfg.short_channel_regression:
            long = nirs.source_detector_distances(raw.info) > 0.015
            raw.pick(np.flatnonzero(long))
    if raw.info["bads"]:
        raw.drop_channels(raw.info["bads"])
    if cfg.l_freq is not None or cfg.h_freq is not None:
        n_min = cfg.l_freq and 3.3 / min(cfg.l_trans_bandwidth, cfg.l_freq) * raw.info["sfreq"]
        if n_min and raw.n_times < n_min:
            raise PhysioInputError(
                f"{source}: {raw.n_times / raw.info['sfreq']:.0f} s of data is too short for a "
                f"{cfg.l_freq} Hz high-pass (needs about {n_min / raw.info['sfreq']:.0f} s); lower l_freq or "
                "raise l_trans_bandwidth"
            )
        raw.filter(
            cfg.l_freq,
            cfg.h_freq,
            l_trans_bandwidth=cfg.l_trans_bandwidth if cfg.l_freq else "auto",
            h_trans_bandwidth=cfg.h_trans_bandwidth if cfg.h_freq else "auto",
            picks=["hbo", "hbr"],
            verbose="error",
        )
    return raw


def fnirs_epochs(raw, cfg: FNIRSPipeline | None = None, conditions=None, source: str = "fNIRS recording"):
    """HbO/HbR epochs (``mne.Epochs``, mol/L) around the annotated trials; see :class:`FNIRSPipeline`."""
    import mne

    cfg = cfg or FNIRSPipeline()
    events, event_id, _ = trial_events(raw, conditions, source)
    haemo = fnirs_haemoglobin(raw, cfg, source)
    epochs = mne.Epochs(
        haemo, events, event_id, tmin=cfg.tmin, tmax=cfg.tmax, baseline=cfg.baseline, preload=True,
        reject_by_annotation=False, verbose="error",
    )  # fmt: skip
    warn_dropped_epochs(epochs, len(events), raw, source)
    if cfg.resample:
        epochs.resample(cfg.resample, verbose="error")
    return epochs


def fnirs_features(epochs, window: tuple[float, float] | None = None) -> tuple[np.ndarray, list[str]]:
    """Per channel: peak amplitude (µM; max for HbO, min for HbR), time to peak (s after the marker), area (µM·s).

    Args:
        epochs: HbO/HbR epochs (mol/L).
        window: the interval (s) searched, default from 0 to the end of the epoch.

    Returns:
        ``(features, names)``: (n_epochs, n_channels, 3) and the feature names ``<channel>:<feature>``.
    """
    from scipy.integrate import trapezoid

    times = epochs.times
    lo, hi = window if window is not None else (0.0, times[-1])
    sel = (times >= lo) & (times <= hi)
    if sel.sum() < 2:
        raise PhysioInputError(f"fNIRS feature window {window} holds fewer than 2 samples of the epochs")
    data = epochs.get_data(copy=True)[:, :, sel] * 1e6
    t = times[sel]
    types = epochs.get_channel_types()
    sign = np.array([-1.0 if ty == "hbr" else 1.0 for ty in types])[None, :, None]
    idx = np.argmax(sign * data, axis=-1)
    peak = np.take_along_axis(data, idx[..., None], axis=-1)[..., 0]
    ttp = t[idx]
    area = trapezoid(data, t, axis=-1)
    names = [f"{ch}:{f}" for ch in epochs.ch_names for f in ("peak", "time_to_peak", "area")]
    return np.stack([peak, ttp, area], axis=-1), names


# ---------------------------------------------------------------------------------------------------- EEG
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
    import mne

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
    epochs = mne.Epochs(
        raw, events, event_id, tmin=cfg.tmin, tmax=cfg.tmax, baseline=cfg.baseline, preload=True,
        reject_by_annotation=False, verbose="error",
    )  # fmt: skip
    warn_dropped_epochs(epochs, len(events), raw, source)
    if cfg.resample:
        epochs.resample(cfg.resample, verbose="error")
    return epochs


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


# ---------------------------------------------------------------------------------------------------- recordings
@dataclass
class PreprocessedRecording:
    """Epochs of one recording (EEG and/or fNIRS, paired trial by trial) as arrays.

    Attributes:
        signals: ``{"eeg": (n, C, T) µV, "fnirs": (n, 2·pairs, T) µM}`` for the modalities present.
        features: ``{"eeg": (n, D), "fnirs": (n, D)}`` hand-crafted feature vectors.
        y: (n,) condition index (position of the annotation description in ``conditions``).
        conditions: the condition names in class order.
        onsets: (n,) trial marker times (s, from the start of the EEG recording when there is one).
        alignment: the fNIRS clock relative to the EEG clock (offset, drift, matched triggers) when the two were
            aligned by their triggers; ``None`` when they share a clock (or only one modality is given).
        channels, feature_names, rates: per modality.
    """

    signals: dict[str, np.ndarray]
    features: dict[str, np.ndarray]
    y: np.ndarray
    conditions: list[str]
    onsets: np.ndarray
    channels: dict[str, list[str]]
    feature_names: dict[str, list[str]]
    rates: dict[str, float]
    times: dict[str, np.ndarray]
    alignment: dict[str, Any] | None = None


def preprocess_recording(
    eeg=None,
    fnirs=None,
    eeg_cfg: EEGPipeline | None = None,
    fnirs_cfg: FNIRSPipeline | None = None,
    conditions: Sequence[str] | None = None,
    source: str = "recording",
) -> PreprocessedRecording:
    """Preprocess a simultaneous recording (either modality may be absent) into paired epochs.

    ``eeg``/``fnirs`` are MNE Raw objects, paths (any format of :mod:`mmib.data.physio.readers`) or BIDS paths.
    EEG and fNIRS trials are paired by :func:`pair_trials`: in order when both share a clock, otherwise by their
    trigger times after estimating the fNIRS clock's offset and drift.

    Raises:
        PhysioInputError: when neither modality is given, or the triggers of the two cannot be matched.
    """
    if eeg is None and fnirs is None:
        raise PhysioInputError(f"{source}: give an EEG recording, an fNIRS recording or both")
    eeg_src = f"EEG recording {eeg}" if not hasattr(eeg, "get_data") else f"{source} (EEG)"
    nirs_src = f"fNIRS recording {fnirs}" if not hasattr(fnirs, "get_data") else f"{source} (fNIRS)"
    eeg, fnirs = read_any(eeg, "eeg"), read_any(fnirs, "fnirs")
    if conditions is None:
        present = set()
        for r in (eeg, fnirs):
            if r is not None:
                present |= set(trial_conditions(r))
        conditions = sorted(present)
    out = PreprocessedRecording({}, {}, np.zeros(0, np.int64), list(conditions), np.zeros(0), {}, {}, {}, {}, None)
    ys = {}
    onsets = {}
    if eeg is not None:
        cfg = eeg_cfg or EEGPipeline()
        ep = eeg_epochs(eeg, cfg, conditions, eeg_src)
        out.signals["eeg"] = ep.get_data(copy=True) * 1e6
        out.features["eeg"], out.feature_names["eeg"] = eeg_features(ep, cfg)
        out.channels["eeg"] = list(ep.ch_names)
        out.rates["eeg"] = float(ep.info["sfreq"])
        out.times["eeg"] = ep.times.copy()
        ys["eeg"] = ep.events[:, 2] - 1
        onsets["eeg"] = (ep.events[:, 0] - eeg.first_samp) / eeg.info["sfreq"]
    if fnirs is not None:
        cfg = fnirs_cfg or FNIRSPipeline()
        ep = fnirs_epochs(fnirs, cfg, conditions, nirs_src)
        out.signals["fnirs"] = ep.get_data(copy=True) * 1e6
        feats, names = fnirs_features(ep)
        out.features["fnirs"] = feats.reshape(feats.shape[0], -1)
        out.feature_names["fnirs"] = names
        out.channels["fnirs"] = list(ep.ch_names)
        out.rates["fnirs"] = float(ep.info["sfreq"])
        out.times["fnirs"] = ep.times.copy()
        ys["fnirs"] = ep.events[:, 2] - 1
        onsets["fnirs"] = (ep.events[:, 0] - fnirs.first_samp) / fnirs.info["sfreq"]
    if len(ys) == 2:
        ia, ib, out.alignment = pair_trials(onsets["eeg"], ys["eeg"], onsets["fnirs"], ys["fnirs"], eeg_src, nirs_src)
        for key, sel in (("eeg", ia), ("fnirs", ib)):
            out.signals[key], out.features[key] = out.signals[key][sel], out.features[key][sel]
            ys[key], onsets[key] = ys[key][sel], onsets[key][sel]
    first = "eeg" if "eeg" in ys else "fnirs"
    out.y = ys[first].astype(np.int64)
    out.onsets = onsets[first]
    return out


def pair_trials(t_eeg, y_eeg, t_nirs, y_nirs, eeg_src: str = "EEG", nirs_src: str = "fNIRS", tol_s: float = 0.25):
    """Pair the EEG and fNIRS trials of one session: ``(eeg_index, fnirs_index, alignment)``.

    When both hold the same conditions in the same order at the same times (within ``tol_s``), the clocks are the
    same and trials pair in order. Otherwise the clocks are aligned from the trials' trigger times
    (:func:`mmib.data.physio.clock.align_triggers`: offset and drift, robust to missing or extra triggers) and
    trials pair by time; trials without a partner are dropped with a :class:`PhysioWarning` naming the files.
    ``alignment`` is ``None`` for the same clock, else the fitted offset/drift as a dict.
    """
    import warnings

    from mmib.data.physio.clock import align_triggers

    t_eeg, t_nirs = np.asarray(t_eeg, float), np.asarray(t_nirs, float)
    if len(t_eeg) == len(t_nirs) and np.array_equal(y_eeg, y_nirs) and np.all(np.abs(t_eeg - t_nirs) <= tol_s):
        idx = np.arange(len(t_eeg))
        return idx, idx, None
    al = align_triggers(t_eeg, t_nirs, list(y_eeg), list(y_nirs), tol_s=tol_s, names=(eeg_src, nirs_src))
    if len(al.unmatched_a) or len(al.unmatched_b):
        warnings.warn(
            f"{eeg_src} and {nirs_src}: {len(al.unmatched_a)} of {len(t_eeg)} EEG and {len(al.unmatched_b)} of "
            f"{len(t_nirs)} fNIRS trials have no partner after clock alignment (offset {al.offset_s:.3f} s, drift "
            f"{al.drift * 1e6:.1f} ppm); they are dropped", PhysioWarning, stacklevel=3,
        )  # fmt: skip
    return al.pairs[:, 0], al.pairs[:, 1], al.as_dict()


def config_dict(cfg) -> dict[str, Any]:
    """A JSON-ready dict of a pipeline config."""
    d = asdict(cfg)
    return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in d.items()}
