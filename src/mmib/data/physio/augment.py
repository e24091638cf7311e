"""The physiological augmentations of the ``rus`` method's views (spec C.5; ``docs/methods/rus.md``), beside the
generic ones of :mod:`mmib.data.augment` (``noise``, ``time_drop``, …): ``time_mask`` (one contiguous segment set to
0), ``channel_dropout``, ``band_snr`` (EEG: a random band's Fourier coefficients scaled by ±``max_db``),
``hrf_amplitude`` (fNIRS: the epoch scaled by a gain — after baseline correction and the 0.01–0.1 Hz band-pass the
epoch is dominated by the haemodynamic response) and ``hrf_delay`` (fNIRS: shifted in time by up to
``max_shift_s``); :func:`default_rus_augmentation` (the default views) and :func:`build_rus_augmentation` (a
pipeline from its config).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mmib.data.augment import AUGMENTATIONS, Augmentation, Compose, Identity, RandomApply
from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS
from mmib.data.physio.targets import BAND_TARGETS, require_rate
from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError, UnknownNameError


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
            item["rate"] = require_rate(ms, f"augmentation '{name}'")
        try:
            aug = cls(ms.kind, **item)
        except TypeError as e:
            raise MMIBError(f"augmentation '{name}' of modality '{ms.name}': bad parameters {item}: {e}") from e
        augs.append(aug if p >= 1.0 else RandomApply(aug, p))
    return augs[0] if len(augs) == 1 else Compose(ms.kind, augs)
