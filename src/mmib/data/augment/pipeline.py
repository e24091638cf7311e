"""Pipelines by name: the registry :data:`AUGMENTATIONS`, the CoMM defaults per kind, :func:`build_augmentation` from a
config list, and :class:`ModalityAugmenter` (one pipeline per modality and the generator they draw from)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from mmib.data.augment.base import KINDS, Augmentation, Compose, Identity, RandomApply
from mmib.data.augment.image import ColorJitter, GaussianBlur, Grayscale, HFlip, ResizedCrop
from mmib.data.augment.series import Crop, GaussianNoise, Mixup, Permute, TimeDrop
from mmib.errors import MMIBError, UnknownNameError

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
