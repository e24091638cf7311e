"""OVA-IB: One-vs-All Information Bottleneck for multimodal alignment (Li et al., arXiv 2605.29900, 2026).

Sufficiency (Eqs. 9–12): for every anchor modality m, an InfoNCE whose positive for sample n is the *tuple* of the
same sample's other modalities and whose negatives are the other samples' tuples. The score of anchor z against a
tuple A = [z^(i)]_{i≠m} ∈ R^{d×(M−1)} is the cosine between z and its (ridge-regularized) projection onto span(A)
(Eq. 11): p = A (AᵀA + λI)^{-1} Aᵀ z, s = cos(z, p).

Minimality (Eqs. 16–19, Prop. 3.1): L_M = (1/M) Σ_m mean_n ‖z_n^(m) − mean_{i≠m} z_n^(i)‖².
Total (Eq. 21): L = L_S + β L_M.

**Efficient score.** p is never formed. With c = Aᵀz (entries of the pairwise Gram matrices Z^(m) Z^(i)ᵀ, computed
once per pair of modalities and shared by both anchors), K = AᵀA + λI = L Lᵀ (one (M−1)×(M−1) Cholesky factor per
*candidate*, not per pair), y = L^{-1} c and w = K^{-1} c = L^{-ᵀ} y:

    z·p = cᵀw = ‖y‖²,   ‖p‖² = wᵀ(K − λI)w = ‖y‖² − λ‖w‖²,   s = ‖y‖² / (‖z‖ ‖p‖).

Cost: the M(M−1)/2 N×N Gram matmuls pairwise CLIP does, plus O(N² M³) small algebra; memory O(N² M), never N²·d.
The small algebra runs in float64 (λ = 1e-8 is below float32 resolution, and aligned tuples make K nearly singular).

**One fused pass.** :class:`OVAIBLoss` computes the loss of every anchor with :class:`_OneVsAllSufficiency`: score,
cross-entropy, minimality and their gradient in one sweep over blocks of anchor rows (docs/methods/ova_ib.md,
"Performance"). :func:`projection_score_from_gram` (retrieval scores, gathered candidates) keeps the score-only
Function :class:`_ProjectionScores`. The kernels live in :mod:`mmib.objectives.projection` (shared with GRAM);
this module keeps the loss and re-exports the kernels' public functions.

Properties (checked by the tests): s ∈ [0, 1]; s = 1 when z lies in span(A), 0 when orthogonal to it; s is
**sign-blind** (z and −z score the same) and for M = 2 equals |cos(z^(1), z^(2))|.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives.base import (
    LossOutput,
    Temperature,
    check_embeddings,
    check_queries,
    contrastive_ce,
    gather_candidates,
    l2_normalize,
)
from mmib.objectives.projection.factor import (
    SMALL_ALGEBRA_DTYPE,
    factor_tuple_grams,
    rowwise_gram,
    tuple_gram,
)
from mmib.objectives.projection.layout import (
    KERNEL_CHOICES,
    check_kernel,
    flat_anchor_inputs,
    one_vs_rest_inputs,
)
from mmib.objectives.projection.one_vs_all import one_vs_all_sufficiency, one_vs_all_terms
from mmib.objectives.projection.scores import (
    projection_score,
    projection_score_from_gram,
    projection_scores_from_gram,
)

__all__ = [
    "KERNEL_CHOICES",
    "SMALL_ALGEBRA_DTYPE",
    "OVAIBLoss",
    "check_kernel",
    "factor_tuple_grams",
    "flat_anchor_inputs",
    "minimality_term",
    "one_vs_all_sufficiency",
    "one_vs_all_terms",
    "one_vs_rest_inputs",
    "projection_score",
    "projection_score_from_gram",
    "projection_scores_from_gram",
    "rowwise_gram",
    "tuple_gram",
]


def minimality_term(zs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """L_M of Eqs. 18–19: (1/M) Σ_m mean_n ‖z_n^(m) − mean_{i≠m} z_n^(i)‖²; also returns the per-modality L_M^(m)."""
    m = len(zs)
    if m == 2:  # both terms are mean ‖z_1 − z_2‖²
        d = ((zs[0] - zs[1]) ** 2).sum(-1).mean()
        return d, [d, d]
    # z − mean_{i≠m} z^(i) = (M/(M−1)) (z − T/M) with T = Σ_i z^(i): all modalities in a few stacked operations
    stacked = torch.stack(zs)  # (M, N, d)
    dev = torch.sub(stacked, stacked.sum(0), alpha=1.0 / m)
    per_t = (dev * dev).sum((1, 2)) * ((m / (m - 1)) ** 2 / stacked.shape[1])
    return per_t.mean(), list(per_t.unbind(0))


class _MLPProjector(nn.Module):
    """Ablation projector t (paper §4.5): concat of the M−1 other embeddings → Linear → ReLU → Linear → R^d."""

    def __init__(self, n_inputs: int, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_inputs * embed_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, embed_dim),
        )

    def forward(self, others: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.net(torch.cat(list(others), dim=-1))


class OVAIBLoss(nn.Module):
    """OVA-IB objective L = L_S + β·L_M (Li et al. 2026, Eqs. 9–12 and 16–21) for any M ≥ 2.

    Args:
        temperature: τ > 0 of the One-vs-All InfoNCE (paper: 0.01, fixed).
        learn_temperature: learn τ (log-parameterized, as CLIP) instead of keeping it fixed.
        min_temperature: floor of a learned τ (default ``min(1e-3, temperature)``; any value in (0, temperature]).
        beta: weight β ≥ 0 of the minimality term L_M (paper: 1; 0.5 on WESAD; 0 = ablation without L_M).
        ridge: λ > 0 of Eq. 11 (paper: 1e-8).
        projector: ``"closed_form"`` (the paper's projection score) or ``"mlp"`` (ablation §4.5: a learned MLP per
            anchor modality maps the concatenated other embeddings to R^d, score = cosine).
        n_modalities: M; required for ``projector="mlp"`` (one MLP per anchor).
        embed_dim: d; required for ``projector="mlp"``.
        projector_hidden_dim: hidden width of the MLP projector (default ``embed_dim``).
        modality_names: optional names of the M modalities (for the MLP projector: maps batch keys to the MLPs and
            lets :meth:`score` infer the candidate modality). Without it, modalities are matched by position.
        positive_in_denominator: standard InfoNCE (True) or the decoupled form of Eq. 9 (positive excluded).
        gather_distributed: take negatives from all processes (with gradients); a no-op without a process group.
        kernel: ``"eager"`` (default), ``"torch"``, ``"compiled"`` or ``"inductor"``: how the fused pass
            (:class:`_OneVsAllSufficiency`) runs its elementwise algebra. ``"eager"``: on the CPU as a numba kernel
            (:mod:`mmib.objectives.projection.numba_kernels`; no system compiler; compiled once per dtype and cached
            on disk), elsewhere or without numba as ``"torch"``; ``"torch"``: PyTorch operations on cache blocks;
            ``"compiled"``: the fastest compiled code for the device — on the CPU where numba imports the numba
            kernel of ``"eager"`` (faster than Inductor's at every measured size), elsewhere ``"inductor"``;
            ``"inductor"``: each block as one ``torch.compile``d function (needs a C++ compiler on the CPU; the
            first step per M compiles, 5–20 s here; falls back to ``"torch"`` with a warning when compilation
            fails). Measured speeds: docs/methods/ova_ib.md, "Performance".

    Embeddings are L2-normalized before the score and the minimality term ([decision], docs/methods/ova_ib.md).

    Raises:
        ValueError: on a non-positive temperature or ridge, a negative beta, an unknown projector or kernel, or
            missing ``n_modalities``/``embed_dim`` for the MLP projector.

    Example:
        >>> loss_fn = OVAIBLoss(temperature=0.01, beta=1.0)
        >>> z = {k: torch.randn(16, 32) for k in ("a", "b", "c")}
        >>> out = loss_fn(z)
        >>> sorted(out.terms)[:2]
        ['infonce_a', 'infonce_b']
    """

    def __init__(
        self,
        temperature: float = 0.01,
        learn_temperature: bool = False,
        beta: float = 1.0,
        ridge: float = 1e-8,
        projector: str = "closed_form",
        n_modalities: int | None = None,
        embed_dim: int | None = None,
        projector_hidden_dim: int | None = None,
        modality_names: Sequence[str] | None = None,
        positive_in_denominator: bool = True,
        gather_distributed: bool = False,
        kernel: str = "eager",
        min_temperature: float | None = None,
    ) -> None:
        super().__init__()
        self.kernel = check_kernel(kernel)
        if not isinstance(beta, (int, float)) or not beta >= 0 or beta == float("inf"):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        if not isinstance(ridge, (int, float)) or not ridge > 0 or ridge == float("inf"):
            raise ValueError(f"ridge (λ of Eq. 11) must be a finite number > 0, got {ridge!r}")
        if projector not in ("closed_form", "mlp"):
            raise ValueError(f"projector must be 'closed_form' or 'mlp', got {projector!r}")
        self.temperature = Temperature(temperature, learnable=learn_temperature, min_temperature=min_temperature)
        self.beta = float(beta)
        self.ridge = float(ridge)
        self.projector = projector
        self.positive_in_denominator = bool(positive_in_denominator)
        self.gather_distributed = bool(gather_distributed)
        self.modality_names = tuple(modality_names) if modality_names is not None else None
        if self.modality_names is not None:
            if len(set(self.modality_names)) != len(self.modality_names) or len(self.modality_names) < 2:
                raise ValueError(f"modality_names must be >= 2 distinct names, got {modality_names!r}")
            if n_modalities is None:
                n_modalities = len(self.modality_names)
            elif n_modalities != len(self.modality_names):
                raise ValueError(
                    f"n_modalities={n_modalities} disagrees with {len(self.modality_names)} modality_names"
                )
        self.n_modalities = n_modalities
        self.projectors: nn.ModuleList | None = None
        if projector == "mlp":
            if not isinstance(n_modalities, int) or n_modalities < 2:
                raise ValueError(f"projector='mlp' needs n_modalities (an int >= 2), got {n_modalities!r}")
            if not isinstance(embed_dim, int) or embed_dim < 1:
                raise ValueError(f"projector='mlp' needs embed_dim (an int >= 1), got {embed_dim!r}")
            hidden = embed_dim if projector_hidden_dim is None else projector_hidden_dim
            if not isinstance(hidden, int) or hidden < 1:
                raise ValueError(f"projector_hidden_dim must be an int >= 1, got {projector_hidden_dim!r}")
            self.projectors = nn.ModuleList(
                [_MLPProjector(n_modalities - 1, embed_dim, hidden) for _ in range(n_modalities)]
            )
        self.embed_dim = embed_dim

    # ------------------------------------------------------------------ helpers
    def _ordered(self, keys: list[str], zs: list[torch.Tensor]) -> tuple[list[str], list[torch.Tensor]]:
        """For the MLP projector: put the modalities in the order of ``modality_names`` (or check M)."""
        if self.projectors is None:
            return keys, zs
        if self.modality_names is not None:
            if set(keys) != set(self.modality_names):
                raise ValueError(
                    f"OVAIBLoss: expected modalities {list(self.modality_names)} (MLP projector), got {keys}"
                )
            idx = [keys.index(k) for k in self.modality_names]
            return [keys[i] for i in idx], [zs[i] for i in idx]
        if len(zs) != self.n_modalities:
            raise ValueError(
                f"OVAIBLoss: the MLP projector was built for {self.n_modalities} modalities, got {len(zs)}"
            )
        return keys, zs

    def _check_dim(self, d: int) -> None:
        if self.projectors is not None and d != self.embed_dim:
            raise ValueError(
                f"OVAIBLoss: embeddings have dimension {d}, the MLP projector expects {self.embed_dim}"
            )

    # ------------------------------------------------------------------ loss
    def forward(self, embeddings: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> LossOutput:
        keys, zs = check_embeddings(embeddings, 2, "OVAIBLoss")
        keys, zs = self._ordered(keys, zs)
        self._check_dim(zs[0].shape[1])
        zs = [l2_normalize(z) for z in zs]
        m = len(zs)
        cands, targets = gather_candidates(zs, self.gather_distributed)
        scale = self.temperature.scale()
        terms: dict[str, torch.Tensor] = {}
        per_anchor = []
        mini = None
        if self.projectors is None and m == 2:
            # M = 2: the projection score is |cos| (see _abs_cosine_scores); the embeddings are unit (or zero)
            # vectors, so |cos| = |z_a · z_b|, and the scale folds into the one Gram matmul both anchors share
            logits = ((scale * zs[0]) @ cands[1].T).abs()
            logits_t = (logits.T.contiguous() if cands[0] is zs[0] and cands[1] is zs[1]  # row softmax: contiguous
                        else ((scale * zs[1]) @ cands[0].T).abs())
            for lg in (logits, logits_t):
                per_anchor.append(contrastive_ce(lg, self.positive_in_denominator, targets=targets))
        elif self.projectors is None and all(c is z for c, z in zip(cands, zs)):
            # every anchor's score, cross-entropy and gradient in one fused pass (_OneVsAllSufficiency)
            per_anchor, mini = one_vs_all_terms(zs, scale, self.ridge, self.positive_in_denominator, self.kernel)
        elif self.projectors is None:
            cross, grams, sq_norms = one_vs_rest_inputs(zs, cands, range(m))
            scores = projection_scores_from_gram(cross, grams, sq_norms, self.ridge, self.kernel)
            for s in scores:
                per_anchor.append(contrastive_ce(scale * s, self.positive_in_denominator, targets=targets))
        else:
            for a in range(m):
                others = [cands[b] for b in range(m) if b != a]
                t = l2_normalize(self.projectors[a](others))
                per_anchor.append(
                    contrastive_ce(scale * (zs[a] @ t.T), self.positive_in_denominator, targets=targets)
                )
        per_anchor = per_anchor if isinstance(per_anchor, torch.Tensor) else torch.stack(per_anchor)
        for k, la in zip(keys, per_anchor.detach().unbind(0)):
            terms[f"infonce_{k}"] = la
        sufficiency = per_anchor.mean()
        minimality = mini.mean() if mini is not None else minimality_term(zs)[0]
        loss = sufficiency + self.beta * minimality
        terms["sufficiency"] = sufficiency.detach()
        terms["minimality"] = minimality.detach()
        terms["temperature"] = (1.0 / scale).detach()
        return LossOutput(loss, terms)

    # ------------------------------------------------------------------ retrieval
    def score(
        self,
        queries: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
        candidates: torch.Tensor,
        candidate_modality: str | int | None = None,
    ) -> torch.Tensor:
        """Retrieval score (Nq, Nc): projection score of each candidate onto the span of each query tuple.

        ``queries`` are the other modalities of each query sample (k ≥ 1 tensors (Nq, d)); ``candidates`` (Nc, d)
        one modality. With the MLP projector the candidate's modality must be known: ``candidate_modality`` (name
        or index), or inferred as the one of ``modality_names`` missing from the query keys.
        """
        qkeys, qs = check_queries(queries, candidates, "OVAIBLoss.score")
        c = l2_normalize(candidates)
        qs = [l2_normalize(q) for q in qs]
        if self.projectors is None:
            return projection_score(c, qs, self.ridge, self.kernel).T
        idx = self._candidate_index(qkeys, candidate_modality)
        if len(qs) != self.n_modalities - 1:
            raise ValueError(
                f"OVAIBLoss.score: the MLP projector needs {self.n_modalities - 1} query modalities"
            )
        if self.modality_names is not None and isinstance(queries, Mapping):
            order = [n for n in self.modality_names if n in qkeys]
            qs = [qs[qkeys.index(n)] for n in order]
        t = l2_normalize(self.projectors[idx](qs))
        return t @ c.T

    def _candidate_index(self, qkeys: list[str], candidate_modality: str | int | None) -> int:
        names = self.modality_names
        if isinstance(candidate_modality, int):
            if not 0 <= candidate_modality < (self.n_modalities or 0):
                raise ValueError(f"candidate_modality index {candidate_modality} out of range")
            return candidate_modality
        if isinstance(candidate_modality, str):
            if names is None or candidate_modality not in names:
                raise ValueError(
                    f"candidate_modality {candidate_modality!r} is not one of modality_names {names}"
                )
            return names.index(candidate_modality)
        if names is not None:
            missing = [n for n in names if n not in qkeys]
            if len(missing) == 1:
                return names.index(missing[0])
        raise ValueError(
            "OVAIBLoss.score with projector='mlp' needs candidate_modality (or modality_names and query keys that "
            "leave out exactly one modality)"
        )
