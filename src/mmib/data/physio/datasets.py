"""Registered physiological data sets: ``eeg_fnirs_sim``, ``cardio_pyphysio``, ``cardio_sim``, ``fnirs_pyphysio``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import UnknownNameError

_PHYSIO = (("mne", "physio"), ("mne_nirs", "physio"), ("nilearn", "physio"), ("neurokit2", "physio"))
REPRESENTATIONS = ("signal", "features")


def _check_representation(name: str, representation: str) -> None:
    if representation not in REPRESENTATIONS:
        raise DataValidationError(
            f"{name}: representation must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}"
        )


def eeg_fnirs_arrays(subjects, eeg_pipeline=None, fnirs_pipeline=None) -> dict[str, Any]:
    """Preprocess simulated subjects with the MNE pipeline; stack epochs, features, latents and subject ids."""
    from mmib.data.physio.eeg_fnirs_sim import LATENT_NAMES, TRIAL_DESCRIPTIONS
    from mmib.data.physio.preprocess import preprocess_recording

    parts = []
    for s in subjects:
        rec = preprocess_recording(s.eeg, s.fnirs, eeg_pipeline, fnirs_pipeline, conditions=TRIAL_DESCRIPTIONS,
                                   source=f"simulated subject {s.subject}")  # fmt: skip
        if not np.array_equal(rec.y, s.trials["e"]):  # the annotations carry e; a mismatch is a pipeline bug
            raise RuntimeError(f"simulated subject {s.subject}: epochs do not match the simulated trials")
        parts.append((s, rec))
    first = parts[0][1]
    return {
        "signals": {m: np.concatenate([r.signals[m] for _, r in parts]).astype(np.float32) for m in first.signals},
        "features": {m: np.concatenate([r.features[m] for _, r in parts]).astype(np.float32) for m in first.features},
        "latents": {k: np.concatenate([s.trials[k] for s, _ in parts]) for k in LATENT_NAMES},
        "groups": np.concatenate([np.full(len(r.y), s.subject, dtype=np.int64) for s, r in parts]),
        "channels": first.channels,
        "feature_names": first.feature_names,
        "rates": first.rates,
        "recording": first,
    }


@register_dataset(
    "eeg_fnirs_sim",
    description="simulated simultaneous EEG + fNIRS with R/U/S ground truth (MNE-preprocessed epochs or features)",
    requires=_PHYSIO,
)
def load_eeg_fnirs_sim(
    n_subjects: int = 8,
    trials_per_subject: int = 40,
    representation: str = "signal",
    target: str = "e",
    seed: int = 0,
    eeg_sfreq: float = 128.0,
    fnirs_sfreq: float = 10.0,
    n_fnirs_channels: int = 8,
    eeg_resample: float | None = None,
    fnirs_resample: float | None = None,
    simulator: Mapping[str, Any] | None = None,
    eeg_pipeline: Mapping[str, Any] | None = None,
    fnirs_pipeline: Mapping[str, Any] | None = None,
) -> MultimodalDataset:
    """Simulated EEG + fNIRS epochs after the MNE / MNE-NIRS preprocessing (see ``docs/guide/eeg-fnirs.md``).

    ``representation="signal"``: ``eeg`` (16 channels × 4.5 s at ``eeg_sfreq``, 1–45 Hz, baseline-corrected, µV)
    and ``fnirs`` (HbO/HbR per source-detector pair × 20 s, 0.01–0.1 Hz, baseline-corrected, µM), both ``signal``
    (C, T). ``representation="features"``: ``eeg`` log band powers, relative band ratios and single-trial ERP
    features per channel; ``fnirs`` peak amplitude, time to peak and area per channel and chromophore (vectors).
    ``target`` picks the latent used as ``y`` (discrete → classification, continuous → regression). Groups are
    subjects. ``simulator`` overrides fields of :class:`~mmib.data.physio.eeg_fnirs_sim.EEGFNIRSSimConfig`;
    ``eeg_pipeline`` / ``fnirs_pipeline`` override :class:`~mmib.data.physio.preprocess.EEGPipeline` /
    :class:`~mmib.data.physio.preprocess.FNIRSPipeline`.
    """
    from mmib.data.physio.eeg_fnirs_sim import LATENT_NAMES, EEGFNIRSSimConfig, simulate_eeg_fnirs
    from mmib.data.physio.preprocess import EEGPipeline, FNIRSPipeline

    _check_representation("eeg_fnirs_sim", representation)
    if target not in LATENT_NAMES:
        raise DataValidationError(f"eeg_fnirs_sim: unknown target '{target}'; valid: {', '.join(LATENT_NAMES)}")
    sim_kw = dict(simulator or {})
    for k, v in (("n_subjects", n_subjects), ("trials_per_subject", trials_per_subject), ("seed", seed),
                 ("eeg_sfreq", eeg_sfreq), ("fnirs_sfreq", fnirs_sfreq), ("n_fnirs_channels", n_fnirs_channels)):  # fmt: skip
        sim_kw.setdefault(k, v)
    from mmib.errors import check_known

    for what, given, cls in (("eeg_fnirs_sim simulator option", sim_kw, EEGFNIRSSimConfig),
                             ("eeg_fnirs_sim eeg_pipeline option", eeg_pipeline or {}, EEGPipeline),
                             ("eeg_fnirs_sim fnirs_pipeline option", fnirs_pipeline or {}, FNIRSPipeline)):
        check_known(what, given, [f.name for f in dataclasses.fields(cls) if f.init])
    try:
        cfg = EEGFNIRSSimConfig(**sim_kw)
        eeg_cfg = EEGPipeline(**{"resample": eeg_resample, **dict(eeg_pipeline or {})})
        fnirs_cfg = FNIRSPipeline(**{"resample": fnirs_resample, **dict(fnirs_pipeline or {})})
    except TypeError as e:
        raise DataValidationError(f"eeg_fnirs_sim: bad simulator/pipeline option ({e})") from e
    arrays = eeg_fnirs_arrays(simulate_eeg_fnirs(cfg), eeg_cfg, fnirs_cfg)
    card = cfg.latent_cardinalities
    if representation == "signal":
        mods = tuple(
            ModalitySpec(m, "signal", tuple(arrays["signals"][m].shape[1:]), rate=arrays["rates"][m],
                         channels=tuple(arrays["channels"][m]))  # fmt: skip
            for m in ("eeg", "fnirs")
        )
        x = arrays["signals"]
    else:
        mods = tuple(ModalitySpec(m, "vector", (arrays["features"][m].shape[1],)) for m in ("eeg", "fnirs"))
        x = arrays["features"]
    y = arrays["latents"][target]
    discrete = card[target] > 0
    spec = DatasetSpec(
        name="eeg_fnirs_sim",
        modalities=mods,
        task="classification" if discrete else "regression",
        n_classes=card[target] if discrete else None,
        latents=card,
        description=f"simulated EEG + fNIRS ({representation}); y = latent '{target}'; groups = subjects",
    )
    return MultimodalDataset(
        spec, x, y=y.astype(np.int64) if discrete else y.astype(np.float32), latents=arrays["latents"],
        groups=arrays["groups"],
    )  # fmt: skip


CARDIO_TARGETS = ("none", "heart_rate", "breathing_rate")


def _cardio_dataset(name: str, w, description: str, target: str = "none") -> MultimodalDataset:
    if target not in CARDIO_TARGETS:
        raise UnknownNameError(f"target of data set '{name}'", target, list(CARDIO_TARGETS))
    mods = tuple(
        ModalitySpec(m, "signal", tuple(w.signals[m].shape[1:]), rate=w.rates[m], channels=(m,)) for m in w.signals
    )
    latents = {"heart_rate": w.heart_rate.astype(np.float32), "breathing_rate": w.breathing_rate.astype(np.float32)}
    # target "none": self-supervised use (retrieval Resp+ECG -> BVP); a rate: a regression task for supervised methods
    spec = DatasetSpec(
        name=name, modalities=mods, task="none" if target == "none" else "regression",
        latents={"heart_rate": 0, "breathing_rate": 0},
        description=description + ("" if target == "none" else f"; y = {target}"),
    )  # fmt: skip
    return MultimodalDataset(spec, w.signals, y=None if target == "none" else latents[target], latents=latents,
                             groups=w.groups)


@register_dataset(
    "cardio_pyphysio",
    description="real synchronized respiration, ECG, BVP (+EDA) from pyphysio, windowed (retrieval Resp+ECG→BVP)",
    requires=(("neurokit2", "physio"),),
)
def load_cardio_pyphysio(
    window_s: float = 8.0,
    stride_s: float = 0.5,
    block_s: float = 20.0,
    include_eda: bool = False,
    ecg_rate: float = 128.0,
    resp_rate: float = 16.0,
    bvp_rate: float = 64.0,
    eda_rate: float = 8.0,
    target: str = "none",
) -> MultimodalDataset:
    """pyphysio's real 120 s ECG/BVP/respiration recording in windows; groups = 20 s blocks; latents measured HR/BR;
    ``target``: ``none`` (no labels) or ``heart_rate`` / ``breathing_rate`` (regression)."""
    from mmib.data.physio.cardio import pyphysio_cardio_windows

    w = pyphysio_cardio_windows(
        window_s, stride_s, block_s, include_eda,
        rates={"ecg": ecg_rate, "resp": resp_rate, "bvp": bvp_rate, "eda": eda_rate},
    )  # fmt: skip
    return _cardio_dataset(
        "cardio_pyphysio", w, "real ECG/BVP/respiration (pyphysio medical.txt), windows grouped by block", target
    )


@register_dataset(
    "cardio_sim",
    description="neurokit2-simulated respiration, ECG, BVP (+EDA) driven by shared heart and breathing rates",
    requires=(("neurokit2", "physio"),),
)
def load_cardio_sim(
    n_subjects: int = 8,
    windows_per_subject: int = 48,
    window_s: float = 8.0,
    include_eda: bool = False,
    ecg_rate: float = 128.0,
    resp_rate: float = 16.0,
    bvp_rate: float = 64.0,
    eda_rate: float = 8.0,
    heart_rate_range: tuple[float, float] = (55.0, 110.0),
    breathing_rate_range: tuple[float, float] = (8.0, 24.0),
    respiratory_modulation: float = 0.2,
    noise: float = 0.05,
    ecg_method: str = "ecgsyn",
    seed: int = 0,
    target: str = "none",
) -> MultimodalDataset:
    """Simulated cardio-respiratory windows; latents heart_rate, breathing_rate (ground truth); groups = subjects;
    ``target``: ``none`` (no labels) or ``heart_rate`` / ``breathing_rate`` (regression)."""
    from mmib.data.physio.cardio import simulate_cardio_windows

    w = simulate_cardio_windows(
        n_subjects, windows_per_subject, window_s, include_eda,
        {"ecg": ecg_rate, "resp": resp_rate, "bvp": bvp_rate, "eda": eda_rate},
        tuple(heart_rate_range), tuple(breathing_rate_range), respiratory_modulation, noise, ecg_method, seed,
    )  # fmt: skip
    return _cardio_dataset("cardio_sim", w, "neurokit2 ECG/PPG/RSP simulated from shared heart and breathing rates",
                           target)


@register_dataset(
    "fnirs_pyphysio",
    description="real fNIRS (pyphysio, 26 channels, finger tapping vs rest) through the MNE-NIRS path",
    requires=(("mne", "physio"), ("mne_nirs", "physio"), ("h5py", "data")),
)
def load_fnirs_pyphysio(
    representation: str = "signal",
    tmin: float = -2.0,
    tmax: float = 15.0,
    rest_gap_s: float = 20.0,
    short_channel_regression: bool = True,
) -> MultimodalDataset:
    """pyphysio's real fNIRS recording: HbO/HbR epochs at tapping onsets (y = 1) and at rest (y = 0).

    Rest epochs tile the recording (from 20 s on) wherever no tapping block starts inside the epoch or within
    ``rest_gap_s`` before it (mostly the rest period before the first block). One modality (``fnirs``); useful for checking the fNIRS path and single-modality probes.
    """
    import mne

    from mmib.data.physio.io import read_pyphysio_fnirs
    from mmib.data.physio.preprocess_fnirs import FNIRSPipeline, fnirs_epochs, fnirs_features

    _check_representation("fnirs_pyphysio", representation)
    raw = read_pyphysio_fnirs()
    ann = raw.annotations
    onsets = np.asarray(ann.onset)
    rest_on = [
        float(t)
        for t in np.arange(20.0 - tmin, raw.times[-1] - tmax, tmax - tmin)
        if not np.any((onsets > t + tmin - rest_gap_s) & (onsets < t + tmax))
    ]
    raw.set_annotations(ann + mne.Annotations(rest_on, [0.0] * len(rest_on), ["rest"] * len(rest_on)))
    cfg = FNIRSPipeline(tmin=tmin, tmax=tmax, short_channel_regression=short_channel_regression)
    ep = fnirs_epochs(raw, cfg, conditions=("rest", "tapping"), source="pyphysio fnirs.ph")
    y = ep.events[:, 2] - 1
    if representation == "signal":
        x = ep.get_data(copy=True).astype(np.float32) * 1e6
        mod = ModalitySpec("fnirs", "signal", x.shape[1:], rate=float(ep.info["sfreq"]), channels=tuple(ep.ch_names))
    else:
        feats, _ = fnirs_features(ep)
        x = feats.reshape(len(y), -1).astype(np.float32)
        mod = ModalitySpec("fnirs", "vector", (x.shape[1],))
    spec = DatasetSpec("fnirs_pyphysio", (mod,), task="classification", n_classes=2,
                       description="real fNIRS (pyphysio): rest (0) vs finger tapping (1)")  # fmt: skip
    return MultimodalDataset(spec, {"fnirs": x}, y=y.astype(np.int64))
