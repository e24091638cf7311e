"""The typed options (:mod:`mmib.methods.options`) of the supervised fusion baselines of :mod:`mmib.methods.fusion`
(``concat``, ``film``, ``bigated``, ``vib``, ``emib``, ``lmib``, ``cmib``) and the part they share with the other
supervised fusion methods (OMIB, IBMA): the encoders' size and the task heads. Defaults: ``conf/method/<name>.yaml``
(``tests/methods/test_options.py`` compares them key by key)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mmib.errors import MMIBError
from mmib.methods.options import OptimOptions, optim_field
from mmib.objectives.vib import LATENT_REDUCTIONS


def _mlp_hidden() -> list[int]:
    return [512]


@dataclass(frozen=True)
class SupervisedFusionOptions:
    """What every supervised fusion method has (:class:`~mmib.methods.fusion.SupervisedFusionMethod`)."""

    representation_dim: int = 256  # encoder output z_m
    head_hidden: list[int] = field(default_factory=_mlp_hidden)  # hidden sizes of the task heads
    head_act: str = "relu"
    optim: OptimOptions = optim_field(name="adam", lr=1.0e-3, weight_decay=0.0)


@dataclass(frozen=True)
class ConcatOptions(SupervisedFusionOptions):
    pass


@dataclass(frozen=True)
class BiGatedOptions(SupervisedFusionOptions):
    fused_dim: int = 256  # film / bigated output size


@dataclass(frozen=True)
class FiLMOptions(BiGatedOptions):
    film_target: str | None = None  # modulated modality (null = the last); the others condition it


@dataclass(frozen=True)
class VIBOptions(SupervisedFusionOptions):
    """The Gaussian latents and the KL of the VIB / MIB baselines."""

    latent_dim: int = 64
    vae_hidden: int = 256
    sigma: str = "softplus"  # softplus(h-5) | logvar
    beta: float = 1.0e-3
    kl_reduction: str = "sum"  # sum (true KL, nats) | mean (over latent dimensions)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise MMIBError(f"method.beta must be a finite number >= 0, got {self.beta!r}")
        check_kl_reduction(self.kl_reduction)


@dataclass(frozen=True)
class EMIBOptions(VIBOptions):
    fused_dim: int = 256
    kl_reduction: str = "mean"  # Mai et al. average the KL over latent dimensions


@dataclass(frozen=True)
class LMIBOptions(EMIBOptions):
    fused_dim: int = 64


@dataclass(frozen=True)
class CMIBOptions(LMIBOptions):
    pass


def check_kl_reduction(r: str) -> str:
    if r not in LATENT_REDUCTIONS:
        raise MMIBError(f"method.kl_reduction must be one of {', '.join(LATENT_REDUCTIONS)}, got {r!r}")
    return r
