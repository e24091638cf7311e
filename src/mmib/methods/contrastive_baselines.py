"""The contrastive baselines of FactorCL (§4, A.10) and CoMM (§4, B.10), for any M >= 2 modalities:

* ``cross``: cross-modal InfoNCE (CLIP-style; FactorCL's "SimCLR", CoMM's "Cross"): an encoder and a *linear*
  projector per modality (CoMM App. B.6), pairwise symmetric InfoNCE on one augmented view of every modality;
* ``cross_self``: Cross + per-modality SimCLR (FactorCL's "Cross+Self", CoMM's SLIP-like baseline): a 3-layer MLP
  self-supervised projector per modality (1024 hidden, 256 out) and NT-Xent between two more augmented views of each
  modality, added with weight ``self_weight``;
* ``supcon``: supervised contrastive learning (Khosla et al. 2020) over the modalities' embeddings (and
  ``n_views`` augmented views of each) with the labels defining the positives (FactorCL: learns I(X1;X2|Y)).

``method.objective.gather_distributed`` (default false) takes the negatives of every contrastive loss (Cross's
InfoNCE, Cross+Self's NT-Xent, SupCon) from every process, with gradients; a no-op without a process group.

Downstream probes use the encoder outputs (``space="representation"``); ``space="embedding"`` is the cross-modal
projector output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mmib.data.augment import ModalityAugmenter
from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.base import SPACES, Method
from mmib.methods.options import OptimOptions, optim_field
from mmib.methods.registry import register_method
from mmib.nn.heads import ProjectionHead
from mmib.objectives.base import LossOutput
from mmib.objectives.clip import PairwiseCLIPLoss
from mmib.objectives.ntxent import NTXentLoss
from mmib.objectives.supcon import SupConLoss


# ---------------------------------------------------------------------------------------------- options
def _default_augment() -> dict[str, Any]:
    return {"default": "default", "modalities": {}}


@dataclass(frozen=True)
class AugmentedOptions:
    """The augmentations of a method that draws augmented views (:class:`AugmentedMethod`)."""

    augment: dict[str, Any] = field(default_factory=_default_augment)  # {default, modalities} (mmib.data.augment)
    augment_seed: int | None = None  # null: drawn from the run's seed


@dataclass(frozen=True)
class GatherOptions:
    """``method.objective`` of the contrastive baselines."""

    gather_distributed: bool = False  # negatives from every process (DDP), with gradients


@dataclass(frozen=True)
class EncoderHeadOptions(AugmentedOptions):
    representation_dim: int = 256
    embed_dim: int = 256
    head_layers: int = 1  # linear projector
    objective: GatherOptions = field(default_factory=GatherOptions)
    optim: OptimOptions = optim_field(name="adamw", lr=3.0e-4, weight_decay=1.0e-4)


@dataclass(frozen=True)
class CrossOptions(EncoderHeadOptions):
    temperature: float = 0.1
    learn_temperature: bool = False
    min_temperature: float | None = None  # floor of a learned temperature (null: min(1e-3, temperature))
    reduction: str = "mean"  # over the M(M-1)/2 pairs


@dataclass(frozen=True)
class CrossSelfOptions(CrossOptions):
    self_embed_dim: int = 256
    self_head_hidden: int = 1024
    self_temperature: float = 0.1
    self_weight: float = 1.0


@dataclass(frozen=True)
class SupConOptions(EncoderHeadOptions):
    embed_dim: int = 128
    head_layers: int = 3
    temperature: float = 0.07
    base_temperature: float = 0.07
    n_views: int = 1
    optim: OptimOptions = optim_field(name="adam", lr=1.0e-3, weight_decay=0.0)


class AugmentedMethod(Method):
    """Base of the methods that draw augmented views inside :meth:`loss`: owns a :class:`ModalityAugmenter` whose
    generator is seeded from the (seeded) global RNG and saved in checkpoints. Its options: ``augment`` and
    ``augment_seed`` (:class:`AugmentedOptions`, part of every subclass's options)."""

    Options = AugmentedOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        seed, augment = self.opts.augment_seed, self.opts.augment
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)))
        self.augmenter = ModalityAugmenter(spec, augment, int(seed))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        state = self.augmenter.state()
        checkpoint["mmib_augment_rng"] = state
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            # every rank dumps the checkpoint, rank 0 alone writes it: keep each rank's own generator, so that a
            # resumed multi-process run does not give every rank rank 0's augmentations
            per_rank: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(per_rank, state)
            checkpoint["mmib_augment_rng_per_rank"] = per_rank

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("mmib_augment_rng")
        per_rank = checkpoint.get("mmib_augment_rng_per_rank")
        if per_rank and torch.distributed.is_available() and torch.distributed.is_initialized() \
                and len(per_rank) == torch.distributed.get_world_size():
            state = per_rank[torch.distributed.get_rank()]
        if state is not None:
            self.augmenter.load_state(state)

    def augment(self, batch: Batch, mods: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.augmenter(batch["x"], batch.get("lengths"), mods)


class _EncoderHeadBaseline(AugmentedMethod):
    """Encoders + a projector per modality; probes read the encoder output."""

    min_modalities = 2
    Options = EncoderHeadOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        rep, emb, layers = self.opts.representation_dim, self.opts.embed_dim, self.opts.head_layers
        self.encoders = self.build_encoders(rep)
        self.heads = nn.ModuleDict({m: ProjectionHead(rep, emb, layers) for m in spec.modality_names})
        self.gather_distributed = self.opts.objective.gather_distributed

    def _encode(self, x: Mapping[str, torch.Tensor], batch: Batch, m: str) -> torch.Tensor:
        return self.encoders[m](x[m], self.lengths_of(batch, m))

    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        if space not in SPACES:
            raise MMIBError(f"unknown representation space '{space}'; valid: {', '.join(SPACES)}")
        mods = self.modalities_of(batch, modalities)
        reps = {m: self._encode(batch["x"], batch, m) for m in mods}
        return reps if space == "representation" else {m: self.heads[m](r) for m, r in reps.items()}


@register_method("cross")
class CrossMethod(_EncoderHeadBaseline):
    """Cross: pairwise symmetric InfoNCE between the modalities' (linear) projections of one augmented view."""

    Options = CrossOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        o = self.opts
        self.cross_objective = PairwiseCLIPLoss(temperature=o.temperature, learn_temperature=o.learn_temperature,
                                                min_temperature=o.min_temperature, reduction=o.reduction,
                                                gather_distributed=self.gather_distributed)

    def _cross(self, batch: Batch, mods: Sequence[str]) -> tuple[LossOutput, dict[str, torch.Tensor]]:
        x = self.augment(batch, mods)
        z = {m: self.heads[m](self._encode(x, batch, m)) for m in mods}
        return self.cross_objective(z), x

    def loss(self, batch: Batch) -> LossOutput:
        mods = self.modalities_of(batch, self.spec.modality_names)
        out, _ = self._cross(self.complete_rows(batch, mods), mods)
        return out


@register_method("cross_self")
class CrossSelfMethod(CrossMethod):
    """Cross + Self: the Cross loss plus SimCLR's NT-Xent between two augmented views of each modality, through a
    separate 3-layer self-supervised projector per modality (SLIP; CoMM App. B.6: 1024 hidden, 256 out)."""

    Options = CrossSelfOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        o = self.opts
        self.self_heads = nn.ModuleDict({
            m: ProjectionHead(o.representation_dim, o.self_embed_dim, 3, hidden_dim=o.self_head_hidden)
            for m in spec.modality_names})
        self.self_objective = NTXentLoss(o.self_temperature, gather_distributed=self.gather_distributed)
        self.self_weight = o.self_weight
        if self.self_weight < 0:
            raise MMIBError(f"method '{self.name}': self_weight must be >= 0, got {self.self_weight}")

    def loss(self, batch: Batch) -> LossOutput:
        mods = self.modalities_of(batch, self.spec.modality_names)
        batch = self.complete_rows(batch, mods)
        cross, _ = self._cross(batch, mods)
        xa, xb = self.augment(batch, mods), self.augment(batch, mods)
        terms = dict(cross.terms)
        total = cross.loss
        for m in mods:
            za = self.self_heads[m](self._encode(xa, batch, m))
            zb = self.self_heads[m](self._encode(xb, batch, m))
            lm = self.self_objective([za, zb]).loss
            terms[f"self_{m}"] = lm.detach()
            total = total + self.self_weight * lm
        terms["cross"] = cross.loss.detach()
        return LossOutput(total, terms)


@register_method("supcon")
class SupConMethod(_EncoderHeadBaseline):
    """SupCon: supervised contrastive loss over the projected embeddings of every modality (× ``n_views`` augmented
    views), positives = same label. Needs a classification task."""

    supervised = True
    min_modalities = 1
    Options = SupConOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        if spec.task != "classification":
            raise MMIBError(f"method 'supcon' needs a classification task; data set '{spec.name}' is {spec.task}")
        self.n_views = self.opts.n_views
        if self.n_views < 1:
            raise MMIBError(f"method 'supcon': n_views must be >= 1, got {self.n_views}")
        self.objective = SupConLoss(self.opts.temperature, base_temperature=self.opts.base_temperature,
                                    gather_distributed=self.gather_distributed)

    def loss(self, batch: Batch) -> LossOutput:
        mods = self.modalities_of(batch, self.spec.modality_names)
        batch = self.complete_rows(batch, mods)
        if "y" not in batch:
            raise MMIBError("method 'supcon' is supervised: the batch has no labels 'y'")
        views = []
        for _ in range(self.n_views):
            x = self.augment(batch, mods)
            views += [self.heads[m](self._encode(x, batch, m)) for m in mods]
        return self.objective(views, batch["y"])
