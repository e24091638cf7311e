"""The typed options (:mod:`mmib.methods.options`) of COX and its baselines: ``conf/method/cox.yaml`` and the
``cox_*.yaml`` that extend it (``tests/methods/test_options.py`` compares them key by key). The ablation is a typed
flag (:class:`COXAblation`), read once by :class:`~mmib.methods.cox.method.COXMethod`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from mmib.methods.options import OptimOptions, optim_field


class COXAblation(str, enum.Enum):
    """``method.ablation``."""

    NONE = "none"
    NO_CONNECTION = "no_connection"  # no VIB: IM heads and raw IM features on z^O
    NO_EXPLORATION = "no_exploration"  # no exploration loss
    NO_WARMUP = "no_warmup"  # unsup only: no Eq. 14 warm-up

    def __str__(self) -> str:  # the config word, on every Python version
        return self.value


def perceptor_method_defaults() -> dict[str, Any]:
    """``perceptor.method``: the alignment method trained on the IM rows by ``perceptor.type=pretrain``; a partial
    mapping is completed from these."""
    return {"name": "clip", "representation_dim": 16, "embed_dim": 16, "head_layers": 2}


# optional keys: read by COX but not in cox.yaml (a new key there would change the fingerprint of every archived
# COX run); the options test skips them where the YAML lacks them
_OPTIONAL = {"yaml_optional": True}


@dataclass(frozen=True)
class PerceptorOptions:
    """``method.perceptor``: the frozen perceptors of the IM modalities."""

    type: str = "identity"  # identity | random_linear | run | pretrain
    dim: int = 16  # random_linear: output size
    run_dir: str | None = None  # run: an mmib run trained on the IM modalities
    space: str = "representation"  # run / pretrain: which space of that method is the IM feature
    epochs: int = 30  # pretrain: epochs of the alignment method on the IM training rows
    method: dict[str, Any] = field(default_factory=perceptor_method_defaults)
    seed: int = field(default=0, metadata=_OPTIONAL)  # random_linear weights / pretrain batches
    batch_size: int = field(default=128, metadata=_OPTIONAL)  # pretrain
    lr: float = field(default=1.0e-3, metadata=_OPTIONAL)  # pretrain


@dataclass(frozen=True)
class ConnectionOptions:
    """``method.connection``: the VIB connection of each IM modality."""

    latent_dim: int = 64  # d_v
    hidden: int = 128
    depth: int = 2
    beta: float = 0.0  # weight of KL(p(v|z) || N(0, I))


@dataclass(frozen=True)
class KLOptions:
    """``method.kl``: the anchor KL (:class:`~mmib.objectives.cox.AnchorKL`)."""

    normalizer: str = "sum_sizes"  # sum_sizes | num_pairs | num_D
    direction: str = "paper"  # paper | forward
    stopgrad_anchor: bool = True


@dataclass(frozen=True)
class HeadFitOptions:
    """``method.head_fit``: the full-batch Adam refits of h_k and h_k^*."""

    steps: int = 100
    lr: float = 0.05


@dataclass(frozen=True)
class COXOptions:
    """``conf/method/cox.yaml``; ``docs/methods/cox.md`` explains each key."""

    scenario: str = "semi"  # semi | unsup
    oom_modality: str | None = None  # null: the last modality of the data set
    ablation: COXAblation = COXAblation.NONE
    perceptor: PerceptorOptions = field(default_factory=PerceptorOptions)
    oom_dim: int | None = None  # d_O; null: the IM feature size when all are equal, else 64
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)
    recon_reduction: str = "mean"  # mean | sum
    detach_oom_target: bool = False
    connect_epochs: int = 5
    warmup_epochs: int = 5
    warmup_selection: str = "literal"  # literal | mmd
    anchor_fraction: float = 0.1
    labelled_batch_size: int = 32
    semi_anchor_mode: str = "labeled+agreement_pseudolabel"  # or labeled
    kl: KLOptions = field(default_factory=KLOptions)
    kl_weight: float = 1.0
    head_fit: HeadFitOptions = field(default_factory=HeadFitOptions)
    centroid_steps: int = 200
    mmd_steps: int = 300
    chunk_size: int = 4096
    optim: OptimOptions = optim_field(name="adam", lr=1.0e-3, weight_decay=1.0e-5)
    centroid_lr: float = field(default=1.0e-3, metadata=_OPTIONAL)  # unsup: the centroid warm-up's Adam
    mmd_lr: float = field(default=1.0e-3, metadata=_OPTIONAL)  # warmup_selection=mmd: the MMD fit's Adam
    seed: int = field(default=0, metadata=_OPTIONAL)  # warmup_selection=mmd: the MMD fit's batches


# ---------------------------------------------------------------------------------------------- the baselines
@dataclass(frozen=True)
class COXBaselineOptions(COXOptions):
    noise_std: float = field(default=0.3, metadata=_OPTIONAL)  # Gaussian-noise views (ssl, moco)


@dataclass(frozen=True)
class COXRandomOptions(COXBaselineOptions):
    pass


@dataclass(frozen=True)
class COXERMOptions(COXBaselineOptions):
    pass


@dataclass(frozen=True)
class COXAlignedOptions(COXBaselineOptions):
    pass


@dataclass(frozen=True)
class COXEntMinOptions(COXBaselineOptions):
    entmin_weight: float = 0.1


@dataclass(frozen=True)
class COXSSLOptions(COXBaselineOptions):
    noise_std: float = 0.3
    temperature: float = 0.2


@dataclass(frozen=True)
class COXMoCoOptions(COXSSLOptions):
    momentum: float = 0.99
    queue_size: int = 1024
    entmin_weight: float = 0.1
