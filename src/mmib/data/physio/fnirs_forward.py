"""The fNIRS forward model of the EEG + fNIRS simulator: the canonical haemodynamic response, the optode layout with
its short-separation channels, the extracerebral (scalp) field and the HbO/HbR → optical density map.

The HbO/HbR → optical density step is the exact inverse of MNE's :func:`mne.preprocessing.nirs.beer_lambert_law`:
its 2 × 2 matrix per channel is measured by applying MNE's own function to unit optical densities, so the simulator
and the preprocessing share extinction coefficients, source-detector distances and the partial pathlength factor.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from mmib.data.physio.montage import fnirs_layout
from mmib.data.physio.sim_signals import draw_seed, zscore

if TYPE_CHECKING:
    from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig

_HRF_OVERSAMPLING = 10


def hrf_response(frame_times: np.ndarray, onsets, amplitudes, duration: float) -> np.ndarray:
    """Sum of canonical (Glover, nilearn) responses to blocks of ``duration`` s, each with peak ``amplitude``.

    ``frame_times`` must be evenly spaced; nilearn convolves on a grid ``_HRF_OVERSAMPLING`` times finer.
    """
    from nilearn.glm.first_level import compute_regressor

    onsets = np.asarray(onsets, dtype=float)
    amplitudes = np.asarray(amplitudes, dtype=float)
    if onsets.size == 0:
        return np.zeros_like(frame_times, dtype=float)
    dt = float(frame_times[1] - frame_times[0])
    unit_times = np.arange(0.0, 45.0 + duration, dt)
    unit, _ = compute_regressor(
        (np.array([1.0]), np.array([duration]), np.array([1.0])), "glover", unit_times, oversampling=_HRF_OVERSAMPLING
    )
    reg, _ = compute_regressor(
        (onsets, np.full(onsets.shape, duration), amplitudes), "glover", frame_times, oversampling=_HRF_OVERSAMPLING
    )
    return reg[:, 0] / float(np.max(unit))


@functools.lru_cache(maxsize=32)
def hrf_peak_latency(duration: float, resolution: float = 0.01) -> float:
    """Seconds from the onset of a ``duration`` s block to the peak of its canonical (Glover) response."""
    from nilearn.glm.first_level import compute_regressor

    times = np.arange(0.0, 35.0 + duration, resolution)
    reg, _ = compute_regressor(
        (np.array([0.0]), np.array([duration]), np.array([1.0])), "glover", times, oversampling=1
    )
    return float(times[int(np.argmax(reg[:, 0]))])


def short_channel_layout(cfg: EEGFNIRSSimConfig, names, src, det):
    """Short-separation channels: one per source (the first ``n_short_channels`` sources), its own detector
    ``short_separation_m`` away on the scalp (tangent to the head, towards the long channel's detector)."""
    out_names, out_src, out_det = [], [], []
    n_det = max(int(n.split("_D")[1]) for n in names)
    seen: list[str] = []
    for n, s_pos, d_pos in zip(names, src, det):
        s_name = n.split("_")[0]
        if s_name in seen or len(seen) >= cfg.n_short_channels:
            continue
        seen.append(s_name)
        radial = s_pos / np.linalg.norm(s_pos)
        toward = (d_pos - s_pos) - np.dot(d_pos - s_pos, radial) * radial
        out_names.append(f"{s_name}_D{n_det + len(seen)}")
        out_src.append(s_pos)
        out_det.append(s_pos + cfg.short_separation_m * toward / np.linalg.norm(toward))
    return out_names, np.array(out_src).reshape(-1, 3), np.array(out_det).reshape(-1, 3)


def fnirs_optode_positions(cfg: EEGFNIRSSimConfig) -> tuple[np.ndarray, np.ndarray]:
    """(n_all, 3) source and detector positions (m) of every channel: the long ones, then the short ones."""
    names, src, det = fnirs_layout(cfg.n_fnirs_channels)
    if cfg.n_short_channels:
        _, ss, sd = short_channel_layout(cfg, names, src, det)
        src, det = np.vstack([src, ss]), np.vstack([det, sd])
    return src, det


def scalp_field_signals(cfg: EEGFNIRSSimConfig, rng: np.random.Generator, cardiac: np.ndarray, resp: np.ndarray,
                        mayer: np.ndarray, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """Extracerebral (scalp) HbO and HbR of every channel (µM, as each channel's Beer–Lambert law reports it).

    One scalp field over the head, sampled where the light crosses the scalp: under a channel's source and under its
    detector (the superficial sensitivity of a source-detector pair is concentrated there), so a long channel sees
    the mean of the field at its two optodes and a short channel the field at its source (its detector is 8 mm
    away). The field is the body's systemic waveforms (the cardiac, respiratory, Mayer and 1/f waveforms that drive
    the cerebral share too) with spatially smooth gains ``exp(scalp_gain_sd · Φ(x))``, plus a spatially smooth 1/f
    field (``0.5 · systemic_um``); every Φ is a Gaussian random field with squared-exponential covariance of length
    ``scalp_length_m``. Amplitudes are those of a long channel (``cardiac_um``, …); a short channel's light travels
    ``short_path_ratio`` times the long channel's path in the scalp over a ``d_long / d_short`` times shorter
    separation, which scales its apparent concentration. HbR/HbO ratios are those of the cerebral share.

    Returns:
        ``(hbo, hbr)``, each (n_fnirs_channels + n_short_channels, n_times).
    """
    import neurokit2 as nk

    src, det = fnirs_optode_positions(cfg)
    n_all, n_pairs, n_f = len(src), cfg.n_fnirs_channels, len(cardiac)
    points, index = np.unique(np.round(np.vstack([src, det]), 6), axis=0, return_inverse=True)
    index = np.asarray(index).ravel()
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    chol = np.linalg.cholesky(np.exp(-d2 / (2 * cfg.scalp_length_m**2)) + 1e-6 * np.eye(len(points)))
    systemic = zscore(nk.signal_noise(duration=n_f / sfreq, sampling_rate=sfreq, beta=1.0,
                                       random_state=draw_seed(rng))[:n_f])  # fmt: skip
    waves = [(cardiac, cfg.cardiac_um, 0.3), (resp, cfg.respiratory_um, 0.3), (mayer, cfg.mayer_um, -0.3),
             (systemic, cfg.systemic_um, -0.3)]  # fmt: skip
    field_o, field_r = np.zeros((len(points), n_f)), np.zeros((len(points), n_f))
    for wave, amp, hbr_ratio in waves:
        gain = np.exp(cfg.scalp_gain_sd * (chol @ rng.standard_normal(len(points))))
        field_o += gain[:, None] * (amp * wave)[None, :]
        field_r += hbr_ratio * gain[:, None] * (amp * wave)[None, :]
    local = np.stack([zscore(nk.signal_noise(duration=n_f / sfreq, sampling_rate=sfreq, beta=1.0,
                                              random_state=draw_seed(rng))[:n_f]) for _ in points])  # fmt: skip
    local = chol @ local / np.sqrt((chol**2).sum(axis=1, keepdims=True))
    field_o += 0.5 * cfg.systemic_um * local
    field_r += -0.3 * 0.5 * cfg.systemic_um * local
    at_src, at_det = index[:n_all], index[n_all:]
    hbo = 0.5 * (field_o[at_src] + field_o[at_det])
    hbr = 0.5 * (field_r[at_src] + field_r[at_det])
    dist = np.linalg.norm(src - det, axis=1)
    scale = np.ones(n_all)
    scale[n_pairs:] = cfg.short_path_ratio * dist[:n_pairs].mean() / dist[n_pairs:]
    return scale[:, None] * hbo, scale[:, None] * hbr


def fnirs_raw_info(cfg: EEGFNIRSSimConfig):
    """MNE ``Info`` of raw-intensity fNIRS channels (``S<i>_D<j> <wavelength>``) with optode positions; the
    ``n_short_channels`` short-separation channels come after the long ones."""
    import mne

    names, src, det = fnirs_layout(cfg.n_fnirs_channels)
    if cfg.n_short_channels:
        sn, ss, sd = short_channel_layout(cfg, names, src, det)
        names, src, det = list(names) + sn, np.vstack([src, ss]), np.vstack([det, sd])
    ch_names = [f"{n} {int(w)}" for n in names for w in cfg.wavelengths]
    info = mne.create_info(ch_names, cfg.fnirs_sfreq, ch_types="fnirs_cw_amplitude")
    for i, ch in enumerate(info["chs"]):
        p = i // 2
        ch["loc"][3:6] = src[p]
        ch["loc"][6:9] = det[p]
        ch["loc"][0:3] = (src[p] + det[p]) / 2
        ch["loc"][9] = cfg.wavelengths[i % 2]
    return info


def mbll_forward_matrices(info, ppf: float) -> np.ndarray:
    """(n_pairs, 2, 2) maps from [ΔHbO, ΔHbR] (mol/L) to [ΔOD(λ1), ΔOD(λ2)], the inverse of MNE's MBLL.

    Measured by running :func:`mne.preprocessing.nirs.beer_lambert_law` on unit optical densities of a probe
    recording with the same channels, so the forward model matches MNE's coefficients exactly.
    """
    import mne

    n = len(info["ch_names"])
    od_info = info.copy()
    with od_info._unlock():
        for ch in od_info["chs"]:
            ch["kind"] = mne.io.constants.FIFF.FIFFV_FNIRS_CH
            ch["coil_type"] = mne.io.constants.FIFF.FIFFV_COIL_FNIRS_OD
    probe = np.zeros((n, 2))
    probe[0::2, 0] = 1.0
    probe[1::2, 1] = 1.0
    raw_od = mne.io.RawArray(probe, od_info, verbose=False)
    hb = mne.preprocessing.nirs.beer_lambert_law(raw_od, ppf=ppf).get_data()
    inv = np.stack([hb[2 * p : 2 * p + 2, :] for p in range(n // 2)])  # [hbo; hbr] per unit OD at λ1, λ2
    return np.linalg.inv(inv)
