"""Alignment methods: an encoder and a projection head per modality, trained with an alignment objective.

One class serves every alignment objective of :data:`mmib.objectives.ALIGNMENT_OBJECTIVES` (pairwise CLIP,
CLIP+IB, Symile, GRAM, TRIANGLE, OVA-IB): the OVA-IB paper's protocol (encoder → 3-layer MLP head → 256-d
embedding; Adam) with the objective chosen by the method's name. Probes use the encoder output
(``space="representation"``); retrieval scores the head output (``space="embedding"``) with the objective's own scorer.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from mmib import objectives
from mmib.data.dataset import Batch, complete_rows_mask
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.methods.base import SPACES, Method
from mmib.methods.options import TemperatureOptimOptions, optim_field, options_dict
from mmib.methods.registry import register_method
from mmib.nn.heads import BatchCentre, ProjectionHead
from mmib.objectives.base import LossOutput


# ---------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class AlignmentObjectiveOptions:
    """``method.objective``: the keyword arguments of the alignment objective (each checks its own values)."""

    temperature: float = 0.07
    learn_temperature: bool = False
    min_temperature: float | None = None  # floor of a learned temperature (null: min(1e-3, temperature))
    positive_in_denominator: bool = True
    gather_distributed: bool = False


@dataclass(frozen=True)
class ClipObjectiveOptions(AlignmentObjectiveOptions):
    reduction: str = "mean"  # sum | mean over the M(M-1)/2 pairs


@dataclass(frozen=True)
class ClipIbObjectiveOptions(ClipObjectiveOptions):
    beta: float = 1.0


@dataclass(frozen=True)
class SymileObjectiveOptions(AlignmentObjectiveOptions):
    learn_temperature: bool = True
    mip_scale: str = "dense"  # dense | none
    negatives: str = "n"  # n | n_squared
    seed: int = field(default=0, metadata={"yaml": "${seed}"})  # the packaged config follows the run's seed
    normalize: bool = True


@dataclass(frozen=True)
class TriangleObjectiveOptions(AlignmentObjectiveOptions):
    learn_temperature: bool = True
    label_smoothing: float = 0.1
    anchor: str | list[str] | None = None  # anchor modality (null: every modality in turn)


@dataclass(frozen=True)
class GramObjectiveOptions(TriangleObjectiveOptions):
    kernel: str = "eager"  # eager | torch | compiled | inductor


@dataclass(frozen=True)
class OvaIbObjectiveOptions(AlignmentObjectiveOptions):
    temperature: float = 0.01
    beta: float = 1.0
    ridge: float = 1.0e-8
    projector: str = "closed_form"  # closed_form | mlp
    projector_hidden_dim: int | None = None
    kernel: str = "eager"  # eager | torch | compiled | inductor


@dataclass(frozen=True)
class AlignmentOptions:
    """Options of every alignment method (``conf/method/<name>.yaml``); each method sets its ``objective`` block."""

    representation_dim: int = 256  # encoder output (used by downstream probes)
    embed_dim: int = 256  # projection head output (the objective's space)
    head_layers: int = 3
    # centring of the head outputs before the objective (docs/methods/symile.md, "Centred embeddings"): none |
    # batch (subtract the batch mean; its running average at evaluation) | batch_offset (the same, plus a learned
    # offset started at 0)
    head_centre: Literal["none", "batch", "batch_offset"] = "none"
    objective: AlignmentObjectiveOptions = field(default_factory=AlignmentObjectiveOptions)
    optim: TemperatureOptimOptions = optim_field(TemperatureOptimOptions)


@dataclass(frozen=True)
class ClipOptions(AlignmentOptions):
    objective: ClipObjectiveOptions = field(default_factory=ClipObjectiveOptions)


@dataclass(frozen=True)
class ClipIbOptions(AlignmentOptions):
    objective: ClipIbObjectiveOptions = field(default_factory=ClipIbObjectiveOptions)


@dataclass(frozen=True)
class SymileOptions(AlignmentOptions):
    head_centre: Literal["none", "batch", "batch_offset"] = "batch_offset"
    objective: SymileObjectiveOptions = field(default_factory=SymileObjectiveOptions)
    optim: TemperatureOptimOptions = optim_field(TemperatureOptimOptions, temperature_lr=0.01)


@dataclass(frozen=True)
class GramOptions(AlignmentOptions):
    objective: GramObjectiveOptions = field(default_factory=GramObjectiveOptions)


@dataclass(frozen=True)
class TriangleOptions(AlignmentOptions):
    objective: TriangleObjectiveOptions = field(default_factory=TriangleObjectiveOptions)


@dataclass(frozen=True)
class OvaIbOptions(AlignmentOptions):
    objective: OvaIbObjectiveOptions = field(default_factory=OvaIbObjectiveOptions)


class AlignmentMethod(Method):
    """Encoders + heads + the alignment objective of the same name as the method
    (:data:`mmib.objectives.ALIGNMENT_OBJECTIVES`)."""

    min_modalities = 2
    Options = AlignmentOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        obj_name = self.name
        if obj_name not in objectives.ALIGNMENT_OBJECTIVES:
            raise UnknownNameError("alignment objective", obj_name, list(objectives.ALIGNMENT_OBJECTIVES))
        rep_dim, emb_dim, n_layers = self.opts.representation_dim, self.opts.embed_dim, self.opts.head_layers
        self.encoders = self.build_encoders(rep_dim)
        self.heads = nn.ModuleDict({
            m: (ProjectionHead(rep_dim, emb_dim, n_layers) if n_layers > 0 else nn.Identity())
            for m in spec.modality_names
        })
        centre = self.opts.head_centre
        self.centres = nn.ModuleDict({m: BatchCentre(emb_dim, offset=centre == "batch_offset")
                                      for m in spec.modality_names}) if centre != "none" else None
        if n_layers == 0 and rep_dim != emb_dim:
            raise MMIBError("method: head_layers=0 needs embed_dim == representation_dim")
        obj_cls = objectives.ALIGNMENT_OBJECTIVES[obj_name]
        kwargs = options_dict(self.opts.objective)
        params = inspect.signature(obj_cls.__init__).parameters
        extra = {"n_modalities": len(spec.modalities), "embed_dim": emb_dim, "modality_names": spec.modality_names}
        for k, v in extra.items():
            if k in params and k not in kwargs:
                kwargs[k] = v
        self.objective = obj_cls(**kwargs)

    def _encode(self, batch: Batch, m: str) -> torch.Tensor:
        return self.encoders[m](batch["x"][m], self.lengths_of(batch, m))

    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        if space not in SPACES:
            raise MMIBError(f"unknown representation space '{space}'; valid: {', '.join(SPACES)}")
        mods = self.modalities_of(batch, modalities)
        reps = {m: self._encode(batch, m) for m in mods}
        if space == "representation":
            return reps
        return self._centred({m: self.heads[m](r) for m, r in reps.items()})

    def _centred(self, z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return z if self.centres is None else {m: self.centres[m](v) for m, v in z.items()}

    def loss(self, batch: Batch) -> LossOutput:
        mods = self.modalities_of(batch, self.spec.modality_names)
        keep = complete_rows_mask(batch, mods)
        z = {m: self.heads[m](self._encode(batch, m)) for m in mods}
        if keep is not None:  # alignment needs every modality of a sample: drop incomplete rows
            if int(keep.sum()) < 2:
                raise MMIBError(f"method '{self.name}': fewer than 2 samples in the batch have every modality")
            z = {m: v[keep] for m, v in z.items()}
        return self.objective(self._centred(z))  # the batch mean of the complete rows only

    def score(self, queries: Mapping[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        return self.objective.score(queries, candidates)


# ---------------------------------------------------------------------------------------------- the methods
# One module-level class per registered name (found by name, picklable by name); each differs from the others only
# by its objective (the entry of the same name in objectives.ALIGNMENT_OBJECTIVES) and, for TRIANGLE, the number of
# modalities it is defined for. tests/methods/test_alignment.py checks that every alignment objective has its class.


@register_method("clip")
class ClipMethod(AlignmentMethod):
    """Alignment method 'clip': encoders + heads trained with pairwise CLIP (symmetric InfoNCE over all M(M−1)/2 pairs
    of modalities; :class:`mmib.objectives.clip.PairwiseCLIPLoss`)."""

    Options = ClipOptions


@register_method("clip_ib")
class ClipIbMethod(AlignmentMethod):
    """Alignment method 'clip_ib': pairwise CLIP + a cosine minimality term (Almudévar et al., ICML 2025; OVA-IB
    Eq. 5; :class:`mmib.objectives.clip_ib.PairwiseCLIPIBLoss`)."""

    Options = ClipIbOptions


@register_method("symile")
class SymileMethod(AlignmentMethod):
    """Alignment method 'symile': the Symile loss (Saporta et al., NeurIPS 2024, Eqs. 2–4; any M ≥ 2;
    :class:`mmib.objectives.symile.SymileLoss`)."""

    Options = SymileOptions


@register_method("gram")
class GramMethod(AlignmentMethod):
    """Alignment method 'gram': the GRAM contrastive loss (Cicchetti et al., ICLR 2025, Eqs. 4–6; any M ≥ 2;
    :class:`mmib.objectives.gram.GRAMLoss`)."""

    Options = GramOptions


@register_method("triangle")
class TriangleMethod(AlignmentMethod):
    """Alignment method 'triangle': the TRIANGLE contrastive loss (Cicchetti et al., NeurIPS 2025;
    :class:`mmib.objectives.triangle.TriangleLoss`), defined for exactly three modalities."""

    Options = TriangleOptions
    exact_modalities = 3


@register_method("ova_ib")
class OvaIbMethod(AlignmentMethod):
    """Alignment method 'ova_ib': the OVA-IB objective L = L_S + β·L_M (Li et al. 2026, Eqs. 9–12 and 16–21; any
    M ≥ 2; :class:`mmib.objectives.ova_ib.OVAIBLoss`)."""

    Options = OvaIbOptions
