"""The reconstruction targets of the ``rus`` method ("the modality's own physiological features", spec C.7;
``docs/methods/rus.md``), computed from the clean input of a batch and z-scored over the batch
(:func:`reconstruction_targets`):

* ``band_power`` (EEG): log relative power of the δ 1–4, θ 4–8, α 8–13, β 13–30, γ 30–45 Hz bands of the
  channel-mean periodogram (FFT of each channel, powers averaged over channels) — 5 values;
* ``band_envelope`` / ``band_envelope_peak`` (EEG): the same bands' log power in consecutive 0.5 s windows
  (channel-mean), and for ``_peak`` also each band's largest window power over channels and windows;
* ``hemodynamic`` (fNIRS): per chromophore group (channels whose name contains ``hbo`` / ``hbr``; all channels
  otherwise) the maximum, minimum and mean over time of the channel-mean signal — peak, dip and area/T; 6 values;
* ``input``: the input itself (hand-crafted feature vectors); ``none``: no reconstruction.

The bands are the data pipeline's :data:`~mmib.data.physio.eeg_fnirs_sim.EEG_BANDS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS
from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError, UnknownNameError

TARGETS = ("band_power", "band_envelope", "band_envelope_peak", "hemodynamic", "input", "none")
#: the target kinds computed from an EEG-like signal's band powers (they need the sampling rate)
BAND_TARGETS = ("band_power", "band_envelope", "band_envelope_peak")
#: targets whose modality gets the ``filterbank`` token encoder unless ``encoder.modalities.<m>.type`` is set
TIME_RESOLVED_TARGETS = ("band_envelope", "band_envelope_peak")
#: window (s) of the ``band_envelope`` targets
ENVELOPE_WINDOW_S = 0.5


def require_rate(ms: ModalitySpec, what: str) -> float:
    if ms.rate is None or not ms.rate > 0:
        raise MMIBError(f"modality '{ms.name}': {what} needs its sampling rate (ModalitySpec.rate), which is not set")
    return float(ms.rate)


def band_power_targets(x: torch.Tensor, rate: float, bands: Mapping[str, tuple[float, float]] = EEG_BANDS,
                       eps: float = 1e-12) -> torch.Tensor:
    """Log relative band powers (N, n_bands) of a signal batch (N, C, T): periodogram of every channel by FFT,
    averaged over channels, summed within each band, divided by the sum over the bands, log."""
    if x.dim() != 3:
        raise MMIBError(f"band-power targets need a signal batch (N, C, T), got shape {tuple(x.shape)}")
    t = x.shape[-1]
    freqs = torch.fft.rfftfreq(t, d=1.0 / rate).to(x.device)
    power = torch.fft.rfft(x - x.mean(-1, keepdim=True), dim=-1).abs().pow(2).mean(1)  # (N, F)
    cols = []
    for name, (lo, hi) in bands.items():
        sel = (freqs >= lo) & (freqs < hi)
        if not bool(sel.any()):
            raise MMIBError(f"band '{name}' ({lo}–{hi} Hz) holds no FFT bin at {rate} Hz with {t} samples")
        cols.append(power[:, sel].sum(1))
    p = torch.stack(cols, 1)
    return torch.log(p / p.sum(1, keepdim=True).clamp_min(eps) + eps)


def _window_band_powers(x: torch.Tensor, rate: float, window_s: float, bands: Mapping[str, tuple[float, float]],
                        what: str) -> torch.Tensor:
    """Per channel, window and band the periodogram power (window mean removed): (N, C, W, n_bands), over
    W = T // L consecutive windows of L = round(window_s · rate) samples (the remainder at the end dropped)."""
    if x.dim() != 3:
        raise MMIBError(f"{what} targets need a signal batch (N, C, T), got shape {tuple(x.shape)}")
    n, c, t = x.shape
    win = int(round(window_s * rate))
    if win < 2 or t // win < 1:
        raise MMIBError(f"{what} targets: a {window_s} s window at {rate} Hz is {win} samples, the epoch has {t}")
    w = t // win
    seg = x[..., : w * win].reshape(n, c, w, win)
    freqs = torch.fft.rfftfreq(win, d=1.0 / rate).to(x.device)
    power = torch.fft.rfft(seg - seg.mean(-1, keepdim=True), dim=-1).abs().pow(2)  # (N, C, W, F)
    cols = []
    for name, (lo, hi) in bands.items():
        sel = (freqs >= lo) & (freqs < hi)
        if not bool(sel.any()):
            raise MMIBError(f"band '{name}' ({lo}–{hi} Hz) holds no FFT bin of a {window_s} s window at {rate} Hz")
        cols.append(power[..., sel].sum(-1))
    return torch.stack(cols, -1)


def band_envelope_targets(x: torch.Tensor, rate: float, window_s: float = ENVELOPE_WINDOW_S,
                          bands: Mapping[str, tuple[float, float]] = EEG_BANDS, eps: float = 1e-12) -> torch.Tensor:
    """Time-resolved band powers (N, n_bands · W): the epoch cut into W = T // L consecutive windows of
    L = round(window_s · rate) samples (the remainder at the end dropped); in each window the periodogram of every
    channel (window mean removed), averaged over channels, summed per band, log. Ordered window-major (all bands of
    window 0, then window 1, …). Unlike :func:`band_power_targets` these keep *when* a band's power rises (an
    event-locked gamma burst, an ERD) and its absolute level."""
    p = _window_band_powers(x, rate, window_s, bands, "band-envelope").mean(1)  # (N, W, B)
    return torch.log(p + eps).reshape(x.shape[0], -1)


def band_peak_targets(x: torch.Tensor, rate: float, window_s: float = ENVELOPE_WINDOW_S,
                      bands: Mapping[str, tuple[float, float]] = EEG_BANDS, eps: float = 1e-12) -> torch.Tensor:
    """Per band the log of the **largest** window power over channels and windows (N, n_bands): the windowed
    periodograms of :func:`band_envelope_targets`, not averaged over channels, maximised over channels and
    windows. A short focal burst (0.5 s of gamma over a few electrodes) sets this value wherever it occurs, while
    in the channel-mean envelope it is diluted over channels and its window moves from trial to trial."""
    p = _window_band_powers(x, rate, window_s, bands, "band-peak")  # (N, C, W, B)
    return torch.log(p.amax(dim=(1, 2)) + eps)


def chromophore_groups(ms: ModalitySpec) -> list[list[int]]:
    """Channel indices per chromophore (names containing ``hbo`` / ``hbr``), or one group of all channels."""
    n = ms.shape[0]
    names = [c.lower() for c in (ms.channels or ())]
    if len(names) == n:
        groups = [[i for i, c in enumerate(names) if key in c] for key in ("hbo", "hbr")]
        groups = [g for g in groups if g]
        if groups and sum(len(g) for g in groups) == n:
            return groups
    return [list(range(n))]


def hemodynamic_targets(x: torch.Tensor, groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """Peak (max), dip (min) and mean over time of the channel-mean signal of each channel group: (N, 3·groups)."""
    if x.dim() != 3:
        raise MMIBError(f"hemodynamic targets need a signal batch (N, C, T), got shape {tuple(x.shape)}")
    cols = []
    for g in groups:
        s = x[:, list(g)].mean(1)
        cols += [s.amax(-1), s.amin(-1), s.mean(-1)]
    return torch.stack(cols, 1)


def zscore_batch(t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Columns standardized over the batch (targets on a common scale for the MSE)."""
    if t.shape[0] < 2:
        return t - t.mean(0, keepdim=True)
    return (t - t.mean(0, keepdim=True)) / t.std(0, keepdim=True).clamp_min(eps)


def reconstruction_targets(kind: str, x: torch.Tensor, ms: ModalitySpec) -> torch.Tensor:
    """The reconstruction targets of one modality (see the module docstring), z-scored over the batch."""
    if kind == "band_power":
        if ms.kind != "signal":
            raise MMIBError(f"modality '{ms.name}': target 'band_power' needs a signal (C, T), it is a {ms.kind}")
        t = band_power_targets(x, require_rate(ms, "target 'band_power'"))
    elif kind == "band_envelope":
        if ms.kind != "signal":
            raise MMIBError(f"modality '{ms.name}': target 'band_envelope' needs a signal (C, T), it is a {ms.kind}")
        t = band_envelope_targets(x, require_rate(ms, "target 'band_envelope'"))
    elif kind == "band_envelope_peak":
        if ms.kind != "signal":
            raise MMIBError(f"modality '{ms.name}': target 'band_envelope_peak' needs a signal (C, T), it is a "
                            f"{ms.kind}")
        rate = require_rate(ms, "target 'band_envelope_peak'")
        env, peak = band_envelope_targets(x, rate), band_peak_targets(x, rate)
        # the two blocks weigh equally in the MSE: after the z-scoring, the n_bands peak columns are scaled by
        # sqrt(W) (W windows of n_bands envelope columns each)
        w = env.shape[1] // peak.shape[1]
        return torch.cat([zscore_batch(env.detach()), zscore_batch(peak.detach()) * math.sqrt(w)], dim=1)
    elif kind == "hemodynamic":
        if ms.kind != "signal":
            raise MMIBError(f"modality '{ms.name}': target 'hemodynamic' needs a signal (C, T), it is a {ms.kind}")
        t = hemodynamic_targets(x, chromophore_groups(ms))
    elif kind == "input":
        t = x.reshape(x.shape[0], -1)
    else:
        raise UnknownNameError("reconstruction target", kind, [k for k in TARGETS if k != "none"])
    return zscore_batch(t.detach())


def target_dim(kind: str, ms: ModalitySpec) -> int:
    if kind == "band_power":
        return len(EEG_BANDS)
    if kind in ("band_envelope", "band_envelope_peak"):
        rate = require_rate(ms, f"target '{kind}'")
        w = int(ms.shape[-1]) // int(round(ENVELOPE_WINDOW_S * rate))
        return len(EEG_BANDS) * (w + (kind == "band_envelope_peak"))
    if kind == "hemodynamic":
        return 3 * len(chromophore_groups(ms))
    if kind == "input":
        return int(math.prod(ms.shape))
    return 0
