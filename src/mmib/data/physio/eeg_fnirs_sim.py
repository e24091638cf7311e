"""Simulator of simultaneous EEG + fNIRS recordings with known redundant / unique / synergistic ground truth.

Issue 9; spec ``factorcl-comm-eeg-fnirs.md`` Part C (the physiological table) and D.5 (the simulator sketch).

Each subject gets one continuous recording: an EEG :class:`mne.io.RawArray` (16 channels of the 10-20 system,
volts) and an fNIRS :class:`mne.io.RawArray` of **raw light intensities** at two wavelengths
(``fnirs_cw_amplitude``), so that the real optical-density → modified Beer–Lambert path is exercised when they are
preprocessed. Both carry the same annotations, one per trial (``"task"`` when an activation event occurs, ``"rest"``
otherwise), at the trial marker. Per trial (= epoch) latents:

========== ============ ==================================================================================
latent     type         where it shows
========== ============ ==================================================================================
e          redundant    0/1 activation event: an ERP (N1/P3) and a gamma burst in EEG at ``t0`` *and* an HbO
                        rise / HbR dip through the canonical (Glover) HRF in fNIRS, starting at ``t0 + tau``
k          EEG-unique   cognitive state: which rhythm dominates the EEG during the trial (default alpha / beta)
A          fNIRS-unique metabolic amplitude level: the size of the haemodynamic response (``A_value`` in µM)
G          EEG-unique   neural intensity level: the amplitude of the gamma burst (``G_value`` in µV)
tau        synergistic  neurovascular coupling delay (s): EEG marks ``t0``, fNIRS ``t0 + tau``; only their
                        difference gives tau (approximately synergistic: fNIRS alone knows ``t0 + tau``)
efficiency synergistic  neural efficiency, ``log(G_value / G_ref) - log(A_value / A_ref)``: intensity per cost
synergy    pure synergy the control target of spec D.5: ``(G + A) mod 2``; with uniform, independent binary G and
                        A it is independent of each modality alone (exactly), so only both together decode it
t0         EEG          onset of the neural event after the trial marker (s)
========== ============ ==================================================================================

A, G, tau, efficiency and synergy are drawn for every trial but only *expressed* in trials with ``e = 1``; probe
them on those trials. Nuisance: 1/f background EEG (neurokit2 ``signal_noise``) mixed over the scalp, white channel
noise; in fNIRS a cardiac pulsation (neurokit2 PPG) and respiration (neurokit2 RSP) in HbO/HbR, 1/f systemic
fluctuations, motion spikes in optical density and multiplicative intensity noise. Subject-level variability (HRF
gain, mean coupling delay, individual alpha frequency, topographies, heart and breathing rates, noise levels, optode
coupling) makes subject-wise splits meaningful.

The HbO/HbR → optical density step is the exact inverse of MNE's :func:`mne.preprocessing.nirs.beer_lambert_law`:
its 2 × 2 matrix per channel is measured by applying MNE's own function to unit optical densities, so the simulator
and the preprocessing share extinction coefficients, source-detector distances and the partial pathlength factor.
"""

from __future__ import annotations

import datetime as _dt
import functools
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from mmib.data.physio.montage import DEFAULT_EEG_CHANNELS, DEFAULT_FNIRS_PAIRS, fnirs_layout, site_positions

#: EEG frequency bands (Hz) used by the features and the "dominant band" ground truth
EEG_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}

#: the rhythm each cognitive state adds (Hz; alpha is centred on the subject's individual alpha frequency) and the
#: 10-20 site at the centre of its topography
STATE_RHYTHMS: dict[str, tuple[tuple[float, float], str]] = {
    "theta": ((5.0, 7.0), "Fz"),
    "alpha": ((-1.0, 1.0), "Oz"),  # relative to the individual alpha frequency
    "beta": ((16.0, 24.0), "Cz"),
    "gamma": ((32.0, 42.0), "Fz"),
}

TRIAL_DESCRIPTIONS = ("rest", "task")  # index = e

_HRF_OVERSAMPLING = 10

LATENT_NAMES = ("e", "k", "A", "G", "tau", "efficiency", "synergy", "t0")


@dataclass
class EEGFNIRSSimConfig:
    """Parameters of the EEG + fNIRS simulator (defaults: 8 subjects × 40 trials, 128 Hz EEG, 10 Hz fNIRS).

    Effect sizes are in physical units: EEG amplitudes in µV (standard deviation at the centre of a topography for
    rhythms, peak for the ERP), HbO amplitudes in µM (peak of the response at the most responsive channel).
    """

    n_subjects: int = 8
    trials_per_subject: int = 40
    seed: int = 0
    # sensors and rates
    eeg_sfreq: float = 128.0
    eeg_channels: tuple[str, ...] = DEFAULT_EEG_CHANNELS
    fnirs_sfreq: float = 10.0
    n_fnirs_channels: int = 8
    wavelengths: tuple[float, float] = (760.0, 850.0)
    ppf: float = 6.0
    # trial structure (s)
    iti_range: tuple[float, float] = (24.0, 28.0)
    lead_in: float = 30.0
    t0_range: tuple[float, float] = (0.5, 2.5)
    tau_range: tuple[float, float] = (1.0, 3.0)
    activation_duration: float = 2.0
    # latents
    event_rate: float = 0.5
    states: tuple[str, ...] = ("alpha", "beta")
    amplitude_levels_um: tuple[float, ...] = (1.5, 3.0)
    gamma_levels_uv: tuple[float, ...] = (4.0, 10.0)
    # EEG effect sizes and nuisance (µV)
    erp_uv: float = 20.0
    state_uv: float = 14.0
    background_uv: float = 10.0
    eeg_noise_uv: float = 1.0
    # fNIRS effect sizes and nuisance
    hbr_ratio: float = 0.35
    cardiac_um: float = 0.5
    respiratory_um: float = 0.4
    systemic_um: float = 0.4
    motion_rate_per_min: float = 0.3
    motion_od: float = 0.05
    intensity_noise: float = 0.002
    # subject variability (relative sd of subject-level gains; shifts scale with it)
    subject_variability: float = 0.2
    level_jitter: float = 0.08
    # realism options (issue 21; all off by default so that the effect sizes of the R/U/S suite stay as they were)
    n_short_channels: int = 0
    short_separation_m: float = 0.008
    mayer_um: float = 0.0
    mayer_hz: float = 0.1
    erd_fraction: float = 0.0
    ers_fraction: float = 0.0
    fnirs_start_delay_s: float = 0.0
    fnirs_clock_drift_ppm: float = 0.0
    # scalp model (off: each channel's systemic physiology has its own gains, as before; see scalp_field_signals)
    scalp_field: bool = False
    scalp_fraction: float = 0.7
    scalp_length_m: float = 0.05
    scalp_gain_sd: float = 0.3
    short_path_ratio: float = 0.4

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                setattr(self, f.name, tuple(v))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter and what was expected."""

        def need(cond: bool, name: str, what: str) -> None:
            if not cond:
                raise ValueError(f"EEG+fNIRS simulator: {name} must be {what}, got {getattr(self, name)!r}")

        need(self.n_subjects >= 1, "n_subjects", ">= 1")
        need(self.trials_per_subject >= 2, "trials_per_subject", ">= 2")
        need(self.eeg_sfreq >= 100.0, "eeg_sfreq", ">= 100 Hz (gamma reaches 45 Hz)")
        need(2.0 <= self.fnirs_sfreq <= 50.0, "fnirs_sfreq", "in [2, 50] Hz")
        need(len(self.eeg_channels) >= 2, "eeg_channels", "at least 2 10-20 sites")
        need(len(self.wavelengths) == 2 and self.wavelengths[0] != self.wavelengths[1], "wavelengths", "2 distinct")
        need(self.ppf > 0, "ppf", "> 0")
        need(0.0 < self.event_rate <= 1.0, "event_rate", "in (0, 1]")
        need(len(self.states) >= 1 and all(s in STATE_RHYTHMS for s in self.states), "states",
             f"a non-empty subset of {tuple(STATE_RHYTHMS)}")  # fmt: skip
        need(len(set(self.states)) == len(self.states), "states", "without repeats")
        need(len(self.amplitude_levels_um) >= 1 and min(self.amplitude_levels_um) > 0, "amplitude_levels_um",
             "positive levels")  # fmt: skip
        need(len(self.gamma_levels_uv) >= 1 and min(self.gamma_levels_uv) > 0, "gamma_levels_uv", "positive levels")
        for name in ("iti_range", "t0_range", "tau_range"):
            lo, hi = getattr(self, name)
            need(0 <= lo <= hi, name, "(low, high) with 0 <= low <= high")
        need(self.iti_range[0] >= 15.0, "iti_range", "at least 15 s apart (the haemodynamic response is slow)")
        need(self.lead_in >= 5.0, "lead_in", ">= 5 s")
        need(self.activation_duration > 0, "activation_duration", "> 0")
        n_src = len({src for src, _ in DEFAULT_FNIRS_PAIRS[: self.n_fnirs_channels]})
        need(0 <= self.n_short_channels <= n_src, "n_short_channels", f"in [0, {n_src}] (one per source)")
        need(0.003 <= self.short_separation_m <= 0.012, "short_separation_m", "in [0.003, 0.012] m (short: < 1 cm)")
        need(0.05 <= self.mayer_hz <= 0.15, "mayer_hz", "in [0.05, 0.15] Hz")
        need(0.0 <= self.erd_fraction < 1.0, "erd_fraction", "in [0, 1)")
        need(abs(self.fnirs_clock_drift_ppm) <= 1000.0, "fnirs_clock_drift_ppm", "within ±1000 ppm")
        need(0.0 <= self.fnirs_start_delay_s <= self.lead_in / 2, "fnirs_start_delay_s", "in [0, lead_in / 2] s")
        need(0.0 <= self.scalp_fraction <= 1.0, "scalp_fraction", "in [0, 1]")
        need(0.005 <= self.scalp_length_m <= 0.5, "scalp_length_m", "in [0.005, 0.5] m")
        need(0.0 < self.short_path_ratio <= 1.0, "short_path_ratio", "in (0, 1]")
        for name in ("mayer_um", "ers_fraction", "scalp_gain_sd"):
            need(getattr(self, name) >= 0, name, ">= 0")
        for name in ("erp_uv", "state_uv", "background_uv", "eeg_noise_uv", "hbr_ratio", "cardiac_um",
                     "respiratory_um", "systemic_um", "motion_rate_per_min", "motion_od", "intensity_noise",
                     "subject_variability", "level_jitter"):  # fmt: skip
            need(getattr(self, name) >= 0, name, ">= 0")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @property
    def latent_cardinalities(self) -> dict[str, int]:
        """Latent name → number of values (0 for continuous), as in :class:`~mmib.data.spec.DatasetSpec`."""
        return {
            "e": 2,
            "k": len(self.states),
            "A": len(self.amplitude_levels_um),
            "G": len(self.gamma_levels_uv),
            "tau": 0,
            "efficiency": 0,
            "synergy": 2,
            "t0": 0,
        }


@dataclass
class SimulatedSubject:
    """One subject's simultaneous recording and its ground truth.

    Attributes:
        subject: subject index (0-based).
        eeg: EEG :class:`mne.io.RawArray` (volts), 10-20 montage, annotations at the trial markers.
        fnirs: fNIRS :class:`mne.io.RawArray` of raw intensities (``fnirs_cw_amplitude``), same annotations.
        trials: per-trial arrays: ``onset`` (s, trial marker), the latents of :data:`LATENT_NAMES`, ``A_value``
            (µM), ``G_value`` (µV), ``hbo_peak_um`` (true HbO peak at the most responsive channel, 0 without an
            event), ``hbo_peak_time`` (s after the marker, NaN without an event).
        fnirs_channel_weights: (n_fnirs_channels,) activation weight per source-detector pair (max 1).
        hbo_clean: (n_fnirs_channels, n_times) noise-free evoked HbO in µM at the fNIRS rate.
        params: subject-level parameters (gains, individual alpha frequency, heart/breathing rate, …).
    """

    subject: int
    eeg: Any
    fnirs: Any
    trials: dict[str, np.ndarray]
    fnirs_channel_weights: np.ndarray
    hbo_clean: np.ndarray
    params: dict[str, float] = field(default_factory=dict)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _topography(positions: np.ndarray, centre: np.ndarray, width_m: float = 0.06) -> np.ndarray:
    d2 = ((positions - centre[None, :]) ** 2).sum(axis=1)
    w = np.exp(-d2 / (2 * width_m**2))
    return w / w.max()


def _band_noise(rng: np.random.Generator, n: int, sfreq: float, band: tuple[float, float]) -> np.ndarray:
    """Unit-variance narrow-band Gaussian noise (MNE FIR band-pass of white noise)."""
    import mne

    white = rng.standard_normal(n)
    x = mne.filter.filter_data(white[None, :], sfreq, band[0], band[1], verbose=False)[0]
    return x / x.std()


def _gate(times: np.ndarray, start: float, stop: float, ramp: float = 0.5) -> np.ndarray:
    """0/1 window on [start, stop] with raised-cosine ramps of ``ramp`` seconds."""
    g = np.zeros_like(times)
    inside = (times >= start) & (times <= stop)
    g[inside] = 1.0
    up = (times >= start - ramp) & (times < start)
    g[up] = 0.5 - 0.5 * np.cos(np.pi * (times[up] - (start - ramp)) / ramp)
    down = (times > stop) & (times <= stop + ramp)
    g[down] = 0.5 + 0.5 * np.cos(np.pi * (times[down] - stop) / ramp)
    return g


def _resampled(x: np.ndarray, sfreq_in: float, times_out: np.ndarray) -> np.ndarray:
    t_in = np.arange(x.shape[-1]) / sfreq_in
    return np.interp(times_out, t_in, x)


def _zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return (x - x.mean()) / (x.std() + 1e-12)


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
    systemic = _zscore(nk.signal_noise(duration=n_f / sfreq, sampling_rate=sfreq, beta=1.0,
                                       random_state=_seed(rng))[:n_f])  # fmt: skip
    waves = [(cardiac, cfg.cardiac_um, 0.3), (resp, cfg.respiratory_um, 0.3), (mayer, cfg.mayer_um, -0.3),
             (systemic, cfg.systemic_um, -0.3)]  # fmt: skip
    field_o, field_r = np.zeros((len(points), n_f)), np.zeros((len(points), n_f))
    for wave, amp, hbr_ratio in waves:
        gain = np.exp(cfg.scalp_gain_sd * (chol @ rng.standard_normal(len(points))))
        field_o += gain[:, None] * (amp * wave)[None, :]
        field_r += hbr_ratio * gain[:, None] * (amp * wave)[None, :]
    local = np.stack([_zscore(nk.signal_noise(duration=n_f / sfreq, sampling_rate=sfreq, beta=1.0,
                                              random_state=_seed(rng))[:n_f]) for _ in points])  # fmt: skip
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


def simulate_subject(cfg: EEGFNIRSSimConfig, subject: int, rng: np.random.Generator) -> SimulatedSubject:
    """Simulate one subject's recording (see the module docstring)."""
    import mne
    import neurokit2 as nk

    sv = cfg.subject_variability
    n_tr = cfg.trials_per_subject
    # ---------------------------------------------------------------- trial schedule and latents
    iti = rng.uniform(*cfg.iti_range, size=n_tr)
    onsets = cfg.lead_in + np.concatenate([[0.0], np.cumsum(iti[:-1])])
    duration = float(onsets[-1] + cfg.iti_range[1] + 10.0)
    e = (rng.random(n_tr) < cfg.event_rate).astype(np.int64)
    k = rng.integers(0, len(cfg.states), n_tr)
    a_lvl = rng.integers(0, len(cfg.amplitude_levels_um), n_tr)
    g_lvl = rng.integers(0, len(cfg.gamma_levels_uv), n_tr)
    t0 = rng.uniform(*cfg.t0_range, size=n_tr)
    tau_shift = rng.normal(0.0, 0.5 * sv)  # subject's mean coupling delay offset (s)
    lo, hi = cfg.tau_range
    tau = np.clip(rng.uniform(lo, hi, size=n_tr) + tau_shift, max(lo - 1.0, 0.2), hi + 1.0)
    hrf_gain = float(np.exp(rng.normal(0.0, sv)))
    a_value = np.asarray(cfg.amplitude_levels_um)[a_lvl] * hrf_gain * np.exp(rng.normal(0, cfg.level_jitter, n_tr))
    eeg_gain = float(np.exp(rng.normal(0.0, sv)))
    g_value = np.asarray(cfg.gamma_levels_uv)[g_lvl] * eeg_gain * np.exp(rng.normal(0, cfg.level_jitter, n_tr))
    efficiency = np.log(g_value / cfg.gamma_levels_uv[0]) - np.log(a_value / cfg.amplitude_levels_um[0])
    synergy = (g_lvl + a_lvl) % 2
    peak_lat = hrf_peak_latency(cfg.activation_duration)
    trials = {
        "onset": onsets,
        "e": e,
        "k": k,
        "A": a_lvl,
        "G": g_lvl,
        "tau": tau,
        "efficiency": efficiency,
        "synergy": synergy,
        "t0": t0,
        "A_value": a_value,
        "G_value": g_value,
        "hbo_peak_um": np.where(e == 1, a_value, 0.0),
        "hbo_peak_time": np.where(e == 1, t0 + tau + peak_lat, np.nan),
    }
    meas_date = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(days=subject)
    annotations = mne.Annotations(
        onset=onsets, duration=np.zeros(n_tr), description=[TRIAL_DESCRIPTIONS[i] for i in e], orig_time=meas_date
    )

    # ---------------------------------------------------------------- EEG
    fs = cfg.eeg_sfreq
    n_eeg = int(round(duration * fs))
    times = np.arange(n_eeg) / fs
    pos = site_positions(cfg.eeg_channels)
    n_ch = len(cfg.eeg_channels)
    jitter = lambda: rng.normal(0.0, 0.01 * sv / 0.2, 3)  # noqa: E731  (topography centre jitter, m)
    # 1/f background: independent sources at the electrodes, smeared over the scalp by volume conduction
    sources = np.stack([nk.signal_noise(duration=n_eeg / fs, sampling_rate=fs, beta=1.0, random_state=_seed(rng))
                        for _ in range(n_ch)])[:, :n_eeg]  # fmt: skip
    sources = (sources - sources.mean(axis=1, keepdims=True)) / sources.std(axis=1, keepdims=True)
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(axis=-1)
    mixing = np.exp(-d2 / (2 * 0.04**2))
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)
    bg_uv = cfg.background_uv * float(np.exp(rng.normal(0.0, 0.5 * sv)))
    eeg = bg_uv * (mixing @ sources)
    eeg += cfg.eeg_noise_uv * rng.standard_normal((n_ch, n_eeg))
    # cognitive state rhythms, on during each trial of that state
    iaf = float(np.clip(rng.normal(10.0, 0.8 * sv / 0.2), 8.5, 11.5))
    state_bands = {}
    # event-related (de)synchronization of the ongoing rhythm: ERD during the activation, ERS (rebound) after it
    erd_ers = np.ones(n_eeg)
    for i in np.flatnonzero(e == 1) if (cfg.erd_fraction or cfg.ers_fraction) else []:
        t_ev = onsets[i] + t0[i]
        erd_ers -= cfg.erd_fraction * _gate(times, t_ev, t_ev + cfg.activation_duration, ramp=0.3)
        erd_ers += cfg.ers_fraction * _gate(times, t_ev + cfg.activation_duration + 0.3,
                                            t_ev + cfg.activation_duration + 1.3, ramp=0.3)  # fmt: skip
    for s, name in enumerate(cfg.states):
        (flo, fhi), site = STATE_RHYTHMS[name]
        band = (iaf + flo, iaf + fhi) if name == "alpha" else (flo, fhi)
        state_bands[name] = band
        topo = _topography(pos, site_positions([site])[0] + jitter())
        gate = np.zeros(n_eeg)
        for i in np.flatnonzero(k == s):
            gate = np.maximum(gate, _gate(times, onsets[i] - 1.0, onsets[i] + cfg.iti_range[0] - 6.0))
        rhythm = _band_noise(rng, n_eeg, fs, band) * gate * erd_ers
        eeg += cfg.state_uv * eeg_gain * topo[:, None] * rhythm[None, :]
    # activation events: ERP (N1 + P3) and a gamma burst of intensity G_value at t0
    erp_topo_p3 = _topography(pos, site_positions(["Pz"])[0] + jitter())
    erp_topo_n1 = _topography(pos, site_positions(["Cz"])[0] + jitter())
    gamma_topo = _topography(pos, site_positions(["Fz"])[0] + jitter())
    gamma_src = _band_noise(rng, n_eeg, fs, (32.0, 42.0))
    erp_gain = cfg.erp_uv * eeg_gain
    burst = np.zeros(n_eeg)
    for i in np.flatnonzero(e == 1):
        t_ev = onsets[i] + t0[i]
        seg = (times > t_ev - 0.2) & (times < t_ev + 1.0)
        tt = times[seg] - t_ev
        eeg[:, seg] += erp_gain * (
            -0.6 * erp_topo_n1[:, None] * np.exp(-((tt - 0.1) ** 2) / (2 * 0.03**2))[None, :]
            + erp_topo_p3[:, None] * np.exp(-((tt - 0.3) ** 2) / (2 * 0.08**2))[None, :]
        )
        burst = np.maximum(burst, g_value[i] * _gate(times, t_ev + 0.1, t_ev + 0.6, ramp=0.1))
    eeg += gamma_topo[:, None] * (burst * gamma_src)[None, :]
    eeg_info = mne.create_info(list(cfg.eeg_channels), fs, ch_types="eeg")
    raw_eeg = mne.io.RawArray(eeg * 1e-6, eeg_info, verbose=False)
    from mmib.data.physio.montage import standard_montage

    raw_eeg.set_montage(standard_montage(), on_missing="warn", verbose=False)
    raw_eeg.set_meas_date(meas_date)
    raw_eeg.info["subject_info"] = {"his_id": f"sub-{subject + 1:02d}"}
    raw_eeg.set_annotations(annotations)

    # ---------------------------------------------------------------- fNIRS
    fsn = cfg.fnirs_sfreq
    n_f = int(round(duration * fsn))
    ftimes = np.arange(n_f) / fsn
    n_pairs = cfg.n_fnirs_channels
    weights = rng.uniform(0.4, 1.0, n_pairs)
    weights[int(rng.integers(0, n_pairs))] = 1.0
    weights /= weights.max()
    ev = np.flatnonzero(e == 1)
    evoked = hrf_response(ftimes, onsets[ev] + t0[ev] + tau[ev], a_value[ev], cfg.activation_duration)
    hbo_clean = weights[:, None] * evoked[None, :]
    hbr_ratio = cfg.hbr_ratio * float(np.exp(rng.normal(0.0, 0.5 * sv)))
    hbo = hbo_clean.copy()
    hbr = -hbr_ratio * hbo_clean
    # systemic physiology shared by all channels (channel gains vary): cardiac, respiratory, 1/f
    heart_rate = float(np.clip(rng.normal(70.0, 8.0), 50.0, 100.0))
    breathing_rate = float(np.clip(rng.normal(15.0, 2.5), 8.0, 24.0))
    fs_phys = 50.0
    cardiac = _zscore(nk.ppg_simulate(duration=int(np.ceil(duration)) + 1, sampling_rate=fs_phys,
                                      heart_rate=heart_rate, random_state=_seed(rng)))  # fmt: skip
    resp = _zscore(nk.rsp_simulate(duration=int(np.ceil(duration)) + 1, sampling_rate=fs_phys,
                                   respiratory_rate=breathing_rate, method="sinusoidal", random_state=_seed(rng)))  # fmt: skip
    cardiac = _resampled(cardiac, fs_phys, ftimes)
    resp = _resampled(resp, fs_phys, ftimes)
    systemic = _zscore(nk.signal_noise(duration=n_f / fsn, sampling_rate=fsn, beta=1.0, random_state=_seed(rng))[:n_f])
    # (scalp_field: the same draws make the cerebral share, scaled by sqrt(1 - scalp_fraction), below)
    cer_o, cer_r = np.zeros((n_pairs, n_f)), np.zeros((n_pairs, n_f))
    for c in range(n_pairs):
        gc, gr, gs = rng.uniform(0.5, 1.5, 3)
        local = _zscore(nk.signal_noise(duration=n_f / fsn, sampling_rate=fsn, beta=1.0, random_state=_seed(rng))[:n_f])
        if cfg.scalp_field:
            cer_o[c] = gc * cfg.cardiac_um * cardiac + gr * cfg.respiratory_um * resp
            cer_o[c] += cfg.systemic_um * (gs * systemic + 0.5 * local)
            cer_r[c] = 0.3 * gc * cfg.cardiac_um * cardiac + 0.3 * gr * cfg.respiratory_um * resp
            cer_r[c] += -0.3 * cfg.systemic_um * (gs * systemic + 0.5 * local)
            continue
        hbo[c] += gc * cfg.cardiac_um * cardiac + gr * cfg.respiratory_um * resp
        hbo[c] += cfg.systemic_um * (gs * systemic + 0.5 * local)
        hbr[c] += 0.3 * gc * cfg.cardiac_um * cardiac + 0.3 * gr * cfg.respiratory_um * resp
        hbr[c] += -0.3 * cfg.systemic_um * (gs * systemic + 0.5 * local)
    # realism options draw from their own generator, so the defaults reproduce earlier simulations bit for bit
    rng_x = np.random.default_rng([cfg.seed, subject, 21])
    n_short = cfg.n_short_channels
    mayer = np.zeros(n_f)
    if cfg.mayer_um:  # ~0.1 Hz blood-pressure oscillation: narrow-band noise, amplitude ≈ mayer_um
        mayer = np.sqrt(2.0) * _band_noise(rng_x, n_f, fsn, (cfg.mayer_hz - 0.02, cfg.mayer_hz + 0.02))
        for c in range(n_pairs):
            gm = rng_x.uniform(0.7, 1.3)
            if cfg.scalp_field:
                cer_o[c] += gm * cfg.mayer_um * mayer
                cer_r[c] += -0.3 * gm * cfg.mayer_um * mayer
                continue
            hbo[c] += gm * cfg.mayer_um * mayer
            hbr[c] += -0.3 * gm * cfg.mayer_um * mayer
    if cfg.scalp_field:  # extracerebral share from one scalp field, seen by long and short channels alike
        scalp_o, scalp_r = scalp_field_signals(cfg, rng_x, cardiac, resp, mayer, fsn)
        f = cfg.scalp_fraction
        hbo = hbo + np.sqrt(1.0 - f) * cer_o + np.sqrt(f) * scalp_o[:n_pairs]
        hbr = hbr + np.sqrt(1.0 - f) * cer_r + np.sqrt(f) * scalp_r[:n_pairs]
        if n_short:
            hbo, hbr = np.vstack([hbo, np.sqrt(f) * scalp_o[n_pairs:]]), np.vstack([hbr, np.sqrt(f) * scalp_r[n_pairs:]])
    elif n_short:  # legacy: scalp only, the same systemic waveforms with their own gains, no cerebral response
        sh_o, sh_r = np.zeros((n_short, n_f)), np.zeros((n_short, n_f))
        for c in range(n_short):
            gc, gr, gs, gm = rng_x.uniform(0.7, 1.3, 4)
            local = _zscore(nk.signal_noise(duration=n_f / fsn, sampling_rate=fsn, beta=1.0,
                                            random_state=_seed(rng_x))[:n_f])  # fmt: skip
            sys_o = gc * cfg.cardiac_um * cardiac + gr * cfg.respiratory_um * resp + gm * cfg.mayer_um * mayer
            sh_o[c] = sys_o + cfg.systemic_um * (gs * systemic + 0.25 * local)
            sh_r[c] = 0.3 * (gc * cfg.cardiac_um * cardiac + gr * cfg.respiratory_um * resp)
            sh_r[c] += -0.3 * (gm * cfg.mayer_um * mayer + cfg.systemic_um * (gs * systemic + 0.25 * local))
        hbo, hbr = np.vstack([hbo, sh_o]), np.vstack([hbr, sh_r])
    n_all = n_pairs + n_short
    info = fnirs_raw_info(cfg)
    forward = mbll_forward_matrices(info, cfg.ppf)  # (n_all, 2, 2), mol/L → OD
    hb = np.stack([hbo, hbr], axis=1) * 1e-6  # (n_all, 2, n_f) in mol/L
    od = np.einsum("pij,pjt->pit", forward, hb)
    # motion: spikes shared by all channels (fast rise, ~1 s decay), channel-specific size and sign
    n_motion = rng.poisson(cfg.motion_rate_per_min * duration / 60.0)
    for t_m in rng.uniform(5.0, duration - 5.0, n_motion):
        shape = np.where(ftimes >= t_m, np.exp(-np.clip(ftimes - t_m, 0.0, None) / 1.0), 0.0)
        amp = cfg.motion_od * rng.uniform(0.5, 1.5, (n_pairs, 1)) * rng.choice([-1.0, 1.0], (n_pairs, 1))
        if n_short:
            amp_s = cfg.motion_od * rng_x.uniform(0.5, 1.5, (n_short, 1)) * rng_x.choice([-1.0, 1.0], (n_short, 1))
            amp = np.vstack([amp, amp_s])
        od += (amp * np.array([1.0, 0.9])[None, :])[:, :, None] * shape[None, None, :]
    delay, rate = cfg.fnirs_start_delay_s, 1.0 + cfg.fnirs_clock_drift_ppm * 1e-6
    if delay or rate != 1.0:  # the fNIRS device's samples: its clock reads (t - delay) * rate at EEG time t
        n_dev = int(np.floor((duration - delay) * rate * fsn))
        t_true = delay + np.arange(n_dev) / fsn / rate
        od = np.stack([[np.interp(t_true, ftimes, od[p, w]) for w in range(2)] for p in range(n_all)])
    n_dev = od.shape[-1]
    i0 = 0.01 * np.exp(rng.normal(0.0, 0.5, (n_pairs, 2)))  # optode coupling / baseline intensity
    if n_short:
        i0 = np.vstack([i0, 0.05 * np.exp(rng_x.normal(0.0, 0.3, (n_short, 2)))])  # short: more light
    intensity = i0[:, :, None] * np.exp(-od)
    noise = rng.standard_normal((n_pairs, 2, n_f))
    if n_short:
        noise = np.concatenate([noise, rng_x.standard_normal((n_short, 2, n_f))])
    if n_dev > n_f:
        noise = np.concatenate([noise, rng_x.standard_normal((n_all, 2, n_dev - n_f))], axis=-1)
    noise = noise[..., :n_dev]
    intensity *= 1.0 + cfg.intensity_noise * noise
    raw_fnirs = mne.io.RawArray(intensity.reshape(2 * n_all, n_dev), info, verbose=False)
    raw_fnirs.set_meas_date(meas_date + _dt.timedelta(seconds=delay))
    raw_fnirs.info["subject_info"] = {"his_id": f"sub-{subject + 1:02d}"}
    fn_ann = annotations.copy()
    if delay or rate != 1.0:
        fn_ann = mne.Annotations((onsets - delay) * rate, np.zeros(n_tr), list(annotations.description),
                                 orig_time=meas_date + _dt.timedelta(seconds=delay))  # fmt: skip
    raw_fnirs.set_annotations(fn_ann)
    params = {
        "hrf_gain": hrf_gain,
        "eeg_gain": eeg_gain,
        "tau_shift": tau_shift,
        "individual_alpha_frequency": iaf,
        "heart_rate": heart_rate,
        "breathing_rate": breathing_rate,
        "hbr_ratio": hbr_ratio,
        "background_uv": bg_uv,
        "hrf_peak_latency": peak_lat,
        "n_motion_events": int(n_motion),
    }
    for name, band in state_bands.items():
        params[f"{name}_band_low"], params[f"{name}_band_high"] = band
    return SimulatedSubject(subject, raw_eeg, raw_fnirs, trials, weights, hbo_clean, params)


def simulate_eeg_fnirs(cfg: EEGFNIRSSimConfig | None = None, **overrides: Any) -> list[SimulatedSubject]:
    """Simulate ``cfg.n_subjects`` subjects (``overrides`` replace fields of ``cfg``); deterministic in ``cfg.seed``."""
    if cfg is None:
        cfg = EEGFNIRSSimConfig(**overrides)
    elif overrides:
        cfg = EEGFNIRSSimConfig(**{**cfg.to_dict(), **overrides})
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(cfg.n_subjects)]
    return [simulate_subject(cfg, i, rngs[i]) for i in range(cfg.n_subjects)]
