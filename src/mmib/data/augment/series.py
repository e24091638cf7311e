"""Augmentations of every kind (``noise``, ``mixup``) and of the time axis of sequences and signals (``time_drop``,
``crop``, ``permute``); CoMM App. B.2 / C.1."""

from __future__ import annotations

import torch

from mmib.data.augment.base import (
    Augmentation,
    _from_ntd,
    _time_axis,
    _to_ntd,
    _uniform,
    _valid_lengths,
    _zero_padding,
)
from mmib.errors import MMIBError


class GaussianNoise(Augmentation):
    name = "noise"

    def __init__(self, kind: str, sigma: float = 0.1) -> None:
        super().__init__(kind)
        if not sigma >= 0:
            raise MMIBError(f"noise: sigma must be >= 0, got {sigma!r}")
        self.sigma = float(sigma)

    def __call__(self, x, g=None, lengths=None):
        eps = torch.randn(x.shape, generator=g, device="cpu").to(x)
        return _zero_padding(x + self.sigma * eps, self.kind, lengths)


class TimeDrop(Augmentation):
    """Set ⌊f · length⌋ of the valid time steps of each sample to 0, f ~ U(min_fraction, max_fraction)."""

    name = "time_drop"
    kinds = ("sequence", "signal")

    def __init__(self, kind: str, max_fraction: float = 0.8, min_fraction: float = 0.0) -> None:
        super().__init__(kind)
        if not 0 <= min_fraction <= max_fraction < 1:
            raise MMIBError(f"time_drop: need 0 <= min_fraction <= max_fraction < 1, got {min_fraction}, {max_fraction}")
        self.max_fraction, self.min_fraction = float(max_fraction), float(min_fraction)

    def __call__(self, x, g=None, lengths=None):
        n, t = x.shape[0], x.shape[_time_axis(self.kind)]
        valid = _valid_lengths(x, self.kind, lengths)
        frac = _uniform(n, self.min_fraction, self.max_fraction, g, x.device)
        k = (frac * valid.to(frac.dtype)).floor().long()  # exactly k of the valid steps are dropped
        scores = torch.rand((n, t), generator=g, device="cpu").to(x.device)
        scores = scores.masked_fill(torch.arange(t, device=x.device)[None, :] >= valid[:, None], 2.0)
        rank = scores.argsort(1).argsort(1)
        drop = rank < k[:, None]
        drop = drop[:, :, None] if self.kind == "sequence" else drop[:, None, :]
        return _zero_padding(x.masked_fill(drop, 0.0), self.kind, lengths)


class Crop(Augmentation):
    """Keep a random window covering U(min_fraction, max_fraction) of the valid length, linearly resampled back
    to the valid length (the shape and the lengths do not change)."""

    name = "crop"
    kinds = ("sequence", "signal")

    def __init__(self, kind: str, min_fraction: float = 0.08, max_fraction: float = 1.0) -> None:
        super().__init__(kind)
        if not 0 < min_fraction <= max_fraction <= 1:
            raise MMIBError(f"crop: need 0 < min_fraction <= max_fraction <= 1, got {min_fraction}, {max_fraction}")
        self.min_fraction, self.max_fraction = float(min_fraction), float(max_fraction)

    def __call__(self, x, g=None, lengths=None):
        h = _to_ntd(x, self.kind)  # (N, T, D)
        n, t, _ = h.shape
        valid = _valid_lengths(x, self.kind, lengths).to(h.dtype)
        frac = _uniform(n, self.min_fraction, self.max_fraction, g, x.device).to(h.dtype)
        win = frac * valid
        start = torch.rand(n, generator=g, device="cpu").to(h) * (valid - win)
        pos = torch.arange(t, device=x.device, dtype=h.dtype)[None, :]
        # source position (in samples) of every output step of the valid part
        src = start[:, None] + (pos + 0.5) * (win / valid)[:, None] - 0.5
        src = torch.minimum(src.clamp_min(0), (valid - 1)[:, None])
        lo = src.floor().long().clamp(0, t - 1)
        hi = (lo + 1).clamp(max=(valid.long() - 1)[:, None])
        w = (src - lo.to(h.dtype))[:, :, None]
        out = (1 - w) * h.gather(1, lo[:, :, None].expand_as(h)) + w * h.gather(1, hi[:, :, None].expand_as(h))
        return _zero_padding(_from_ntd(out, self.kind), self.kind, lengths)


class Permute(Augmentation):
    """Cut the valid part of each sample into ``n_segments`` equal segments and put them in a random order."""

    name = "permute"
    kinds = ("sequence", "signal")

    def __init__(self, kind: str, n_segments: int = 4) -> None:
        super().__init__(kind)
        if int(n_segments) < 2:
            raise MMIBError(f"permute: n_segments must be >= 2, got {n_segments!r}")
        self.n_segments = int(n_segments)

    def __call__(self, x, g=None, lengths=None):
        h = _to_ntd(x, self.kind)
        n, t, _ = h.shape
        k = self.n_segments
        valid = _valid_lengths(x, self.kind, lengths)
        pos = torch.arange(t, device=x.device)[None, :].expand(n, t)
        seg = (pos * k) // valid[:, None]  # segment of each position (>= k on padding)
        rank = torch.argsort(torch.rand((n, k), generator=g, device="cpu"), dim=1).to(x.device)  # new place of seg
        seg_rank = rank.gather(1, seg.clamp(max=k - 1))
        key = torch.where(seg < k, seg_rank * t + pos, k * t + pos)
        order = torch.argsort(key, dim=1)
        out = h.gather(1, order[:, :, None].expand_as(h))
        return _from_ntd(out, self.kind)


class Mixup(Augmentation):
    """x ← λ x + (1 − λ) x_π with a random partner π from the batch and λ ~ U(lam_min, 1) (λ >= 0.5 keeps the
    sample's identity dominant)."""

    name = "mixup"

    def __init__(self, kind: str, lam_min: float = 0.7) -> None:
        super().__init__(kind)
        if not 0 <= lam_min <= 1:
            raise MMIBError(f"mixup: lam_min must lie in [0, 1], got {lam_min!r}")
        self.lam_min = float(lam_min)

    def __call__(self, x, g=None, lengths=None):
        n = x.shape[0]
        partner = torch.randint(0, n, (n,), generator=g, device="cpu").to(x.device)
        lam = _uniform(n, self.lam_min, 1.0, g, x.device).to(x).view(-1, *([1] * (x.dim() - 1)))
        return _zero_padding(lam * x + (1 - lam) * x[partner], self.kind, lengths)
