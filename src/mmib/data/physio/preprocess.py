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

The steps by modality: :mod:`~mmib.data.physio.preprocess_eeg`, :mod:`~mmib.data.physio.preprocess_fnirs`; shared
events: :mod:`~mmib.data.physio.preprocess_events`; readers: :mod:`~mmib.data.physio.readers`. Here: one recording
(EEG and/or fNIRS) preprocessed into paired epochs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mmib.data.physio.preprocess_eeg import EEGPipeline, eeg_epochs, eeg_features
from mmib.data.physio.preprocess_events import trial_conditions
from mmib.data.physio.preprocess_fnirs import FNIRSPipeline, fnirs_epochs, fnirs_features
from mmib.data.physio.read_base import (  # noqa: F401  (re-exported: the readers' public names)
    EEG_EXTENSIONS,
    FNIRS_EXTENSIONS,
    PhysioInputError,
    PhysioWarning,
)
from mmib.data.physio.readers import read_any, read_eeg, read_fnirs  # noqa: F401  (re-exported, as above)


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
