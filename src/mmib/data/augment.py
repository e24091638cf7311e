"""Augmentations per data kind, applied to whole batches, per sample with a probability, seeded by a generator.

Every augmentation is a callable ``aug(x, g, lengths=None) -> x'`` on a batch of one modality (the batch dimension
first) that draws all its randomness from the :class:`torch.Generator` ``g`` (so a method that owns a generator
gets reproducible views). Shapes follow :mod:`mmib.data.spec`: vector ``(N, D)``, sequence ``(N, T, D)``, signal
``(N, C, T)``, image ``(N, C, H, W)``. Padded sequence steps (``t >= lengths[n]``) stay zero.

==========================  ================  =================================================================
name                        kinds             what (source)
==========================  ================  =================================================================
``noise``                   all               add N(0, σ²) to every value (CoMM App. B.2: σ = 0.1)
``time_drop``               sequence, signal  set a fraction ~ U(0, max_fraction) of time steps to 0 (CoMM: 0–80%)
``crop``                    sequence, signal  keep a random window of U(min, max) of the valid length, resampled
                                              back to the full length (CoMM App. C.1: 8%–100%)
``permute``                 sequence, signal  cut the valid part in ``n_segments`` and shuffle them
``mixup``                   vector, sequence  x ← λx + (1−λ)x_π, partner π from the batch, λ ~ U(λ_min, 1)
                            signal, image
``resized_crop``            image             SimCLR RandomResizedCrop (scale, ratio), bilinear
``hflip``                   image             horizontal flip
``color_jitter``            image             brightness, contrast, saturation, hue (SimCLR 0.4, 0.4, 0.4, 0.1)
``grayscale``               image             luma to every channel
``gaussian_blur``           image             σ ~ U(0.1, 2.0) (in pixels at 224 px, scaled to the image size)
==========================  ================  =================================================================

:class:`RandomApply` applies an augmentation to each sample independently with probability ``p``;
:class:`Compose` chains them. :func:`build_augmentation` builds a pipeline from a config list such as
``[{"name": "noise", "sigma": 0.1, "p": 0.5}, {"name": "time_drop", "max_fraction": 0.8, "p": 0.5}]``, and
:func:`default_augmentation` gives the CoMM defaults of a kind.

:class:`UniqueAugmentation` is FactorCL's *unique augmentation* (Liang et al., NeurIPS 2023, §3.2, Eqs. 17–18):
augment X2 given X1 so that the information X2 shares with X1 is kept. The perturbation of a base augmentation is
projected onto the orthogonal complement of the subspace of X2 that is linearly predictable from X1 (estimated
on the batch by ridge regression and an SVD), or restricted to user-given "unique" features (the paper's "CutMix on
nonclinical features" / "noise on silent frames").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mmib.errors import MMIBError, UnknownNameError

KINDS = ("vector", "sequence", "signal", "image")


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device="cpu").to(device)


def _time_axis(kind: str) -> int:
    if kind == "sequence":
        return 1
    if kind == "signal":
        return 2
    raise MMIBError(f"time-axis augmentations need a sequence or signal, got a {kind}")


def _valid_lengths(x: torch.Tensor, kind: str, lengths: torch.Tensor | None) -> torch.Tensor:
    t = x.shape[_time_axis(kind)]
    if lengths is None:
        return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    return lengths.to(x.device).long().clamp(1, t)


def _to_ntd(x: torch.Tensor, kind: str) -> torch.Tensor:
    """(N, T, D) view of a sequence or signal."""
    return x if kind == "sequence" else x.transpose(1, 2)


def _from_ntd(x: torch.Tensor, kind: str) -> torch.Tensor:
    return x if kind == "sequence" else x.transpose(1, 2)


class Augmentation:
    """Base class: ``kinds`` lists the data kinds an augmentation accepts."""

    kinds: tuple[str, ...] = KINDS
    name = ""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise MMIBError(f"augmentation: unknown data kind '{kind}'; valid: {', '.join(KINDS)}")
        if kind not in self.kinds:
            raise MMIBError(f"augmentation '{self.name}' does not apply to a {kind} (it applies to "
                            f"{', '.join(self.kinds)})")
        self.kind = kind

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None,
                 lengths: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if k != "kind"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def _zero_padding(x: torch.Tensor, kind: str, lengths: torch.Tensor | None) -> torch.Tensor:
    if lengths is None or kind not in ("sequence", "signal"):
        return x
    t = x.shape[_time_axis(kind)]
    pad = torch.arange(t, device=x.device)[None, :] >= lengths.to(x.device)[:, None]  # (N, T)
    pad = pad[:, :, None] if kind == "sequence" else pad[:, None, :]
    return x.masked_fill(pad, 0.0)


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


# ----------------------------------------------------------------------------------------------- images
class ResizedCrop(Augmentation):
    """SimCLR's RandomResizedCrop: area fraction ~ U(scale), log-aspect ~ U(log ratio), resized to the input size."""

    name = "resized_crop"
    kinds = ("image",)

    def __init__(self, kind: str, scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3)) -> None:
        super().__init__(kind)
        if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
            raise MMIBError(f"resized_crop: bad scale {scale!r} or ratio {ratio!r}")
        self.scale, self.ratio = tuple(float(s) for s in scale), tuple(float(r) for r in ratio)

    def __call__(self, x, g=None, lengths=None):
        n = x.shape[0]
        area = _uniform(n, *self.scale, g, x.device)
        logr = _uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), g, x.device)
        r = logr.exp()
        w = (area * r).sqrt().clamp(max=1.0)  # fraction of the width
        h = (area / r).sqrt().clamp(max=1.0)
        cx = (torch.rand(n, generator=g, device="cpu").to(x.device) * 2 - 1) * (1 - w)
        cy = (torch.rand(n, generator=g, device="cpu").to(x.device) * 2 - 1) * (1 - h)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class HFlip(Augmentation):
    name = "hflip"
    kinds = ("image",)

    def __call__(self, x, g=None, lengths=None):
        return x.flip(-1)


def _luma(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


class ColorJitter(Augmentation):
    """Random brightness, contrast, saturation (factors ~ U(1−s, 1+s)) and hue (rotation by U(−h, h) turns in the
    YIQ chroma plane), in a random order per batch, on images in [0, 1] (clamped)."""

    name = "color_jitter"
    kinds = ("image",)

    def __init__(self, kind: str, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.1) -> None:
        super().__init__(kind)
        if min(brightness, contrast, saturation) < 0 or not 0 <= hue <= 0.5:
            raise MMIBError("color_jitter: brightness, contrast, saturation must be >= 0 and hue in [0, 0.5]")
        self.brightness, self.contrast, self.saturation, self.hue = map(float, (brightness, contrast, saturation, hue))

    def __call__(self, x, g=None, lengths=None):
        n = x.shape[0]
        shape = (n, 1, 1, 1)

        def factor(s):
            return _uniform(n, max(0.0, 1 - s), 1 + s, g, x.device).to(x).view(shape)

        ops = torch.randperm(4, generator=g).tolist()
        for o in ops:
            if o == 0 and self.brightness > 0:
                x = (x * factor(self.brightness)).clamp(0, 1)
            elif o == 1 and self.contrast > 0:
                m = _luma(x).mean(dim=(1, 2, 3), keepdim=True)
                x = ((x - m) * factor(self.contrast) + m).clamp(0, 1)
            elif o == 2 and self.saturation > 0:
                y = _luma(x)
                x = ((x - y) * factor(self.saturation) + y).clamp(0, 1)
            elif o == 3 and self.hue > 0 and x.shape[1] == 3:
                ang = _uniform(n, -self.hue, self.hue, g, x.device).to(x) * 2 * math.pi
                yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                                   device=x.device, dtype=x.dtype)
                q = torch.einsum("ij,njhw->nihw", yiq, x)
                c, s = ang.cos().view(n, 1, 1), ang.sin().view(n, 1, 1)
                i2 = c * q[:, 1] - s * q[:, 2]
                q2 = s * q[:, 1] + c * q[:, 2]
                q = torch.stack([q[:, 0], i2, q2], 1)
                x = torch.einsum("ij,njhw->nihw", torch.linalg.inv(yiq), q).clamp(0, 1)
        return x


class Grayscale(Augmentation):
    name = "grayscale"
    kinds = ("image",)

    def __call__(self, x, g=None, lengths=None):
        return _luma(x).expand_as(x).contiguous()


class GaussianBlur(Augmentation):
    """Gaussian blur with σ ~ U(sigma) given in pixels of a ``reference_size`` image (SimCLR: σ ∈ [0.1, 2] at
    224 px), scaled to the actual image size; separable, per-sample σ."""

    name = "gaussian_blur"
    kinds = ("image",)

    def __init__(self, kind: str, sigma: Sequence[float] = (0.1, 2.0), reference_size: int = 224) -> None:
        super().__init__(kind)
        if not 0 < sigma[0] <= sigma[1]:
            raise MMIBError(f"gaussian_blur: bad sigma range {sigma!r}")
        self.sigma, self.reference_size = (float(sigma[0]), float(sigma[1])), int(reference_size)

    def __call__(self, x, g=None, lengths=None):
        n, c, h, w = x.shape
        scale = max(h, w) / self.reference_size
        sig = _uniform(n, *self.sigma, g, x.device).to(x) * scale
        sig = sig.clamp_min(1e-3)
        r = max(1, int(math.ceil(3 * self.sigma[1] * scale)))
        t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
        k = torch.exp(-0.5 * (t[None, :] / sig[:, None]) ** 2)
        k = k / k.sum(1, keepdim=True)  # (N, K)
        kk = k.repeat_interleave(c, 0)  # (N*C, K)
        y = x.reshape(1, n * c, h, w)
        y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), kk[:, None, None, :], groups=n * c)
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), kk[:, None, :, None], groups=n * c)
        return y.reshape(n, c, h, w)


# ----------------------------------------------------------------------------------------------- composition
class RandomApply(Augmentation):
    """Apply ``aug`` to each sample independently with probability ``p`` (untouched samples pass through)."""

    name = "random_apply"

    def __init__(self, aug: Augmentation, p: float = 1.0) -> None:
        super().__init__(aug.kind)
        if not 0 <= p <= 1:
            raise MMIBError(f"augmentation '{aug.name}': probability p must lie in [0, 1], got {p!r}")
        self.aug, self.p = aug, float(p)

    def __call__(self, x, g=None, lengths=None):
        n = x.shape[0]
        apply = torch.rand(n, generator=g, device="cpu").to(x.device) < self.p
        y = self.aug(x, g, lengths)  # draws its randomness whatever `apply` is, so draws stay aligned
        return torch.where(apply.view(-1, *([1] * (x.dim() - 1))), y, x)


class Compose(Augmentation):
    name = "compose"

    def __init__(self, kind: str, augs: Sequence[Augmentation]) -> None:
        super().__init__(kind)
        for a in augs:
            if a.kind != kind:
                raise MMIBError(f"compose: augmentation '{a.name}' is for a {a.kind}, the pipeline for a {kind}")
        self.augs = list(augs)

    def __call__(self, x, g=None, lengths=None):
        for a in self.augs:
            x = a(x, g, lengths)
        return x


class Identity(Augmentation):
    name = "identity"

    def __call__(self, x, g=None, lengths=None):
        return x


AUGMENTATIONS: dict[str, type[Augmentation]] = {
    c.name: c for c in (GaussianNoise, TimeDrop, Crop, Permute, Mixup, ResizedCrop, HFlip, ColorJitter, Grayscale,
                        GaussianBlur, Identity)
}


def default_augmentation_config(kind: str) -> list[dict[str, Any]]:
    """CoMM's defaults (App. B.2): vectors: Gaussian noise σ=0.1; sequences/signals: noise σ=0.1 and random drop of
    0–80% of the time steps, each with p=0.5; images: SimCLR's pipeline."""
    if kind == "vector":
        return [{"name": "noise", "sigma": 0.1}]
    if kind in ("sequence", "signal"):
        return [{"name": "noise", "sigma": 0.1, "p": 0.5}, {"name": "time_drop", "max_fraction": 0.8, "p": 0.5}]
    if kind == "image":
        return [{"name": "resized_crop", "scale": [0.08, 1.0]}, {"name": "hflip", "p": 0.5},
                {"name": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8},
                {"name": "grayscale", "p": 0.2}, {"name": "gaussian_blur", "p": 0.5}]
    raise MMIBError(f"augmentation: unknown data kind '{kind}'; valid: {', '.join(KINDS)}")


def build_augmentation(kind: str, config: Sequence[Mapping[str, Any]] | str | None = "default") -> Augmentation:
    """A pipeline from a config list of ``{"name": ..., "p": ..., **params}`` (``"default"`` → the kind's
    default, ``None`` or ``[]`` → identity).

    Raises:
        UnknownNameError: unknown augmentation name or parameter.
        MMIBError: an augmentation that does not apply to this kind, or a bad parameter value.
    """
    if config == "default":
        config = default_augmentation_config(kind)
    elif isinstance(config, str):
        raise MMIBError(f"augmentation config must be a list of {{name: ...}} items or 'default', got {config!r}")
    if not config:
        return Identity(kind)
    augs: list[Augmentation] = []
    for item in config:
        item = dict(item)
        name = item.pop("name", None)
        if name not in AUGMENTATIONS:
            raise UnknownNameError("augmentation", str(name), list(AUGMENTATIONS))
        p = float(item.pop("p", 1.0))
        if not 0 <= p <= 1:
            raise MMIBError(f"augmentation '{name}': probability p must lie in [0, 1], got {p!r}")
        cls = AUGMENTATIONS[name]
        try:
            aug = cls(kind, **item)
        except TypeError as e:
            raise MMIBError(f"augmentation '{name}': bad parameters {item}: {e}") from e
        augs.append(aug if p >= 1.0 else RandomApply(aug, p))
    return augs[0] if len(augs) == 1 else Compose(kind, augs)


# ----------------------------------------------------------------------------------------------- FactorCL
class UniqueAugmentation:
    """FactorCL's unique augmentation X2' ~ t(X2 | X1) (Liang et al. 2023, §3.2, Eq. 18: I(X2;X2'|X1) = I(X2;Y|X1)).

    A base augmentation of X2 is drawn and its perturbation δ = t(x2) − x2 is kept only where it cannot destroy
    what X2 shares with X1:

    * ``protect="cv"`` (default): the shared part is the subspace of (flattened) X2 that X1 predicts *out of
      sample*, decided on the batch by cross-validation: ``folds``-fold ridge regression of X2 on X1 (dual form, so
      flattened signals with more features than samples work) gives out-of-fold predictions P; the candidate
      directions are P's right singular vectors v_k; component k is kept when its held-out R²_k =
      1 − ‖(X2 − P) v_k‖² / ‖X2 v_k‖² exceeds both ``min_r2`` and the largest R² that ``permutations`` copies of
      the procedure reach with the rows of X1 shuffled (a permutation test at level 1/(permutations + 1) on the
      leading component). The protected rank is the number of leading components that pass. Nothing shared →
      rank 0 (up to the test's false-positive rate); δ is projected off the kept directions;
    * ``protect="auto"`` (the earlier rule): ridge-regress X2 on X1 *in sample*, take the top singular directions
      of the prediction that explain ``energy`` of its variance (at most ``max_rank``). An in-sample prediction is
      never zero, so this protects about half the rank even when the modalities are independent;
    * ``protect=[i, j, ...]``: indices of flattened X2 features known to be shared (e.g. "clinical" features);
      δ is zeroed there (the paper's "CutMix on nonclinical features" / "noise on silent frames");
    * ``protect=None``: no protection (= the independent augmentation of the FactorCL-IndAug ablation).

    Args:
        base: the augmentation of X2.
        protect: ``"cv"``, ``"auto"``, a list of feature indices, or ``None``.
        ridge: ridge penalty relative to the mean squared norm of the (centered) X1 rows.
        energy, max_rank: ``"auto"``: how much of the predictable variance the protected subspace covers;
            ``max_rank`` also caps the ``"cv"`` rank.
        folds, permutations, min_r2: ``"cv"``'s cross-validation folds, permutation count and R² floor.
        seed: seed of ``"cv"``'s fold assignment and permutations (a fixed private generator, so the rule does not
            draw from the augmentation stream).
        refresh_every: recompute the ``"cv"`` / ``"auto"`` basis every this many calls and reuse it in between (the
            basis lives in feature space, so it carries over from batch to batch; 1 = every batch).
    """

    def __init__(self, base: Augmentation, protect: str | Sequence[int] | None = "cv", ridge: float = 1e-1,
                 energy: float = 0.9, max_rank: int = 64, folds: int = 5, permutations: int = 19,
                 min_r2: float = 0.02, seed: int = 0, refresh_every: int = 1) -> None:
        if isinstance(protect, str) and protect not in ("cv", "auto"):
            raise MMIBError(f"unique augmentation: protect must be 'cv', 'auto', a list of indices or None, "
                            f"got {protect!r}")
        if not 0 < energy <= 1 or ridge < 0 or max_rank < 1:
            raise MMIBError("unique augmentation: need 0 < energy <= 1, ridge >= 0, max_rank >= 1")
        if int(folds) < 2 or int(permutations) < 1 or not 0 <= min_r2 < 1 or int(refresh_every) < 1:
            raise MMIBError("unique augmentation: need folds >= 2, permutations >= 1, 0 <= min_r2 < 1 and "
                            "refresh_every >= 1")
        self.refresh_every, self._calls, self._basis = int(refresh_every), 0, None
        self.base, self.protect, self.ridge, self.energy, self.max_rank = base, protect, float(ridge), float(energy), int(max_rank)
        self.folds, self.permutations, self.min_r2, self.seed = int(folds), int(permutations), float(min_r2), int(seed)

    def shared_basis(self, x2: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Orthonormal columns (D2, r) spanning the protected part of flattened X2 (``"cv"`` or ``"auto"``)."""
        if self.protect == "cv":
            return self.cv_shared_basis(x2, x1)[0]
        a = x1.reshape(x1.shape[0], -1).double()
        b = x2.reshape(x2.shape[0], -1).double()
        a = a - a.mean(0)
        b = b - b.mean(0)
        lam = self.ridge * float(a.pow(2).mean()) * a.shape[0] + 1e-8
        # prediction of b from a by ridge regression, computed in the sample space (N x N system)
        k = a @ a.T
        pred = k @ torch.linalg.solve(k + lam * torch.eye(k.shape[0], dtype=k.dtype, device=k.device), b)
        _, s, vh = torch.linalg.svd(pred, full_matrices=False)
        if float(s.sum()) <= 0:
            return b.new_zeros(b.shape[1], 0).to(x2.dtype)
        e = (s**2).cumsum(0) / (s**2).sum()
        r = min(int((e < self.energy).sum()) + 1, self.max_rank, vh.shape[0])
        return vh[:r].T.to(x2.dtype)

    def _heldout_r2(self, a: torch.Tensor, b: torch.Tensor, fold: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Out-of-fold ridge predictions of ``b`` from ``a``; returns (R² per direction, directions (D2, r))."""
        pred = torch.zeros_like(b)
        for f in range(self.folds):
            te, tr = fold == f, fold != f
            at, bt = a[tr], b[tr]
            ma, mb = at.mean(0), bt.mean(0)
            at, bt = at - ma, bt - mb
            k = at @ at.T
            lam = self.ridge * float(k.diagonal().mean()) + 1e-8
            alpha = torch.linalg.solve(k + lam * torch.eye(k.shape[0], dtype=k.dtype, device=k.device), bt)
            pred[te] = (a[te] - ma) @ at.T @ alpha + mb
        b0 = b - b.mean(0)
        p0 = pred - b.mean(0)
        r = min(self.max_rank, *b0.shape)
        _, _, vh = torch.linalg.svd(p0, full_matrices=False)
        v = vh[:r].T  # (D2, r)
        bv, pv = b0 @ v, p0 @ v
        r2 = 1 - (bv - pv).pow(2).sum(0) / bv.pow(2).sum(0).clamp_min(1e-300)
        return r2, v

    def cv_shared_basis(self, x2: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The ``"cv"`` basis (D2, r) and a record ``{"r2": held-out R² per candidate, "threshold": ..., "rank"}``."""
        n = x1.shape[0]
        a = x1.reshape(n, -1).double()
        b = x2.reshape(n, -1).double()
        empty = b.new_zeros(b.shape[1], 0).to(x2.dtype)
        if n < 2 * self.folds:
            return empty, {"r2": [], "threshold": float("nan"), "rank": 0}
        g = torch.Generator().manual_seed(self.seed)
        fold = torch.randperm(n, generator=g) % self.folds
        r2, v = self._heldout_r2(a, b, fold.to(a.device))
        null = [float(self._heldout_r2(a[torch.randperm(n, generator=g).to(a.device)], b, fold.to(a.device))[0].max())
                for _ in range(self.permutations)]
        thr = max(self.min_r2, max(null))
        passed = (r2 > thr).tolist()
        rank = passed.index(False) if False in passed else len(passed)
        return v[:, :rank].to(x2.dtype), {"r2": r2.tolist(), "threshold": thr, "rank": rank}

    def __call__(self, x2: torch.Tensor, x1: torch.Tensor, g: torch.Generator | None = None,
                 lengths: torch.Tensor | None = None) -> torch.Tensor:
        if x1.shape[0] != x2.shape[0]:
            raise MMIBError(f"unique augmentation: batch sizes differ ({x2.shape[0]} vs {x1.shape[0]})")
        y = self.base(x2, g, lengths)
        if self.protect is None:
            return y
        delta = (y - x2).reshape(x2.shape[0], -1)
        if self.protect in ("auto", "cv"):
            if x2.shape[0] < 2:
                return y
            if self._basis is None or self._calls % self.refresh_every == 0 or self._basis.shape[0] != delta.shape[1]:
                self._basis = self.shared_basis(x2, x1)
            self._calls += 1
            basis = self._basis.to(delta)
            delta = delta - (delta @ basis) @ basis.T
        else:
            idx = torch.as_tensor(list(self.protect), dtype=torch.long, device=x2.device)
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= delta.shape[1]):
                raise MMIBError(f"unique augmentation: protected feature index out of range [0, {delta.shape[1]})")
            delta = delta.index_fill(1, idx, 0.0)
        return x2 + delta.reshape(x2.shape)


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator for augmentations (all draws happen on the CPU and move to the data's device)."""
    return torch.Generator().manual_seed(int(seed))


AugmentFn = Callable[[torch.Tensor, torch.Generator | None, torch.Tensor | None], torch.Tensor]


class ModalityAugmenter:
    """Per-modality augmentation pipelines of a data set and the generator they draw from (owned by a method).

    Args:
        spec: the data set's spec (a modality's kind picks its default pipeline).
        config: ``{"default": "default" | None | [items], "modalities": {name: "default" | None | [items]}}``;
            ``"default"`` = :func:`default_augmentation_config` of the kind, ``None`` = no augmentation.
        seed: seed of the generator (draw it from the seeded global RNG to follow the run's seed).
    """

    def __init__(self, spec, config: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        config = dict(config or {})
        unknown = [k for k in config if k not in ("default", "modalities")]
        if unknown:
            raise UnknownNameError("key of the augmentation config", unknown[0], ["default", "modalities"])
        default = config.get("default", "default")
        per = dict(config.get("modalities") or {})
        bad = [m for m in per if m not in spec.modality_names]
        if bad:
            raise UnknownNameError(f"modality of data set '{spec.name}' (augment.modalities)", bad[0], spec.modality_names)
        self.pipelines: dict[str, Augmentation] = {
            ms.name: build_augmentation(ms.kind, per.get(ms.name, default)) for ms in spec.modalities
        }
        self.generator = make_generator(seed)

    def __call__(self, x: Mapping[str, torch.Tensor], lengths: Mapping[str, torch.Tensor] | None = None,
                 modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        mods = list(x) if modalities is None else list(modalities)
        return {m: self.pipelines[m](x[m], self.generator, (lengths or {}).get(m)) for m in mods}

    def one(self, m: str, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.pipelines[m](x, self.generator, lengths)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)
