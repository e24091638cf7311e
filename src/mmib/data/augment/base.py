"""The augmentation base class, the helpers every augmentation shares (time axis, valid lengths, padding) and the
composition of augmentations (per-sample :class:`RandomApply`, :class:`Compose`, :class:`Identity`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmib.errors import MMIBError

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
