"""``rus``: the explicit redundancy / uniqueness / synergy model for two modalities, EEG + fNIRS (spec part C, the
"hybrid decomposition model"; spec D.5 for its checks; ``docs/methods/rus.md``).

Architecture (C.6):

* per modality a **temporal encoder** over the raw signal: a 1-D CNN over time (the encoder config's ``signal``
  encoder, cut before its pooling, :class:`~mmib.nn.fusion_transformer.TokenEncoder`) gives tokens with sine-cosine
  time positions, then a Transformer with a [CLS] token (``temporal: transformer``) or a GRU (``temporal: gru``) over
  the tokens gives H_m. Absolute timing survives (no global pooling before the temporal model), which the coupling
  delay τ needs. Vectors (hand-crafted features) go through the MLP feature tokenizer instead.
* heads (MLPs) Z_R_m = Head_R_m(H_m) and Z_U_m = Head_U_m(H_m) for each modality m;
* **fusion** for the synergy head: ``cross_attention`` (default) = a Transformer over the tokens of *both*
  modalities with a [CLS] (CoMM's :class:`~mmib.nn.fusion_transformer.FusionTransformer`), or ``concat`` =
  [H_a, H_b]; Z_S = Head_S(H_fused).

Objective (C.7, :class:`~mmib.objectives.rus.RUSLoss`): two augmented views x', x'' of both modalities;
L_R = InfoNCE(Z_R_a(x'), Z_R_b(x')); L_U = Σ_m MSE(Decoder_m(Z_U_m(x')), targets_m(x)) + λ_cross · cross-modal term
(``cross_min: neg_sim`` — the design's −log(1 − |cos(Z_U_m, P·H_other)|) with a fixed random projection P — or
``grl`` — an adversary that predicts the *other* modality's targets from Z_U_m through gradient reversal — or
``none``); L_S = InfoNCE(Z_S(x'), Z_S(x'')); L_orth = mean |cos| over the pairs of different components of x'.

Reconstruction targets ("the modality's own physiological features", :func:`reconstruction_targets`), computed from
the clean input of the batch and z-scored over the batch:

* ``band_power`` (EEG): log relative power of the δ 1–4, θ 4–8, α 8–13, β 13–30, γ 30–45 Hz bands of the
  channel-mean periodogram (FFT of each channel, powers averaged over channels) — 5 values;
* ``band_envelope`` / ``band_envelope_peak`` (EEG): the same bands' log power in consecutive 0.5 s windows
  (channel-mean), and for ``_peak`` also each band's largest window power over channels and windows;
* ``hemodynamic`` (fNIRS): per chromophore group (channels whose name contains ``hbo`` / ``hbr``; all channels
  otherwise) the maximum, minimum and mean over time of the channel-mean signal — peak, dip and area/T; 6 values;
* ``input``: the input itself (hand-crafted feature vectors); ``none``: no reconstruction.

Augmentations (C.5): generic ones from :mod:`mmib.data.augment` (``noise``, ``time_drop``, …) plus the
physiological ones here: ``time_mask`` (one contiguous segment set to 0), ``channel_dropout``, ``band_snr`` (EEG: a
random band's Fourier coefficients scaled by ±``max_db``), ``hrf_amplitude`` (fNIRS: the epoch scaled by a gain —
after baseline correction and the 0.01–0.1 Hz band-pass the epoch is dominated by the haemodynamic response) and
``hrf_delay`` (fNIRS: shifted in time by up to ``max_shift_s``). ``hrf_delay`` is **off** by default: it changes
the EEG→fNIRS delay, the quantity Z_S should carry (spec C.9, D.5.5); ``hrf_delay_s > 0`` turns it on, for the second
view only (``hrf_delay_scope: s_view``, the default: that view feeds L_S alone) or for both views (``both``).

Issue 20 (defaults; each has the design's literal setting as an option, ``docs/methods/rus.md``, "Variants"):
token positions in **seconds** relative to the trial marker, one clock for both modalities (``positions``,
``time_start``); a **product interaction** W_a H_a ⊙ W_b H_b in the synergy fusion (``interaction``); the synergy
objective ``unimodal_hsic`` = L_S + λ_syn Σ_m nHSIC(Z_S, H_m) (``synergy``; ``literal`` = L_S alone); the
time-resolved EEG target ``band_envelope_peak`` (the channel-mean band envelope plus each band's peak window power
over channels and windows) with λ_U = 3; the ``filterbank`` token encoder (:class:`~mmib.nn.encoders.FilterbankEncoder`:
log band power every 0.25 s) for a signal with a time-resolved band target, unless ``encoder.modalities.<m>.type``
names one (the 1-D CNN lost the 0.5 s gamma burst and the event); and, off by default, L_hsic, a normalized-HSIC
penalty between components beside L_orth (``weights.hsic``, ``hsic_pairs``).

Interface: :meth:`RUSMethod.hidden` → ``{m: H_m}``; ``embed`` → H_m (``space="embedding"``: Z_R_m, so :meth:`score` = cosine of the redundancy heads =
cross-modal retrieval); ``fuse`` → Z_S (both modalities needed); ``components`` → ``R_<m>``, ``U_<m>`` for the
requested modalities and ``S`` when both are given (with modalities ``eeg``/``fnirs``: R_eeg, R_fnirs, U_eeg,
U_fnirs, S).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mmib.data.augment import (
    AUGMENTATIONS,
    Augmentation,
    Compose,
    Identity,
    RandomApply,
    make_generator,
)
from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.methods.base import SPACES, Method
from mmib.methods.registry import register_method
from mmib.nn.fusion_transformer import FusionTransformer, TokenEncoder
from mmib.nn.heads import MLP
from mmib.objectives.base import LossOutput, l2_normalize
from mmib.objectives.rus import GradientReversal, RUSLoss, neg_sim_loss

#: EEG bands of the ``band_power`` targets and the ``band_snr`` augmentation (Hz; the data pipeline's bands)
EEG_BANDS: dict[str, tuple[float, float]] = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0),
                                             "beta": (13.0, 30.0), "gamma": (30.0, 45.0)}
TARGETS = ("band_power", "band_envelope", "band_envelope_peak", "hemodynamic", "input", "none")
#: the target kinds computed from an EEG-like signal's band powers (they need the sampling rate)
BAND_TARGETS = ("band_power", "band_envelope", "band_envelope_peak")
#: targets whose modality gets the ``filterbank`` token encoder unless ``encoder.modalities.<m>.type`` is set
TIME_RESOLVED_TARGETS = ("band_envelope", "band_envelope_peak")
#: window (s) of the ``band_envelope`` targets
ENVELOPE_WINDOW_S = 0.5
TEMPORAL = ("transformer", "gru")
FUSIONS = ("cross_attention", "concat")
CROSS_MIN = ("neg_sim", "grl", "none")
POSITIONS = ("seconds", "index")
INTERACTIONS = ("product", "none")
SYNERGY = ("literal", "unimodal_hsic")
WEIGHTS = ("R", "U", "S", "orth", "cross", "hsic", "syn")


def default_time_start(ms: ModalitySpec) -> float:
    """The time (s, relative to the trial marker) of the first sample of a modality's epochs when
    ``method.time_start`` does not give it: for ``eeg`` / ``fnirs`` the epoch start of the MNE pipelines
    (:class:`~mmib.data.physio.preprocess.EEGPipeline` −0.5 s, :class:`~mmib.data.physio.preprocess.FNIRSPipeline`
    −2 s; checked against the epoch length), 0 otherwise. :class:`~mmib.data.spec.ModalitySpec` carries the rate but
    not the epoch start."""
    from mmib.data.physio.preprocess import EEGPipeline, FNIRSPipeline

    pipe = {"eeg": EEGPipeline, "fnirs": FNIRSPipeline}.get(ms.name)
    if pipe is None:
        return 0.0
    p = pipe()
    rate = _require_rate(ms, "time positions in seconds")
    expected = int(round((p.tmax - p.tmin) * rate)) + 1
    if abs(int(ms.shape[-1]) - expected) > 1:
        raise MMIBError(f"method 'rus': modality '{ms.name}' has {ms.shape[-1]} samples at {rate:g} Hz, not the "
                        f"{expected} of the default {p.tmin:g}…{p.tmax:g} s epoch window; set "
                        f"method.time_start.{ms.name} to its epoch start (s relative to the trial marker), or "
                        "method.positions=index")
    return float(p.tmin)


# ============================================================================================ reconstruction targets
def _require_rate(ms: ModalitySpec, what: str) -> float:
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
        t = band_power_targets(x, _require_rate(ms, "target 'band_power'"))
    elif kind == "band_envelope":
        if ms.kind != "signal":
            raise MMIBError(f"modality '{ms.name}': target 'band_envelope' needs a signal (C, T), it is a {ms.kind}")
        t = band_envelope_targets(x, _require_rate(ms, "target 'band_envelope'"))
    elif kind == "band_envelope_peak":
        if ms.kind != "signal":
            raise MMIBError(f"modality '{ms.name}': target 'band_envelope_peak' needs a signal (C, T), it is a "
                            f"{ms.kind}")
        rate = _require_rate(ms, "target 'band_envelope_peak'")
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
        rate = _require_rate(ms, f"target '{kind}'")
        w = int(ms.shape[-1]) // int(round(ENVELOPE_WINDOW_S * rate))
        return len(EEG_BANDS) * (w + (kind == "band_envelope_peak"))
    if kind == "hemodynamic":
        return 3 * len(chromophore_groups(ms))
    if kind == "input":
        return int(math.prod(ms.shape))
    return 0


# ============================================================================================ augmentations
def _per_sample(n: int, lo: float, hi: float, g: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


class TimeMask(Augmentation):
    """One contiguous segment of U(0, max_fraction)·T time steps (random start) set to 0, per sample."""

    name = "time_mask"
    kinds = ("signal", "sequence")

    def __init__(self, kind: str, max_fraction: float = 0.2) -> None:
        super().__init__(kind)
        if not 0 <= max_fraction < 1:
            raise MMIBError(f"time_mask: max_fraction must lie in [0, 1), got {max_fraction!r}")
        self.max_fraction = float(max_fraction)

    def __call__(self, x, g=None, lengths=None):
        axis = 2 if self.kind == "signal" else 1
        n, t = x.shape[0], x.shape[axis]
        width = (_per_sample(n, 0, self.max_fraction, g) * t).long()
        start = (torch.rand(n, generator=g) * (t - width + 1).float()).long()
        pos = torch.arange(t)[None, :]
        m = ((pos >= start[:, None]) & (pos < (start + width)[:, None])).to(x.device)
        m = m[:, None, :] if self.kind == "signal" else m[:, :, None]
        return x.masked_fill(m, 0.0)


class ChannelDropout(Augmentation):
    """Each channel of a signal set to 0 with probability ``p_channel`` (at least one channel is kept)."""

    name = "channel_dropout"
    kinds = ("signal",)

    def __init__(self, kind: str, p_channel: float = 0.2) -> None:
        super().__init__(kind)
        if not 0 <= p_channel < 1:
            raise MMIBError(f"channel_dropout: p_channel must lie in [0, 1), got {p_channel!r}")
        self.p_channel = float(p_channel)

    def __call__(self, x, g=None, lengths=None):
        n, c = x.shape[:2]
        drop = torch.rand((n, c), generator=g) < self.p_channel
        keep = torch.randint(0, c, (n,), generator=g)
        drop[torch.arange(n), keep] = False
        return x.masked_fill(drop[:, :, None].to(x.device), 0.0)


class BandSNR(Augmentation):
    """EEG: the Fourier coefficients of one random band (δ θ α β γ) of every channel scaled by 10^(U(−max_db,
    max_db)/20) per sample — a change of that band's signal-to-noise ratio (C.5)."""

    name = "band_snr"
    kinds = ("signal",)

    def __init__(self, kind: str, rate: float, max_db: float = 6.0,
                 bands: Mapping[str, Sequence[float]] | None = None) -> None:
        super().__init__(kind)
        if not rate > 0 or not max_db >= 0:
            raise MMIBError(f"band_snr: need rate > 0 and max_db >= 0, got {rate!r}, {max_db!r}")
        self.rate, self.max_db = float(rate), float(max_db)
        self.bands = {k: (float(v[0]), float(v[1])) for k, v in (bands or EEG_BANDS).items()}

    def __call__(self, x, g=None, lengths=None):
        n, _, t = x.shape
        freqs = torch.fft.rfftfreq(t, d=1.0 / self.rate)
        masks = torch.stack([(freqs >= lo) & (freqs < hi) for lo, hi in self.bands.values()])  # (B, F)
        band = torch.randint(0, len(self.bands), (n,), generator=g)
        gain = 10 ** (_per_sample(n, -self.max_db, self.max_db, g) / 20)
        scale = 1 + (gain[:, None] - 1) * masks[band].float()  # (N, F)
        spec = torch.fft.rfft(x, dim=-1) * scale[:, None, :].to(x.device)
        return torch.fft.irfft(spec, n=t, dim=-1).to(x.dtype)


class HRFAmplitude(Augmentation):
    """fNIRS: the epoch scaled by a gain ~ U(low, high) per sample (the haemodynamic response amplitude, C.5)."""

    name = "hrf_amplitude"
    kinds = ("signal",)

    def __init__(self, kind: str, low: float = 0.8, high: float = 1.25) -> None:
        super().__init__(kind)
        if not 0 < low <= high:
            raise MMIBError(f"hrf_amplitude: need 0 < low <= high, got {low!r}, {high!r}")
        self.low, self.high = float(low), float(high)

    def __call__(self, x, g=None, lengths=None):
        return x * _per_sample(x.shape[0], self.low, self.high, g).to(x)[:, None, None]


class HRFDelay(Augmentation):
    """fNIRS: the epoch shifted in time by δ ~ U(−max_shift_s, max_shift_s) per sample (edge values repeated) — an
    HRF delay change. It changes the EEG→fNIRS coupling delay; off by default (spec C.9, D.5.5)."""

    name = "hrf_delay"
    kinds = ("signal",)

    def __init__(self, kind: str, rate: float, max_shift_s: float = 1.0) -> None:
        super().__init__(kind)
        if not rate > 0 or not max_shift_s >= 0:
            raise MMIBError(f"hrf_delay: need rate > 0 and max_shift_s >= 0, got {rate!r}, {max_shift_s!r}")
        self.rate, self.max_shift_s = float(rate), float(max_shift_s)

    def __call__(self, x, g=None, lengths=None):
        n, c, t = x.shape
        shift = torch.round(_per_sample(n, -self.max_shift_s, self.max_shift_s, g) * self.rate).long()
        src = (torch.arange(t)[None, :] - shift[:, None]).clamp(0, t - 1).to(x.device)  # output[t] = x[t - shift]
        return x.gather(2, src[:, None, :].expand(n, c, t))


RUS_AUGMENTATIONS: dict[str, type[Augmentation]] = {
    c.name: c for c in (TimeMask, ChannelDropout, BandSNR, HRFAmplitude, HRFDelay)}
HRF_DELAY_SCOPES = ("s_view", "both")
_NEEDS_RATE = ("band_snr", "hrf_delay")


def default_rus_augmentation(role: str, kind: str) -> list[dict[str, Any]]:
    """The default views (C.5): generic noise, time masking and channel dropout for both; band-SNR changes for EEG;
    HRF amplitude changes for fNIRS. No HRF delay."""
    if kind != "signal":
        return [{"name": "noise", "sigma": 0.1}]
    common = [{"name": "noise", "sigma": 0.1, "p": 0.5}, {"name": "time_mask", "max_fraction": 0.2, "p": 0.5},
              {"name": "channel_dropout", "p_channel": 0.2, "p": 0.5}]
    if role in BAND_TARGETS:
        return common + [{"name": "band_snr", "max_db": 6.0, "p": 0.5}]
    if role == "hemodynamic":
        return common + [{"name": "hrf_amplitude", "low": 0.8, "high": 1.25, "p": 0.5}]
    return common


def build_rus_augmentation(ms: ModalitySpec, config: Sequence[Mapping[str, Any]] | None) -> Augmentation:
    """A pipeline from ``[{"name": ..., "p": ..., **params}]``; names from :data:`RUS_AUGMENTATIONS` and
    :data:`mmib.data.augment.AUGMENTATIONS`; ``rate`` is filled from the modality where needed."""
    if not config:
        return Identity(ms.kind)
    augs: list[Augmentation] = []
    for item in config:
        item = dict(item)
        name = item.pop("name", None)
        cls = RUS_AUGMENTATIONS.get(name) or AUGMENTATIONS.get(name)
        if cls is None:
            raise UnknownNameError("augmentation", str(name), sorted({*RUS_AUGMENTATIONS, *AUGMENTATIONS}))
        p = float(item.pop("p", 1.0))
        if not 0 <= p <= 1:
            raise MMIBError(f"augmentation '{name}': probability p must lie in [0, 1], got {p!r}")
        if name in _NEEDS_RATE and "rate" not in item:
            item["rate"] = _require_rate(ms, f"augmentation '{name}'")
        try:
            aug = cls(ms.kind, **item)
        except TypeError as e:
            raise MMIBError(f"augmentation '{name}' of modality '{ms.name}': bad parameters {item}: {e}") from e
        augs.append(aug if p >= 1.0 else RandomApply(aug, p))
    return augs[0] if len(augs) == 1 else Compose(ms.kind, augs)


# ============================================================================================ the method
class _GRUPool(nn.Module):
    """GRU over tokens (N, T, d) → last hidden state (N, d)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.gru = nn.GRU(d, d, batch_first=True)
        self.norm = nn.LayerNorm(d)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(tokens)
        return self.norm(h[-1])


@register_method("rus")
class RUSMethod(Method):
    """Explicit R/U/S decomposition of two modalities (EEG + fNIRS design, spec C.4–C.7)."""

    exact_modalities = 2

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        c = self.cfg
        for ms in spec.modalities:
            if ms.kind not in ("signal", "vector"):
                raise MMIBError(f"method 'rus': modality '{ms.name}' is a {ms.kind}; rus takes signals (C, T) or "
                                "feature vectors")
        self.mods = spec.modality_names
        d = int(c.get("hidden_dim", 64))
        k = int(c.get("component_dim", 32))
        heads = int(c.get("n_heads", 4))
        self.temporal_kind = str(c.get("temporal", "transformer"))
        self.fusion_kind = str(c.get("fusion", "cross_attention"))
        self.cross_min = str(c.get("cross_min", "neg_sim"))
        self.positions = str(c.get("positions", "seconds"))
        self.synergy = str(c.get("synergy", "unimodal_hsic"))
        self.syn_grad = str(c.get("syn_grad", "fusion"))
        if self.syn_grad not in ("fusion", "all"):
            raise MMIBError(f"method 'rus': syn_grad must be one of fusion, all, got {self.syn_grad!r}")
        for key, v, valid in (("temporal", self.temporal_kind, TEMPORAL), ("fusion", self.fusion_kind, FUSIONS),
                              ("cross_min", self.cross_min, CROSS_MIN), ("positions", self.positions, POSITIONS),
                              ("synergy", self.synergy, SYNERGY)):
            if v not in valid:
                raise MMIBError(f"method 'rus': {key} must be one of {', '.join(valid)}, got {v!r}")
        # reconstruction targets per modality
        tcfg = dict(c.get("targets") or {})
        bad = [m for m in tcfg if m not in self.mods]
        if bad:
            raise UnknownNameError(f"modality of data set '{spec.name}' (method.targets)", bad[0], self.mods)
        self.targets: dict[str, str] = {}
        for ms in spec.modalities:
            t = tcfg.get(ms.name)
            if t is None:
                t = "input" if ms.kind == "vector" else {"eeg": "band_envelope_peak", "fnirs": "hemodynamic"}.get(ms.name)
            if t is None:
                raise MMIBError(f"method 'rus': no default reconstruction target for modality '{ms.name}'; set "
                                f"method.targets.{ms.name} to one of {', '.join(TARGETS)}")
            if t not in TARGETS:
                raise UnknownNameError(f"reconstruction target (method.targets.{ms.name})", str(t), TARGETS)
            if (t in BAND_TARGETS or t == "hemodynamic") and ms.kind != "signal":
                raise MMIBError(f"method 'rus': target '{t}' of modality '{ms.name}' needs a signal, it is a {ms.kind}")
            if t in BAND_TARGETS:
                _require_rate(ms, f"target '{t}'")
            self.targets[ms.name] = t
        # time axis: signals get token positions in seconds relative to the trial marker (one clock for both)
        starts = dict(c.get("time_start") or {})
        bad = [m for m in starts if m not in self.mods]
        if bad:
            raise UnknownNameError(f"modality of data set '{spec.name}' (method.time_start)", bad[0], self.mods)
        self.time_axes: dict[str, tuple[float, float] | None] = {}
        for ms in spec.modalities:
            if self.positions == "seconds" and ms.kind == "signal":
                start = starts.get(ms.name)
                try:
                    start = default_time_start(ms) if start is None else float(start)
                except (TypeError, ValueError) as e:
                    raise MMIBError(f"method 'rus': method.time_start.{ms.name} must be a number of seconds, got "
                                    f"{starts.get(ms.name)!r}") from e
                self.time_axes[ms.name] = (start, _require_rate(ms, "time positions in seconds (positions: seconds)"))
            else:
                self.time_axes[ms.name] = None
        res = float(c.get("time_resolution_s", 0.05))
        # encoders: tokens, then a temporal model per modality
        token_cfg = self._token_encoder_config(spec)
        self.tokenizers = nn.ModuleDict({ms.name: TokenEncoder(ms, d, token_cfg, int(c.get("vector_tokens", 16)),
                                                               time_axis=self.time_axes[ms.name], time_resolution_s=res)
                                         for ms in spec.modalities})
        if self.temporal_kind == "transformer":
            self.temporal = nn.ModuleDict({m: FusionTransformer([m], d, n_heads=heads, n_layers=int(c.get("temporal_layers", 1)),
                                                                modality_embedding=False) for m in self.mods})
        else:
            self.temporal = nn.ModuleDict({m: _GRUPool(d) for m in self.mods})
        hh = int(c.get("head_hidden", 64))
        self.head_r = nn.ModuleDict({m: MLP(d, k, [hh]) for m in self.mods})
        self.head_u = nn.ModuleDict({m: MLP(d, k, [hh]) for m in self.mods})
        self.interaction = str(c.get("interaction", "product"))
        if self.interaction not in INTERACTIONS:
            raise MMIBError(f"method 'rus': interaction must be one of {', '.join(INTERACTIONS)}, got "
                            f"{self.interaction!r}")
        if self.fusion_kind == "cross_attention":
            self.fusion: nn.Module = FusionTransformer(self.mods, d, n_heads=heads, n_layers=int(c.get("fusion_layers", 1)))
            fused = d
        else:
            self.fusion = nn.Identity()
            fused = 2 * d
        if self.interaction == "product":
            # multiplicative interaction of the two unimodal representations: products of a linear read-out of each
            # (a low-rank bilinear form), so that a parity of an EEG and an fNIRS factor is linear in H_fused
            self.product = nn.ModuleDict({m: nn.Linear(d, d) for m in self.mods})
            self.product_norm = nn.LayerNorm(d)
            fused += d
        self.head_s = MLP(fused, k, [hh])
        self.decoders = nn.ModuleDict({m: MLP(k, target_dim(t, spec.modality(m)), [hh])
                                       for m, t in self.targets.items() if t != "none"})
        other = {self.mods[0]: self.mods[1], self.mods[1]: self.mods[0]}
        self.other = other
        if self.cross_min == "neg_sim":
            # fixed random projection of H_other (d) to the component space (k); identity when d == k
            g = torch.Generator().manual_seed(int(c.get("projection_seed", 0)))
            if d >= k:  # orthonormal columns (d, k)
                proj = torch.linalg.qr(torch.randn(d, k, generator=g))[0]
            else:  # orthonormal rows (d, k)
                proj = torch.linalg.qr(torch.randn(k, d, generator=g))[0].T
            self.register_buffer("cross_projection", proj.contiguous())
            self.neg_sim_form = str(c.get("neg_sim_form", "abs"))
            self.neg_sim_eps = float(c.get("neg_sim_eps", 1e-3))
        elif self.cross_min == "grl":
            self.reversal = GradientReversal(float(c.get("grl_coeff", 1.0)))
            self.adversaries = nn.ModuleDict()
            for m in self.mods:
                t_other = self.targets[other[m]]
                if t_other == "none":
                    raise MMIBError(f"method 'rus': cross_min 'grl' predicts the other modality's targets, but "
                                    f"method.targets.{other[m]} is 'none'")
                self.adversaries[m] = MLP(k, target_dim(t_other, spec.modality(other[m])), [hh])
        lam = dict(c.get("weights") or {})
        unknown = [w for w in lam if w not in WEIGHTS]
        if unknown:
            raise UnknownNameError("loss weight (method.weights)", unknown[0], list(WEIGHTS))
        self.objective = RUSLoss(lambda_r=float(lam.get("R", 1.0)), lambda_u=float(lam.get("U", 3.0)),
                                 lambda_s=float(lam.get("S", 1.0)), lambda_orth=float(lam.get("orth", 1.0)),
                                 lambda_cross=float(lam.get("cross", 0.1)),
                                 temperature_r=float(c.get("temperature_r", 0.1)),
                                 temperature_s=float(c.get("temperature_s", 0.1)),
                                 orth_exclude=[(f"R_{self.mods[0]}", f"R_{self.mods[1]}")],
                                 lambda_hsic=float(lam.get("hsic", 0.0)), lambda_syn=float(lam.get("syn", 3.0)),
                                 hsic_exclude=self._hsic_exclude(str(c.get("hsic_pairs", "modality"))))
        # augmentations of the two views
        acfg = dict(c.get("augment") or {})
        bad = [m for m in acfg if m not in self.mods]
        if bad:
            raise UnknownNameError(f"modality of data set '{spec.name}' (method.augment)", bad[0], self.mods)
        delay = float(c.get("hrf_delay_s", 0.0))
        if delay < 0:
            raise MMIBError(f"method 'rus': hrf_delay_s must be >= 0, got {delay}")
        scope = str(c.get("hrf_delay_scope", "s_view"))
        if scope not in HRF_DELAY_SCOPES:
            raise UnknownNameError("method.hrf_delay_scope", scope, list(HRF_DELAY_SCOPES))
        self.hrf_delay_scope = scope
        self.pipelines: dict[str, Augmentation] = {}  # both views
        self.s_view_pipelines: dict[str, Augmentation] = {}  # then the second view alone (scope s_view)
        for ms in spec.modalities:
            items = acfg.get(ms.name, "default")
            if items == "default":
                items = default_rus_augmentation(self.targets[ms.name], ms.kind)
            items = list(items or [])
            if delay > 0 and self.targets[ms.name] == "hemodynamic":
                shift = {"name": "hrf_delay", "max_shift_s": delay}
                if scope == "both":
                    items.append(shift)
                else:
                    self.s_view_pipelines[ms.name] = build_rus_augmentation(ms, [shift])
            self.pipelines[ms.name] = build_rus_augmentation(ms, items)
        seed = c.get("augment_seed")
        self.generator = make_generator(int(torch.randint(0, 2**62, (1,))) if seed is None else int(seed))

    # ------------------------------------------------------------------ checkpoints keep the augmentation RNG
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["mmib_augment_rng"] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if "mmib_augment_rng" in checkpoint:
            self.generator.set_state(checkpoint["mmib_augment_rng"])

    # ------------------------------------------------------------------ building blocks
    def augment(self, x: Mapping[str, torch.Tensor], s_view: bool = False) -> dict[str, torch.Tensor]:
        """One augmented view; ``s_view=True``: the second view, which feeds only L_S (with ``hrf_delay_scope:
        s_view`` the HRF delay is applied to it alone, so L_R, L_U and L_orth never see shifted fNIRS)."""
        out = {m: self.pipelines[m](x[m], self.generator) for m in self.mods}
        if s_view:
            out.update({m: f(out[m], self.generator) for m, f in self.s_view_pipelines.items()})
        return out

    def _tokens(self, x: Mapping[str, torch.Tensor], mods: Sequence[str]) -> dict[str, torch.Tensor]:
        return {m: self.tokenizers[m](x[m])[0] for m in mods}

    def _hidden(self, tokens: Mapping[str, torch.Tensor], m: str) -> torch.Tensor:
        if self.temporal_kind == "transformer":
            return self.temporal[m]({m: tokens[m]})
        return self.temporal[m](tokens[m])

    def _synergy(self, toks: Mapping[str, torch.Tensor], hidden: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Z_S from the tokens and the unimodal representations of both modalities."""
        if self.fusion_kind == "cross_attention":
            hf = self.fusion(toks, None, self.mods)
        else:
            hf = torch.cat([hidden[m] for m in self.mods], dim=1)
        if self.interaction == "product":
            a, b = self.mods
            prod = self.product[a](hidden[a]) * self.product[b](hidden[b])
            hf = torch.cat([hf, self.product_norm(prod)], dim=1)
        return self.head_s(hf)

    def _forward_tokens(self, toks: Mapping[str, torch.Tensor], mods: Sequence[str]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for m in mods:
            h = self._hidden(toks, m)
            out[f"H_{m}"] = h
            out[f"R_{m}"] = self.head_r[m](h)
            out[f"U_{m}"] = self.head_u[m](h)
        if len(mods) == 2:
            out["S"] = self._synergy(toks, {m: out[f"H_{m}"] for m in self.mods})
        return out

    def _forward(self, x: Mapping[str, torch.Tensor], mods: Sequence[str]) -> dict[str, torch.Tensor]:
        """H_m, Z_R_m, Z_U_m for ``mods`` and H_fused, Z_S when both modalities are given."""
        return self._forward_tokens(self._tokens(x, mods), mods)

    def _check_complete(self, batch: Batch) -> None:
        for m in self.mods:
            pm = (batch.get("mask") or {}).get(m)
            if pm is not None and not bool(pm.all()):
                raise MMIBError(f"method 'rus' needs both modalities in every sample; {int((~pm).sum())} samples "
                                f"of the batch lack '{m}' (drop them, or impute, before training)")

    # ------------------------------------------------------------------ training
    def loss(self, batch: Batch) -> LossOutput:
        self.modalities_of(batch, self.mods)
        self._check_complete(batch)
        x = batch["x"]
        if x[self.mods[0]].shape[0] < 2:
            raise MMIBError("method 'rus': the contrastive terms need batches of at least 2 samples")
        v1, v2 = self.augment(x), self.augment(x, s_view=True)  # v2 feeds L_S only
        toks1 = self._tokens(v1, self.mods)
        o1 = self._forward_tokens(toks1, self.mods)
        s2 = self._forward(v2, self.mods)["S"]
        targets = {m: reconstruction_targets(t, x[m], self.spec.modality(m)) for m, t in self.targets.items()
                   if t != "none"}
        recon = {m: (self.decoders[m](o1[f"U_{m}"]), targets[m]) for m in targets}
        cross: dict[str, torch.Tensor] = {}
        for m in self.mods:
            if self.cross_min == "neg_sim":
                h_other = o1[f"H_{self.other[m]}"] @ self.cross_projection
                cross[m] = neg_sim_loss(o1[f"U_{m}"], h_other, self.neg_sim_form, self.neg_sim_eps)
            elif self.cross_min == "grl":
                pred = self.adversaries[m](self.reversal(l2_normalize(o1[f"U_{m}"])))
                cross[m] = (pred - targets[self.other[m]]).pow(2).mean()
        comps = {k: o1[k] for k in self.component_order()}
        uni = s_syn = None
        if self.synergy == "unimodal_hsic":
            # L_syn trains the fusion and the S head only: Z_S recomputed from detached tokens and H_m, so that the
            # encoders cannot lower it by dropping from one modality what the other also carries
            uni = {m: o1[f"H_{m}"].detach() for m in self.mods}
            if self.syn_grad == "fusion":
                s_syn = self._synergy({m: t.detach() for m, t in toks1.items()}, uni)
        return self.objective({m: o1[f"R_{m}"] for m in self.mods}, (o1["S"], s2), comps, recon, cross, uni, s_syn)

    def _token_encoder_config(self, spec: DatasetSpec) -> dict[str, Any]:
        """The encoder config of the token encoders: the ``encoder`` group, except that a signal whose target is a
        time-resolved band power (``band_envelope``, ``band_envelope_peak``) gets the ``filterbank`` front end (log
        band power over 0.5 s windows every 0.25 s, :class:`~mmib.nn.encoders.FilterbankEncoder`) unless
        ``encoder.modalities.<m>.type`` names an encoder for it (issue 20: the EEG CNN lost the 0.5 s gamma burst)."""
        cfg = dict(self.encoder_cfg)
        per = {m: dict(v or {}) for m, v in (cfg.get("modalities") or {}).items()}
        for ms in spec.modalities:
            if (ms.kind == "signal" and self.targets[ms.name] in TIME_RESOLVED_TARGETS
                    and "type" not in per.get(ms.name, {})):
                per[ms.name] = {**per.get(ms.name, {}), "type": "filterbank"}
        cfg["modalities"] = per
        return cfg

    def _hsic_exclude(self, which: str) -> list[tuple[str, str]]:
        """The component pairs left out of L_hsic: ``all`` = every pair of L_orth; ``modality`` = only
        (R_m, U_m) of each modality and (U_a, U_b)."""
        a, b = self.mods
        keys = self.component_order()
        if which == "all":
            return [(f"R_{a}", f"R_{b}")]
        if which != "modality":
            raise UnknownNameError("method.hsic_pairs", which, ["modality", "all"])
        keep = {frozenset((f"R_{m}", f"U_{m}")) for m in self.mods} | {frozenset((f"U_{a}", f"U_{b}"))}
        return [(p, q) for i, p in enumerate(keys) for q in keys[i + 1:] if frozenset((p, q)) not in keep]

    def component_order(self) -> list[str]:
        return [f"R_{m}" for m in self.mods] + [f"U_{m}" for m in self.mods] + ["S"]

    # ------------------------------------------------------------------ interface
    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        if space not in SPACES:
            raise MMIBError(f"unknown representation space '{space}'; valid: {', '.join(SPACES)}")
        mods = self.modalities_of(batch, modalities)
        out = self._forward(batch["x"], mods)
        key = "H" if space == "representation" else "R"
        return {m: out[f"{key}_{m}"] for m in mods}

    def hidden(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """H_m, the temporal encoder's output of each requested modality (``{modality: (N, hidden_dim)}``), from
        which the heads read: the positive control of a "component does not decode" check."""
        mods = self.modalities_of(batch, modalities)
        toks = self._tokens(batch["x"], mods)
        return {m: self._hidden(toks, m) for m in mods}

    def fuse(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        mods = self.modalities_of(batch, modalities)
        if len(mods) != 2:
            raise MMIBError(f"method 'rus': the fused (synergy) representation Z_S needs both modalities "
                            f"({', '.join(self.mods)}), got {', '.join(mods)}")
        self._check_complete(batch)
        return self._forward(batch["x"], mods)["S"]

    def components(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        mods = self.modalities_of(batch, modalities)
        if len(mods) == 2:
            self._check_complete(batch)
        out = self._forward(batch["x"], mods)
        return {k: out[k] for k in self.component_order() if k in out}
