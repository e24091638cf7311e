"""Pairwise CLIP: symmetric InfoNCE over every pair of modalities (Radford et al., 2021; OVA-IB paper Eqs. 1–3)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives.base import LossOutput, Temperature, check_embeddings, contrastive_ce, l2_normalize
from mmib.utils.dist import gather_with_grad, is_dist, local_offset


def info_nce(
    za: torch.Tensor,
    zb: torch.Tensor,
    scale: torch.Tensor | float,
    positive_in_denominator: bool = True,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """Symmetric InfoNCE between two L2-normalized embedding sets (mean of the a→b and b→a directions).

    With ``gather_distributed`` the candidates come from every process (gradients flow back to their owners)
    while each process scores its own rows; without a process group it is the plain single-process loss.
    """
    if gather_distributed and is_dist():
        za_all, zb_all = gather_with_grad(za), gather_with_grad(zb)
        off = local_offset(za.shape[0])
        rows = torch.arange(za.shape[0], device=za.device) + off
        l_ab = scale * za @ zb_all.T
        l_ba = scale * zb @ za_all.T
        return 0.5 * (
            _ce_rows(l_ab, rows, positive_in_denominator) + _ce_rows(l_ba, rows, positive_in_denominator)
        )
    logits = scale * za @ zb.T
    return 0.5 * (contrastive_ce(logits, positive_in_denominator) + contrastive_ce(logits.T, positive_in_denominator))


def _ce_rows(logits: torch.Tensor, targets: torch.Tensor, positive_in_denominator: bool) -> torch.Tensor:
    if positive_in_denominator:
        return nn.functional.cross_entropy(logits, targets)
    pos = logits.gather(1, targets[:, None]).squeeze(1)
    neg = logits.scatter(1, targets[:, None], float("-inf"))
    return (torch.logsumexp(neg, dim=1) - pos).mean()


class PairwiseCLIPLoss(nn.Module):
    """Symmetric InfoNCE summed (or averaged) over all M(M−1)/2 pairs of modalities.

    Args:
        temperature: τ (> 0); similarities are cosines divided by τ.
        learn_temperature: learn τ (as CLIP's log logit scale) instead of keeping it fixed.
        min_temperature: floor of a learned τ (default ``min(1e-3, temperature)``; any value in (0, temperature]).
        reduction: ``"sum"`` (Symile's experiments) or ``"mean"`` (CoMM) over pairs.
        positive_in_denominator: standard InfoNCE (True) or the decoupled form with the positive excluded.
        gather_distributed: take negatives from all processes (no-op without a process group).

    Example:
        >>> loss_fn = PairwiseCLIPLoss(temperature=0.1)
        >>> out = loss_fn({"a": torch.randn(8, 16), "b": torch.randn(8, 16), "c": torch.randn(8, 16)})
        >>> out.loss.shape
        torch.Size([])
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learn_temperature: bool = False,
        reduction: str = "mean",
        positive_in_denominator: bool = True,
        gather_distributed: bool = False,
        min_temperature: float | None = None,
    ) -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.temperature = Temperature(temperature, learnable=learn_temperature, min_temperature=min_temperature)
        self.reduction = reduction
        self.positive_in_denominator = bool(positive_in_denominator)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, embeddings: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> LossOutput:
        keys, zs = check_embeddings(embeddings, 2, "PairwiseCLIPLoss")
        zs = [l2_normalize(z) for z in zs]
        scale = self.temperature.scale()
        terms: dict[str, torch.Tensor] = {}
        total = zs[0].new_zeros(())
        pairs = list(itertools.combinations(range(len(zs)), 2))
        for i, j in pairs:
            lij = info_nce(zs[i], zs[j], scale, self.positive_in_denominator, self.gather_distributed)
            terms[f"clip_{keys[i]}_{keys[j]}"] = lij.detach()
            total = total + lij
        if self.reduction == "mean":
            total = total / len(pairs)
        terms["temperature"] = (1.0 / scale).detach()
        return LossOutput(total, terms)

    @staticmethod
    def score(queries: Mapping[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        return mean_cosine_score(queries, candidates)


def mean_cosine_score(queries: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
    """Retrieval score of pairwise CLIP: mean over query modalities of cos(query_q, candidate_c) → (Nq, Nc)."""
    qs = list(queries.values()) if isinstance(queries, Mapping) else list(queries)
    if not qs:
        raise ValueError("mean_cosine_score: at least one query modality is needed")
    c = l2_normalize(candidates)
    return torch.stack([l2_normalize(q) @ c.T for q in qs]).mean(0)
