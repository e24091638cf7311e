"""Image augmentations, SimCLR's pipeline: ``resized_crop``, ``hflip``, ``color_jitter``, ``grayscale``,
``gaussian_blur``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mmib.data.augment.base import Augmentation, _uniform
from mmib.errors import MMIBError


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
