"""Alignment methods: an encoder and a projection head per modality, trained with an alignment objective.

One class serves every alignment objective of :data:`mmib.objectives.ALIGNMENT_OBJECTIVES` (pairwise CLIP,
CLIP+IB, Symile, GRAM, TRIANGLE, OVA-IB): the OVA-IB paper's protocol (encoder → 3-layer MLP head → 256-d
embedding; Adam) with the objective chosen by the method's name. Probes use the encoder output
(``space="representation"``); retrieval scores the head output (``space="embedding"``) with the objective's own scorer.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mmib import objectives
from mmib.data.dataset import Batch, complete_rows_mask
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.methods.base import SPACES, Method
from mmib.methods.registry import register_method
from mmib.nn.heads import ProjectionHead
from mmib.objectives.base import LossOutput


class AlignmentMethod(Method):
    """Encoders + heads + an alignment objective (chosen by ``cfg["objective_name"]`` or the method name)."""

    min_modalities = 2

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        obj_name = self.cfg.get("objective_name") or self.name
        if obj_name not in objectives.ALIGNMENT_OBJECTIVES:
            raise UnknownNameError("alignment objective", obj_name, list(objectives.ALIGNMENT_OBJECTIVES))
        rep_dim = int(self.cfg.get("representation_dim", 256))
        emb_dim = int(self.cfg.get("embed_dim", 256))
        self.encoders = self.build_encoders(rep_dim)
        n_layers = int(self.cfg.get("head_layers", 3))
        self.heads = nn.ModuleDict({
            m: (ProjectionHead(rep_dim, emb_dim, n_layers) if n_layers > 0 else nn.Identity())
            for m in spec.modality_names
        })
        if n_layers == 0 and rep_dim != emb_dim:
            raise MMIBError("method: head_layers=0 needs embed_dim == representation_dim")
        obj_cls = objectives.ALIGNMENT_OBJECTIVES[obj_name]
        kwargs = dict(self.cfg.get("objective") or {})
        params = inspect.signature(obj_cls.__init__).parameters
        extra = {"n_modalities": len(spec.modalities), "embed_dim": emb_dim, "modality_names": spec.modality_names}
        for k, v in extra.items():
            if k in params and k not in kwargs:
                kwargs[k] = v
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            raise UnknownNameError(f"option of objective '{obj_name}' (method.objective)", unknown[0],
                                   [p for p in params if p != "self"])
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
        return {m: self.heads[m](r) for m, r in reps.items()}

    def loss(self, batch: Batch) -> LossOutput:
        mods = self.modalities_of(batch, self.spec.modality_names)
        keep = complete_rows_mask(batch, mods)
        z = self.embed(batch, mods, space="embedding")
        if keep is not None:  # alignment needs every modality of a sample: drop incomplete rows
            if int(keep.sum()) < 2:
                raise MMIBError(f"method '{self.name}': fewer than 2 samples in the batch have every modality")
            z = {m: v[keep] for m, v in z.items()}
        return self.objective(z)

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


@register_method("clip_ib")
class ClipIbMethod(AlignmentMethod):
    """Alignment method 'clip_ib': pairwise CLIP + a cosine minimality term (Almudévar et al., ICML 2025; OVA-IB
    Eq. 5; :class:`mmib.objectives.clip_ib.PairwiseCLIPIBLoss`)."""


@register_method("symile")
class SymileMethod(AlignmentMethod):
    """Alignment method 'symile': the Symile loss (Saporta et al., NeurIPS 2024, Eqs. 2–4; any M ≥ 2;
    :class:`mmib.objectives.symile.SymileLoss`)."""


@register_method("gram")
class GramMethod(AlignmentMethod):
    """Alignment method 'gram': the GRAM contrastive loss (Cicchetti et al., ICLR 2025, Eqs. 4–6; any M ≥ 2;
    :class:`mmib.objectives.gram.GRAMLoss`)."""


@register_method("triangle")
class TriangleMethod(AlignmentMethod):
    """Alignment method 'triangle': the TRIANGLE contrastive loss (Cicchetti et al., NeurIPS 2025;
    :class:`mmib.objectives.triangle.TriangleLoss`), defined for exactly three modalities."""

    exact_modalities = 3


@register_method("ova_ib")
class OvaIbMethod(AlignmentMethod):
    """Alignment method 'ova_ib': the OVA-IB objective L = L_S + β·L_M (Li et al. 2026, Eqs. 9–12 and 16–21; any
    M ≥ 2; :class:`mmib.objectives.ova_ib.OVAIBLoss`)."""
