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
from typing import Any

import torch
from torch import nn

from mmib.data.augment import ModalityAugmenter
from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.base import SPACES, Method
from mmib.methods.registry import register_method
from mmib.nn.heads import ProjectionHead
from mmib.objectives.base import LossOutput
from mmib.objectives.clip import PairwiseCLIPLoss
from mmib.objectives.ntxent import NTXentLoss
from mmib.objectives.supcon import SupConLoss


class AugmentedMethod(Method):
    """Base of the methods that draw augmented views inside :meth:`loss`: owns a :class:`ModalityAugmenter` whose
    generator is seeded from the (seeded) global RNG and saved in checkpoints."""

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        seed = self.cfg.get("augment_seed")
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)))
        self.augmenter = ModalityAugmenter(spec, self.cfg.get("augment"), int(seed))

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
    default_head_layers = 1

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        rep = int(self.cfg.get("representation_dim", 256))
        emb = int(self.cfg.get("embed_dim", 256))
        layers = int(self.cfg.get("head_layers", self.default_head_layers))
        self.encoders = self.build_encoders(rep)
        self.heads = nn.ModuleDict({m: ProjectionHead(rep, emb, layers, hidden_dim=self.cfg.get("head_hidden"))
                                    for m in spec.modality_names})
        self.gather_distributed = bool((self.cfg.get("objective") or {}).get("gather_distributed", False))

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

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        self.cross_objective = PairwiseCLIPLoss(temperature=float(self.cfg.get("temperature", 0.1)),
                                                learn_temperature=bool(self.cfg.get("learn_temperature", False)),
                                                min_temperature=self.cfg.get("min_temperature"),
                                                reduction=str(self.cfg.get("reduction", "mean")),
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

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        rep = int(self.cfg.get("representation_dim", 256))
        self.self_heads = nn.ModuleDict({
            m: ProjectionHead(rep, int(self.cfg.get("self_embed_dim", 256)), 3,
                              hidden_dim=int(self.cfg.get("self_head_hidden", 1024)))
            for m in spec.modality_names})
        self.self_objective = NTXentLoss(float(self.cfg.get("self_temperature", 0.1)),
                                         gather_distributed=self.gather_distributed)
        self.self_weight = float(self.cfg.get("self_weight", 1.0))
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
    default_head_layers = 3
    min_modalities = 1

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        if spec.task != "classification":
            raise MMIBError(f"method 'supcon' needs a classification task; data set '{spec.name}' is {spec.task}")
        self.n_views = int(self.cfg.get("n_views", 1))
        if self.n_views < 1:
            raise MMIBError(f"method 'supcon': n_views must be >= 1, got {self.n_views}")
        t = float(self.cfg.get("temperature", 0.07))
        self.objective = SupConLoss(t, base_temperature=self.cfg.get("base_temperature", t),
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
