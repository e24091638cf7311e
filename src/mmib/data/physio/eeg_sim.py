"""The EEG of the EEG + fNIRS simulator (issue 9; spec ``factorcl-comm-eeg-fnirs.md`` D.5): 1/f background mixed over
the scalp, the cognitive-state rhythms with event-related (de)synchronization, the ERP (N1 + P3) and the gamma burst of
each activation event. :func:`mmib.data.physio.eeg_fnirs_sim.simulate_subject` calls :func:`simulate_eeg` between the
trial latents and the fNIRS, with the same generator, so the draws come in the order of the original single function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mmib.data.physio.montage import site_positions
from mmib.data.physio.sim_signals import band_noise, draw_seed, raised_cosine_gate, topography

if TYPE_CHECKING:
    from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig

#: the rhythm each cognitive state adds (Hz; alpha is centred on the subject's individual alpha frequency) and the
#: 10-20 site at the centre of its topography
STATE_RHYTHMS: dict[str, tuple[tuple[float, float], str]] = {
    "theta": ((5.0, 7.0), "Fz"),
    "alpha": ((-1.0, 1.0), "Oz"),  # relative to the individual alpha frequency
    "beta": ((16.0, 24.0), "Cz"),
    "gamma": ((32.0, 42.0), "Fz"),
}


def simulate_eeg(cfg: EEGFNIRSSimConfig, rng: np.random.Generator, subject: int, duration: float,
                 trials: dict[str, np.ndarray], eeg_gain: float, meas_date: Any, annotations: Any
                 ) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """One subject's EEG :class:`mne.io.RawArray` (volts, 10-20 montage, the trial annotations) and its subject-level
    parameters (``individual_alpha_frequency``, ``background_uv``, ``state_bands``: the band of each state's rhythm).

    ``trials`` holds the trial markers (``onset``) and the latents ``e``, ``k``, ``t0`` and ``G_value``.
    """
    import mne
    import neurokit2 as nk

    sv = cfg.subject_variability
    onsets, e, k, t0, g_value = (trials[n] for n in ("onset", "e", "k", "t0", "G_value"))
    fs = cfg.eeg_sfreq
    n_eeg = int(round(duration * fs))
    times = np.arange(n_eeg) / fs
    pos = site_positions(cfg.eeg_channels)
    n_ch = len(cfg.eeg_channels)
    jitter = lambda: rng.normal(0.0, 0.01 * sv / 0.2, 3)  # noqa: E731  (topography centre jitter, m)
    # 1/f background: independent sources at the electrodes, smeared over the scalp by volume conduction
    sources = np.stack([nk.signal_noise(duration=n_eeg / fs, sampling_rate=fs, beta=1.0, random_state=draw_seed(rng))
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
        erd_ers -= cfg.erd_fraction * raised_cosine_gate(times, t_ev, t_ev + cfg.activation_duration, ramp=0.3)
        erd_ers += cfg.ers_fraction * raised_cosine_gate(times, t_ev + cfg.activation_duration + 0.3,
                                            t_ev + cfg.activation_duration + 1.3, ramp=0.3)  # fmt: skip
    for s, name in enumerate(cfg.states):
        (flo, fhi), site = STATE_RHYTHMS[name]
        band = (iaf + flo, iaf + fhi) if name == "alpha" else (flo, fhi)
        state_bands[name] = band
        topo = topography(pos, site_positions([site])[0] + jitter())
        gate = np.zeros(n_eeg)
        for i in np.flatnonzero(k == s):
            gate = np.maximum(gate, raised_cosine_gate(times, onsets[i] - 1.0, onsets[i] + cfg.iti_range[0] - 6.0))
        rhythm = band_noise(rng, n_eeg, fs, band) * gate * erd_ers
        eeg += cfg.state_uv * eeg_gain * topo[:, None] * rhythm[None, :]
    # activation events: ERP (N1 + P3) and a gamma burst of intensity G_value at t0
    erp_topo_p3 = topography(pos, site_positions(["Pz"])[0] + jitter())
    erp_topo_n1 = topography(pos, site_positions(["Cz"])[0] + jitter())
    gamma_topo = topography(pos, site_positions(["Fz"])[0] + jitter())
    gamma_src = band_noise(rng, n_eeg, fs, (32.0, 42.0))
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
        burst = np.maximum(burst, g_value[i] * raised_cosine_gate(times, t_ev + 0.1, t_ev + 0.6, ramp=0.1))
    eeg += gamma_topo[:, None] * (burst * gamma_src)[None, :]
    eeg_info = mne.create_info(list(cfg.eeg_channels), fs, ch_types="eeg")
    raw_eeg = mne.io.RawArray(eeg * 1e-6, eeg_info, verbose=False)
    from mmib.data.physio.montage import standard_montage

    raw_eeg.set_montage(standard_montage(), on_missing="warn", verbose=False)
    raw_eeg.set_meas_date(meas_date)
    raw_eeg.info["subject_info"] = {"his_id": f"sub-{subject + 1:02d}"}
    raw_eeg.set_annotations(annotations)
    return raw_eeg, {"individual_alpha_frequency": iaf, "background_uv": bg_uv, "state_bands": state_bands}
