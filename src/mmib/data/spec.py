"""The data contract: what a modality is and what a data set holds.

Every data set in mmib carries a :class:`DatasetSpec`; encoders are chosen from a modality's ``kind`` and checked
against its ``shape`` (the per-sample shape, without the batch dimension).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmib.errors import MMIBError, UnknownNameError


class DataValidationError(MMIBError, ValueError):
    """Bad input at the data boundary; the message names the modality/key and what was expected.

    (Defined here, the lowest layer of the data contract, so that specs raise it too; importable from
    :mod:`mmib.data.dataset`.)
    """


class DataWarning(UserWarning):
    """Legal but suspicious data (single-class labels, a constant modality, an empty test split); the message
    names the modality / key / file."""


MODALITY_KINDS = ("vector", "sequence", "signal", "image")
TASK_TYPES = ("classification", "regression", "none")

#: number of per-sample dimensions each kind has: vector (D,), sequence (T, D), signal (C, T), image (C, H, W)
KIND_NDIM = {"vector": 1, "sequence": 2, "signal": 2, "image": 3}


@dataclass(frozen=True)
class ModalitySpec:
    """One modality of a data set.

    Attributes:
        name: the key of this modality in every sample and batch.
        kind: ``vector`` (D,), ``sequence`` (T, D) of feature vectors (variable length via padding mask),
            ``signal`` (C, T) multichannel time series, or ``image`` (C, H, W).
        shape: per-sample shape, without the batch dimension. For sequences T may be ``None`` (variable).
        rate: sampling rate in Hz for signals and sequences, if known.
        channels: channel names for signals (e.g. a 10-20 montage), if known.
    """

    name: str
    kind: str
    shape: tuple[int | None, ...]
    rate: float | None = None
    channels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DataValidationError(f"ModalitySpec: name must be a non-empty string, got {self.name!r}")
        if "." in self.name:
            raise DataValidationError(
                f"modality '{self.name}': a modality name cannot contain '.' (names become config keys and module "
                f"names); rename it, e.g. '{self.name.replace('.', '_')}'"
            )
        if self.kind not in MODALITY_KINDS:
            raise DataValidationError(
                f"modality '{self.name}': kind must be one of {', '.join(MODALITY_KINDS)}, got {self.kind!r}"
            )
        shape = tuple(self.shape)
        object.__setattr__(self, "shape", shape)
        if len(shape) != KIND_NDIM[self.kind]:
            raise DataValidationError(
                f"modality '{self.name}': a {self.kind} has {KIND_NDIM[self.kind]} per-sample dimensions, "
                f"got shape {shape}"
            )
        for s in shape:
            if s is not None and (not isinstance(s, int) or s <= 0):
                raise DataValidationError(f"modality '{self.name}': shape entries must be positive ints, got {shape}")
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(self.channels))
            if self.kind == "signal" and len(self.channels) != shape[0]:
                raise DataValidationError(
                    f"modality '{self.name}': {len(self.channels)} channel names for {shape[0]} channels"
                )

    @property
    def feature_dim(self) -> int:
        """Size of one time step (sequence), the number of channels (signal/image) or the vector length."""
        if self.kind == "sequence":
            return int(self.shape[1])  # type: ignore[arg-type]
        return int(self.shape[0])  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "rate": self.rate,
            "channels": list(self.channels) if self.channels else None,
        }

    @classmethod
    def infer(cls, name: str, sample_shape: Sequence[int], kind: str | None = None, **kw: Any) -> ModalitySpec:
        """Guess the kind from the per-sample shape: 1-D → vector, 2-D → signal (C, T), 3-D → image."""
        if kind is None:
            by_ndim = {1: "vector", 2: "signal", 3: "image"}
            if len(sample_shape) not in by_ndim:
                raise DataValidationError(
                    f"modality '{name}': cannot infer a kind from per-sample shape {tuple(sample_shape)}; "
                    "expected 1 (vector), 2 (signal C×T) or 3 (image C×H×W) dimensions"
                )
            kind = by_ndim[len(sample_shape)]
        return cls(name=name, kind=kind, shape=tuple(int(s) for s in sample_shape), **kw)


@dataclass(frozen=True)
class DatasetSpec:
    """What a multimodal data set holds.

    Attributes:
        name: registry name of the data set.
        modalities: the modalities, in a fixed order.
        task: ``classification``, ``regression`` or ``none`` (unlabelled).
        n_classes: number of classes for classification.
        target_dim: dimension of a regression target.
        latents: names of ground-truth latent variables (synthetic data), mapped to ``discrete`` or
            ``continuous`` (with the number of values for discrete ones, e.g. ``{"redundant": 4}``; a continuous
            latent maps to 0).
    """

    name: str
    modalities: tuple[ModalitySpec, ...]
    task: str = "none"
    n_classes: int | None = None
    target_dim: int = 1
    latents: Mapping[str, int] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        mods = tuple(self.modalities)
        object.__setattr__(self, "modalities", mods)
        object.__setattr__(self, "latents", dict(self.latents))
        if not mods:
            raise DataValidationError(f"data set '{self.name}': needs at least one modality")
        names = [m.name for m in mods]
        if len(set(names)) != len(names):
            raise DataValidationError(f"data set '{self.name}': duplicate modality names {names}")
        if self.task not in TASK_TYPES:
            raise DataValidationError(f"data set '{self.name}': task must be one of {TASK_TYPES}, got {self.task!r}")
        if self.task == "classification" and (self.n_classes is None or self.n_classes < 2):
            raise DataValidationError(f"data set '{self.name}': a classification task needs n_classes >= 2")

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def modality(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise UnknownNameError(f"modality of data set '{self.name}'", name, self.modality_names)

    def check_modalities(self, names: Sequence[str] | None) -> tuple[str, ...]:
        """Validate a subset of modality names (``None`` → all), keeping the data set's order."""
        if names is None:
            return self.modality_names
        if isinstance(names, str):
            names = [names]
        unknown = [n for n in names if n not in self.modality_names]
        if unknown:
            raise UnknownNameError(f"modality of data set '{self.name}'", ", ".join(unknown), self.modality_names)
        if not names:
            raise DataValidationError(f"data set '{self.name}': an empty set of modalities was requested")
        return tuple(n for n in self.modality_names if n in set(names))

    def subset(self, names: Sequence[str]) -> DatasetSpec:
        keep = self.check_modalities(names)
        return DatasetSpec(
            name=self.name,
            modalities=tuple(self.modality(n) for n in keep),
            task=self.task,
            n_classes=self.n_classes,
            target_dim=self.target_dim,
            latents=self.latents,
            description=self.description,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "modalities": [m.to_dict() for m in self.modalities],
            "task": self.task,
            "n_classes": self.n_classes,
            "target_dim": self.target_dim,
            "latents": dict(self.latents),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetSpec:
        mods = tuple(
            ModalitySpec(
                name=m["name"],
                kind=m["kind"],
                shape=tuple(m["shape"]),
                rate=m.get("rate"),
                channels=tuple(m["channels"]) if m.get("channels") else None,
            )
            for m in d["modalities"]
        )
        return cls(
            name=d["name"],
            modalities=mods,
            task=d.get("task", "none"),
            n_classes=d.get("n_classes"),
            target_dim=d.get("target_dim", 1),
            latents=d.get("latents", {}),
            description=d.get("description", ""),
        )
