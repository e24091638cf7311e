"""Pairwise CLIP + IB: pairwise CLIP with a minimality term (Almudévar et al., "Aligning Multimodal Representations
through an Information Bottleneck", ICML 2025; OVA-IB paper Eq. 5 generalized to every pair of modalities).

For each pair (i, j): L_ij = CLIP_ij + β·(1 − mean_n cos(z_n^(i), z_n^(j))) — the cosine form of the minimality
term used in the peer's controlled experiments (``antonioalmudevar/multimodal_ib``). Pairs are summed or averaged
(``reduction``) for both terms alike, so β weighs minimality against alignment per pair whatever M is.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives.base import LossOutput, Temperature, check_embeddings, l2_normalize
from mmib.objectives.clip import info_nce, mean_cosine_score


class PairwiseCLIPIBLoss(nn.Module):
    """Pairwise CLIP + cosine minimality term (Almudévar et al., ICML 2025; OVA-IB Eq. 5), any M ≥ 2.

    Args:
        temperature: τ > 0 of every pairwise InfoNCE.
        learn_temperature: learn τ (CLIP's log logit scale) instead of keeping it fixed.
        min_temperature: floor of a learned τ (default ``min(1e-3, temperature)``; any value in (0, temperature]).
        beta: weight β ≥ 0 of the minimality term 1 − mean cos per pair.
        reduction: ``"sum"`` or ``"mean"`` over the M(M−1)/2 pairs (both terms).
        positive_in_denominator: standard InfoNCE (True) or the decoupled form (positive excluded).
        gather_distributed: take negatives from all processes (no-op without a process group).

    Raises:
        ValueError: on a non-positive temperature, a negative or non-finite beta, or an unknown reduction.

    Example:
        >>> loss_fn = PairwiseCLIPIBLoss(temperature=0.07, beta=0.1)
        >>> out = loss_fn({"a": torch.randn(8, 16), "b": torch.randn(8, 16)})
        >>> sorted(out.terms)
        ['alignment', 'clip_a_b', 'minimality', 'minimality_a_b', 'temperature']
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learn_temperature: bool = False,
        beta: float = 1.0,
        reduction: str = "mean",
        positive_in_denominator: bool = True,
        gather_distributed: bool = False,
        min_temperature: float | None = None,
    ) -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        if not isinstance(beta, (int, float)) or not beta >= 0 or beta == float("inf"):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        self.temperature = Temperature(temperature, learnable=learn_temperature, min_temperature=min_temperature)
        self.beta = float(beta)
        self.reduction = reduction
        self.positive_in_denominator = bool(positive_in_denominator)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, embeddings: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> LossOutput:
        keys, zs = check_embeddings(embeddings, 2, "PairwiseCLIPIBLoss")
        zs = [l2_normalize(z) for z in zs]
        scale = self.temperature.scale()
        terms: dict[str, torch.Tensor] = {}
        align = zs[0].new_zeros(())
        minimal = zs[0].new_zeros(())
        pairs = list(itertools.combinations(range(len(zs)), 2))
        for i, j in pairs:
            lij = info_nce(zs[i], zs[j], scale, self.positive_in_denominator, self.gather_distributed)
            mij = 1.0 - (zs[i] * zs[j]).sum(-1).mean()
            terms[f"clip_{keys[i]}_{keys[j]}"] = lij.detach()
            terms[f"minimality_{keys[i]}_{keys[j]}"] = mij.detach()
            align = align + lij
            minimal = minimal + mij
        if self.reduction == "mean":
            align = align / len(pairs)
            minimal = minimal / len(pairs)
        terms["alignment"] = align.detach()
        terms["minimality"] = minimal.detach()
        terms["temperature"] = (1.0 / scale).detach()
        return LossOutput(align + self.beta * minimal, terms)

    @staticmethod
    def score(
        queries: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], candidates: torch.Tensor
    ) -> torch.Tensor:
        """Retrieval score (Nq, Nc): mean cosine of the candidate with each query modality (as pairwise CLIP)."""
        return mean_cosine_score(queries, candidates)
