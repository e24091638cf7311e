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

The fNIRS forward model (canonical HRF, optode layout, scalp field, the inverse of MNE's modified Beer–Lambert law) is
in :mod:`mmib.data.physio.fnirs_forward`, the signal primitives in :mod:`mmib.data.physio.sim_signals`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from mmib.data.physio.eeg_sim import STATE_RHYTHMS, simulate_eeg
from mmib.data.physio.fnirs_forward import (
    fnirs_raw_info,
    hrf_peak_latency,
    hrf_response,
    mbll_forward_matrices,
    scalp_field_signals,
)
from mmib.data.physio.montage import DEFAULT_EEG_CHANNELS, DEFAULT_FNIRS_PAIRS
from mmib.data.physio.sim_signals import band_noise, draw_seed, resampled, zscore

#: EEG frequency bands (Hz) used by the features and the "dominant band" ground truth
EEG_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}

TRIAL_DESCRIPTIONS = ("rest", "task")  # index = e

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
    raw_eeg, eeg_params = simulate_eeg(cfg, rng, subject, duration, trials, eeg_gain, meas_date, annotations)
    iaf, bg_uv, state_bands = (eeg_params[n] for n in ("individual_alpha_frequency", "background_uv", "state_bands"))

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
    cardiac = zscore(nk.ppg_simulate(duration=int(np.ceil(duration)) + 1, sampling_rate=fs_phys,
                                      heart_rate=heart_rate, random_state=draw_seed(rng)))  # fmt: skip
    resp = zscore(nk.rsp_simulate(duration=int(np.ceil(duration)) + 1, sampling_rate=fs_phys,
                                   respiratory_rate=breathing_rate, method="sinusoidal", random_state=draw_seed(rng)))  # fmt: skip
    cardiac = resampled(cardiac, fs_phys, ftimes)
    resp = resampled(resp, fs_phys, ftimes)
    systemic = zscore(nk.signal_noise(duration=n_f / fsn, sampling_rate=fsn, beta=1.0, random_state=draw_seed(rng))[:n_f])
    # (scalp_field: the same draws make the cerebral share, scaled by sqrt(1 - scalp_fraction), below)
    cer_o, cer_r = np.zeros((n_pairs, n_f)), np.zeros((n_pairs, n_f))
    for c in range(n_pairs):
        gc, gr, gs = rng.uniform(0.5, 1.5, 3)
        local = zscore(nk.signal_noise(duration=n_f / fsn, sampling_rate=fsn, beta=1.0, random_state=draw_seed(rng))[:n_f])
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
        mayer = np.sqrt(2.0) * band_noise(rng_x, n_f, fsn, (cfg.mayer_hz - 0.02, cfg.mayer_hz + 0.02))
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
            local = zscore(nk.signal_noise(duration=n_f / fsn, sampling_rate=fsn, beta=1.0,
                                            random_state=draw_seed(rng_x))[:n_f])  # fmt: skip
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
