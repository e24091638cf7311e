"""Cardio-respiratory data for cross-modal retrieval (OVA-IB: Resp + ECG → BVP), real and simulated.

* :func:`pyphysio_cardio_windows`: the real synchronized ECG / EDA / BVP / respiration recording shipped in pyphysio
  (``medical.txt.bz2``, 120 s at 2048 Hz; pyphysio's ``info_medical`` says 1024 Hz, but only 2048 Hz gives a
  plausible heart rate (≈ 70 bpm) and breathing rate (≈ 14 /min)), cleaned with neurokit2, resampled and cut into
  windows. Windows lie inside contiguous blocks (no window crosses a block boundary), and the block index is the
  group, so a group-wise split never puts overlapping windows on both sides.
* :func:`simulate_cardio_windows`: neurokit2 simulators (``ecg_simulate``, ``ppg_simulate``, ``rsp_simulate``,
  ``eda_simulate``) driven, per window, by a shared heart rate (ECG and BVP) and breathing rate (respiration), with
  the respiration waveform modulating the ECG and BVP amplitudes (ECG-derived respiration, respiratory-induced
  intensity variation of the PPG) so that respiration is also visible in the cardiac signals.

Both return ``{modality: (n, 1, T)}`` signals plus per-window heart and breathing rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mmib.data.physio.preprocess import PhysioInputError

PYPHYSIO_MEDICAL_RATE = 2048.0

#: default sampling rates (Hz) of the windows
DEFAULT_CARDIO_RATES = {"ecg": 128.0, "resp": 16.0, "bvp": 64.0, "eda": 8.0}


@dataclass
class CardioWindows:
    """Windowed cardio-respiratory signals.

    Attributes:
        signals: ``{"resp", "ecg", "bvp"[, "eda"]: (n, 1, T)}``.
        rates: sampling rate (Hz) per modality.
        heart_rate, breathing_rate: (n,) per window (bpm, breaths/min): measured with neurokit2 for real data,
            the simulator's ground truth for simulated data.
        groups: (n,) block index (real data) or subject index (simulated data).
        start: (n,) window start (s) within its recording.
    """

    signals: dict[str, np.ndarray]
    rates: dict[str, float]
    heart_rate: np.ndarray
    breathing_rate: np.ndarray
    groups: np.ndarray
    start: np.ndarray


def _rates(rates: Mapping[str, float] | None, modalities) -> dict[str, float]:
    out = dict(DEFAULT_CARDIO_RATES)
    for k, v in (rates or {}).items():
        if k not in DEFAULT_CARDIO_RATES:
            raise PhysioInputError(f"cardio rates: unknown modality '{k}'; valid: {', '.join(DEFAULT_CARDIO_RATES)}")
        if not v or v <= 0 or float(v) != int(v):
            raise PhysioInputError(f"cardio rates: the rate of '{k}' must be a whole number of Hz > 0, got {v!r}")
        out[k] = float(v)
    return {m: out[m] for m in modalities}


def _check_window(window_s: float, rates: Mapping[str, float]) -> dict[str, int]:
    if window_s <= 0:
        raise PhysioInputError(f"cardio window_s must be > 0 s, got {window_s}")
    lengths = {}
    for m, r in rates.items():
        n = window_s * r
        if abs(n - round(n)) > 1e-6:
            raise PhysioInputError(
                f"cardio: window_s × rate of '{m}' must be a whole number of samples, got {window_s} s × {r} Hz"
            )
        lengths[m] = int(round(n))
    return lengths


def pyphysio_cardio_windows(
    window_s: float = 8.0,
    stride_s: float = 0.5,
    block_s: float = 20.0,
    include_eda: bool = False,
    rates: Mapping[str, float] | None = None,
    source_rate: float = PYPHYSIO_MEDICAL_RATE,
    path=None,
) -> CardioWindows:
    """Windows of pyphysio's real ECG / BVP / respiration (/ EDA) recording, cleaned by neurokit2.

    Args:
        window_s, stride_s: window length and step (s).
        block_s: the recording is cut into contiguous blocks of this length; windows lie inside one block.
        include_eda: add the EDA channel as a fourth modality.
        rates: sampling rate per modality after resampling (defaults :data:`DEFAULT_CARDIO_RATES`).
        source_rate: the recording's sampling rate (Hz).
        path: the ``medical.txt.bz2`` file (default: the one in the installed pyphysio).
    """
    import neurokit2 as nk

    from mmib.data.physio.io import read_pyphysio_medical

    mods = ["resp", "ecg", "bvp"] + (["eda"] if include_eda else [])
    rates_ = _rates(rates, mods)
    lengths = _check_window(window_s, rates_)
    if not 0 < stride_s:
        raise PhysioInputError(f"cardio stride_s must be > 0 s, got {stride_s}")
    if block_s < window_s:
        raise PhysioInputError(f"cardio block_s ({block_s} s) must be at least window_s ({window_s} s)")
    raw = read_pyphysio_medical(path)
    fs = float(source_rate)
    duration = len(raw["ecg"]) / fs
    cleaned = {
        "ecg": nk.ecg_clean(raw["ecg"], sampling_rate=fs),
        "bvp": nk.ppg_clean(raw["bvp"], sampling_rate=fs),
        "resp": nk.rsp_clean(raw["resp"], sampling_rate=fs),
        "eda": nk.eda_clean(raw["eda"], sampling_rate=fs),
    }
    _, r_peaks = nk.ecg_peaks(cleaned["ecg"], sampling_rate=fs)
    hr = nk.signal_rate(r_peaks["ECG_R_Peaks"], sampling_rate=fs, desired_length=len(cleaned["ecg"]))
    _, rsp_peaks = nk.rsp_peaks(cleaned["resp"], sampling_rate=fs)
    br = nk.signal_rate(rsp_peaks["RSP_Peaks"], sampling_rate=fs, desired_length=len(cleaned["resp"]))
    resampled = {
        m: np.asarray(nk.signal_resample(cleaned[m], sampling_rate=int(fs), desired_sampling_rate=int(rates_[m]),
                                         method="poly"), dtype=float)  # fmt: skip
        for m in mods
    }
    starts, groups = [], []
    n_blocks = int(duration // block_s)
    for b in range(n_blocks):
        s = b * block_s
        while s + window_s <= (b + 1) * block_s + 1e-9:
            starts.append(s)
            groups.append(b)
            s += stride_s
    if not starts:
        raise PhysioInputError(f"cardio: a {duration:.0f} s recording holds no {window_s} s window")
    starts_a = np.asarray(starts)
    signals = {}
    for m in mods:
        r = rates_[m]
        idx = np.round(starts_a * r).astype(int)[:, None] + np.arange(lengths[m])[None, :]
        signals[m] = resampled[m][idx][:, None, :].astype(np.float32)
    i0 = np.round(starts_a * fs).astype(int)
    i1 = np.round((starts_a + window_s) * fs).astype(int)
    return CardioWindows(
        signals=signals,
        rates=rates_,
        heart_rate=np.array([hr[a:b].mean() for a, b in zip(i0, i1)]),
        breathing_rate=np.array([br[a:b].mean() for a, b in zip(i0, i1)]),
        groups=np.asarray(groups, dtype=np.int64),
        start=starts_a,
    )


def simulate_cardio_windows(
    n_subjects: int = 8,
    windows_per_subject: int = 48,
    window_s: float = 8.0,
    include_eda: bool = False,
    rates: Mapping[str, float] | None = None,
    heart_rate_range: tuple[float, float] = (55.0, 110.0),
    breathing_rate_range: tuple[float, float] = (8.0, 24.0),
    respiratory_modulation: float = 0.2,
    noise: float = 0.05,
    ecg_method: str = "ecgsyn",
    seed: int = 0,
) -> CardioWindows:
    """Simulate windows of ECG, BVP (PPG), respiration (and EDA) with neurokit2 from shared rates.

    Per subject: a resting heart rate and breathing rate inside the ranges; per window: rates drawn around the
    subject's (±15% of the range), shared by ECG and BVP (heart) and respiration (breathing). The respiration
    waveform modulates the ECG and BVP amplitude by ``respiratory_modulation``. EDA (optional) gets a number of
    skin-conductance responses that grows with the heart rate (sympathetic arousal). ``noise`` is the standard
    deviation of white noise added to each standardized signal.
    """
    import neurokit2 as nk

    if n_subjects < 1 or windows_per_subject < 1:
        raise PhysioInputError(
            f"cardio_sim: n_subjects and windows_per_subject must be >= 1, got {n_subjects}, {windows_per_subject}"
        )
    for name, (lo, hi) in (("heart_rate_range", heart_rate_range), ("breathing_rate_range", breathing_rate_range)):
        if not 0 < lo <= hi:
            raise PhysioInputError(f"cardio_sim: {name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")
    if ecg_method not in ("ecgsyn", "simple"):
        raise PhysioInputError(f"cardio_sim: ecg_method must be 'ecgsyn' or 'simple', got {ecg_method!r}")
    mods = ["resp", "ecg", "bvp"] + (["eda"] if include_eda else [])
    rates_ = _rates(rates, mods)
    lengths = _check_window(window_s, rates_)
    rng = np.random.default_rng(seed)
    n = n_subjects * windows_per_subject
    out = {m: np.empty((n, 1, lengths[m]), dtype=np.float32) for m in mods}
    hr_all, br_all, groups = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    hr_lo, hr_hi = heart_rate_range
    br_lo, br_hi = breathing_rate_range
    dur = int(np.ceil(window_s)) + 2  # simulate a little longer, then cut a window at a random phase

    def z(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return (x - x.mean()) / (x.std() + 1e-12)

    def seed_() -> int:
        return int(rng.integers(0, 2**31 - 1))

    i = 0
    for s in range(n_subjects):
        hr0 = rng.uniform(hr_lo, hr_hi)
        br0 = rng.uniform(br_lo, br_hi)
        for _ in range(windows_per_subject):
            hr = float(np.clip(hr0 + rng.uniform(-0.15, 0.15) * (hr_hi - hr_lo), hr_lo, hr_hi))
            br = float(np.clip(br0 + rng.uniform(-0.15, 0.15) * (br_hi - br_lo), br_lo, br_hi))
            offset = rng.uniform(0.0, dur - window_s)
            # breathmetrics returns fewer samples than asked for short durations at low rates: simulate 40 s, cut
            resp_full = nk.rsp_simulate(duration=max(dur, 40), sampling_rate=int(rates_["resp"]),
                                        respiratory_rate=br, random_state=seed_())  # fmt: skip
            resp_full = z(np.asarray(resp_full)[: int(dur * rates_["resp"])])
            if len(resp_full) < int(dur * rates_["resp"]):
                raise RuntimeError(f"neurokit2 rsp_simulate returned {len(resp_full)} samples at {br:.1f}/min")

            def cut(x: np.ndarray, m: str, offset: float = offset) -> np.ndarray:
                a = int(round(offset * rates_[m]))
                return x[a : a + lengths[m]]

            def resp_at(m: str, resp_full: np.ndarray = resp_full) -> np.ndarray:
                t = np.arange(int(dur * rates_[m])) / rates_[m]
                return np.interp(t, np.arange(len(resp_full)) / rates_["resp"], resp_full)

            ecg = z(nk.ecg_simulate(duration=dur, sampling_rate=int(rates_["ecg"]), heart_rate=hr, method=ecg_method,
                                    random_state=seed_()))  # fmt: skip
            ecg = ecg[: int(dur * rates_["ecg"])] * (1.0 + respiratory_modulation * resp_at("ecg"))
            ppg = z(nk.ppg_simulate(duration=dur, sampling_rate=int(rates_["bvp"]), heart_rate=hr, random_state=seed_()))
            ppg = ppg[: int(dur * rates_["bvp"])] * (1.0 + respiratory_modulation * resp_at("bvp"))
            sig = {"resp": resp_full, "ecg": ecg, "bvp": ppg}
            if include_eda:
                scr = int(round(window_s / 8.0 * (1 + 2 * (hr - hr_lo) / max(hr_hi - hr_lo, 1e-9))))
                sig["eda"] = z(nk.eda_simulate(duration=dur, sampling_rate=int(rates_["eda"]), scr_number=scr,
                                               random_state=seed_()))  # fmt: skip
            for m in mods:
                w = cut(sig[m], m)
                out[m][i, 0] = w + noise * rng.standard_normal(lengths[m])
            hr_all[i], br_all[i], groups[i] = hr, br, s
            i += 1
    return CardioWindows(out, rates_, hr_all, br_all, groups, np.zeros(n))
