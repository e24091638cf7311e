"""COX (Connect & Explore) objectives and selection rules for out-of-modal (OOM) generalization.

Paper: "Towards Out-of-Modal Generalization without Instance-level Modal Correspondence" (Huang et al., ICLR 2025);
spec: ``specs/cox.md``. Pure tensor functions and small modules, no method imports:

* :func:`agreement_mask` / :func:`disagreement_mask` — the agreement set A and the modality-disagreement set D of
  Eq. 10 (all K argmaxes equal / not all equal; K >= 2).
* :func:`select_agreement_anchors` — Eq. 14: filter to A, rank by the mean over k of the max class probability
  (descending, ties by lower index), keep the top T.
* :func:`emergent_correspondence` — Eq. 15 (A): for each OOM feature the IM instance ``i*`` minimizing the mean over k
  of the non-squared Euclidean distance to the K mappings ``m_{k,i}``; keep the S closest OOM samples (chunked).
* :class:`AnchorKL` — the exploration term of Eqs. 10/13/15, ``1/(|A|+|D|) sum_d sum_a KL(h(x_d) || h(x_a))``,
  computed in O((|A|+|D|) C) without the |A|x|D| tensor.
* :class:`ConnectionLoss` — the reconstruction part of Eq. 9 in feature space, ``sum_k ||z^O - m_k||^2``.
* :func:`gaussian_kl_to_prior` — the optional VIB KL-to-N(0, I) term (off in the paper).
* :func:`mmd_rbf` — squared MMD with a Gaussian kernel (Fig. 5 analysis; the opt-in U-1 fix).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from mmib.info.vib import gaussian_kl
from mmib.objectives.base import LossOutput

KL_NORMALIZERS = ("sum_sizes", "num_pairs", "num_D")
KL_DIRECTIONS = ("paper", "forward")
RECON_REDUCTIONS = ("mean", "sum")


def _check_scores(scores: Sequence[torch.Tensor], name: str) -> list[torch.Tensor]:
    scores = list(scores)
    if len(scores) < 1:
        raise ValueError(f"{name}: needs the outputs of at least one classifier, got none")
    for k, s in enumerate(scores):
        if not isinstance(s, torch.Tensor) or s.dim() != 2:
            raise ValueError(f"{name}: classifier output {k} must be a 2-D tensor (N, C), got "
                             f"{tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__}")
    if len({tuple(s.shape) for s in scores}) != 1:
        raise ValueError(f"{name}: classifier outputs must share one shape (N, C), got {[tuple(s.shape) for s in scores]}")
    return scores


def agreement_mask(scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """True where the argmax of every classifier output (logits or probabilities, (N, C) each) is the same (Eq. 10, A)."""
    scores = _check_scores(scores, "agreement_mask")
    preds = torch.stack([s.argmax(dim=1) for s in scores])  # (K, N)
    return (preds == preds[:1]).all(dim=0)


def disagreement_mask(scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """True where not all classifiers predict the same class: the modality-disagreement set D (Eq. 10)."""
    return ~agreement_mask(scores)


def select_agreement_anchors(probs: Sequence[torch.Tensor], top_t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 14: ``SORT_T(A, (1/K) sum_k max h_k^*(x))``.

    Args:
        probs: K tensors (N, C) of class probabilities of the K IM classifiers on the same N OOM samples.
        top_t: how many anchors to keep (fewer if A is smaller).

    Returns:
        ``(idx, pseudo_labels, score)``: indices into 0..N-1 in descending score order (ties: lower index first),
        the common argmax of each, and its score (mean over k of the max probability).
    """
    probs = _check_scores(probs, "select_agreement_anchors")
    if int(top_t) < 0:
        raise ValueError(f"select_agreement_anchors: top_t must be >= 0, got {top_t}")
    agree = agreement_mask(probs)
    score = torch.stack([p.max(dim=1).values for p in probs]).mean(dim=0)
    cand = torch.nonzero(agree, as_tuple=True)[0]
    order = torch.sort(-score[cand], stable=True).indices  # cand is ascending, so ties keep the lower index first
    idx = cand[order][: int(top_t)]
    return idx, probs[0][idx].argmax(dim=1), score[idx]


def emergent_correspondence(
    z_oom: torch.Tensor, maps: Sequence[torch.Tensor], y_im: torch.Tensor, top_s: int, chunk_size: int = 4096
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 15 (A): emergent correspondences between OOM features and IM instances.

    ``dbar(j, i) = (1/K) sum_k ||z_j^O - m_{k,i}||_2`` (plain Euclidean distance, averaged over the K mappings of the
    *same* IM instance i), ``i*(j) = argmin_i dbar(j, i)``, ``s(j) = min_i dbar(j, i)``; the S samples with the
    smallest ``s(j)`` are kept, each labelled ``y_{i*(j)}``.

    Args:
        z_oom: (M, d) OOM features.
        maps: K tensors (N, d): the IM instances mapped into the OOM feature space.
        y_im: (N,) IM labels.
        top_s: how many correspondences to keep.
        chunk_size: OOM rows per distance block (memory O(chunk_size * N)).

    Returns:
        ``(idx, labels, istar, dist)``: the kept OOM indices in ascending distance (ties: lower index first), their
        labels ``y_{i*}``, and for *every* OOM sample ``i*(j)`` (M,) and ``s(j)`` (M,).
    """
    if z_oom.dim() != 2:
        raise ValueError(f"emergent_correspondence: z_oom must be (M, d), got shape {tuple(z_oom.shape)}")
    maps = list(maps)
    if not maps:
        raise ValueError("emergent_correspondence: needs at least one IM mapping")
    n = maps[0].shape[0]
    for k, m in enumerate(maps):
        if m.dim() != 2 or m.shape != (n, z_oom.shape[1]):
            raise ValueError(f"emergent_correspondence: mapping {k} must be (N, {z_oom.shape[1]}) like the others, "
                             f"got {tuple(m.shape)}")
    if y_im.shape != (n,):
        raise ValueError(f"emergent_correspondence: y_im must be ({n},), got {tuple(y_im.shape)}")
    if n == 0 or z_oom.shape[0] == 0:
        raise ValueError("emergent_correspondence: empty IM or OOM set")
    if int(chunk_size) < 1 or int(top_s) < 0:
        raise ValueError(f"emergent_correspondence: chunk_size must be >= 1 and top_s >= 0, got {chunk_size}, {top_s}")
    istar, dist = [], []
    for start in range(0, z_oom.shape[0], int(chunk_size)):
        zc = z_oom[start : start + int(chunk_size)]
        d = sum(torch.cdist(zc, m, compute_mode="donot_use_mm_for_euclid_dist") for m in maps) / len(maps)
        v, i = d.min(dim=1)
        istar.append(i)
        dist.append(v)
    istar_t, dist_t = torch.cat(istar), torch.cat(dist)
    order = torch.sort(dist_t, stable=True).indices[: int(top_s)]
    return order, y_im[istar_t[order]], istar_t, dist_t


class AnchorKL(nn.Module):
    """The exploration term of Eqs. 10, 13 and 15::

        L_KL = 1/(|A| + |D|) * sum_{d in D} sum_{a in A} KL(h(x_d) || h(x_a))

    computed exactly with ``sum_a KL(p_d || p_a) = |A| sum_c p_dc log p_dc - sum_c p_dc S_c``, ``S_c = sum_a log p_ac``.

    Args:
        normalizer: ``sum_sizes`` (the paper's 1/(|A|+|D|)), ``num_pairs`` (1/(|A||D|)) or ``num_D`` (1/|D|).
        direction: ``paper`` = KL(p_d || p_a) as written, ``forward`` = KL(p_a || p_d).
        stopgrad_anchor: detach the anchor posteriors (they are guidance; the paper is silent).

    Returns (forward): a :class:`LossOutput` with the term; zero (with a graph) when A or D is empty.

    Example:
        >>> kl = AnchorKL()  # KL(p_d || p_a) / (|A| + |D|)
        >>> p_d, p_a = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])  # logits of one D and one A sample
        >>> round(kl(p_d, p_a).loss.item(), 4)  # KL(softmax(2, 0) || softmax(0, 2)) = 2 tanh(1), over 2
        0.7616
        >>> abs(kl(p_d.repeat(3, 1), p_d.repeat(2, 1)).loss.item()) < 1e-6  # the same posteriors: 0
        True
    """

    def __init__(self, normalizer: str = "sum_sizes", direction: str = "paper", stopgrad_anchor: bool = True):
        super().__init__()
        if normalizer not in KL_NORMALIZERS:
            raise ValueError(f"AnchorKL: normalizer must be one of {', '.join(KL_NORMALIZERS)}, got {normalizer!r}")
        if direction not in KL_DIRECTIONS:
            raise ValueError(f"AnchorKL: direction must be one of {', '.join(KL_DIRECTIONS)}, got {direction!r}")
        self.normalizer, self.direction, self.stopgrad_anchor = normalizer, direction, bool(stopgrad_anchor)

    def forward(self, logits_d: torch.Tensor, logits_a: torch.Tensor) -> LossOutput:
        if logits_d.dim() != 2 or logits_a.dim() != 2 or logits_d.shape[1] != logits_a.shape[1]:
            raise ValueError(f"AnchorKL: logits must be (|D|, C) and (|A|, C) with the same C, got "
                             f"{tuple(logits_d.shape)} and {tuple(logits_a.shape)}")
        n_d, n_a = logits_d.shape[0], logits_a.shape[0]
        if n_d == 0 or n_a == 0:
            zero = logits_d.sum() * 0.0 + logits_a.sum() * 0.0
            return LossOutput(zero, {"kl": zero.detach()})
        if self.stopgrad_anchor:
            logits_a = logits_a.detach()
        log_d, log_a = F.log_softmax(logits_d, dim=1), F.log_softmax(logits_a, dim=1)
        p_d, p_a = log_d.exp(), log_a.exp()
        if self.direction == "paper":
            total = n_a * (p_d * log_d).sum() - (p_d * log_a.sum(dim=0)).sum()
        else:
            total = n_d * (p_a * log_a).sum() - (p_a.sum(dim=0) * log_d).sum()
        denom = {"sum_sizes": n_a + n_d, "num_pairs": n_a * n_d, "num_D": n_d}[self.normalizer]
        loss = total / denom
        return LossOutput(loss, {"kl": loss.detach()})


class ConnectionLoss(nn.Module):
    """Reconstruction part of Eq. 9 in feature space: ``(1/|P|) sum_i sum_k ||z_i^O - m_{k,i}||^2``.

    Args:
        reduction: ``sum`` = squared norm summed over the d feature dimensions (Eq. 9 as written); ``mean`` =
            divided by d (``F.mse_loss``, the authors' code; the spec's default).
        detach_target: stop the reconstruction gradient into the OOM features (and so into ``g^O``).

    Example:
        >>> z_oom = torch.zeros(2, 3)  # OOM features of |P| = 2 anchors
        >>> maps = [torch.ones(2, 3), torch.full((2, 3), 2.0)]  # two mappings m_k of the other modalities
        >>> ConnectionLoss(reduction="sum")(z_oom, maps).loss.item()  # mean over P of (3 * 1 + 3 * 4)
        15.0
        >>> ConnectionLoss()(z_oom, maps).loss.item()  # reduction="mean": divided by d = 3
        5.0
    """

    def __init__(self, reduction: str = "mean", detach_target: bool = False):
        super().__init__()
        if reduction not in RECON_REDUCTIONS:
            raise ValueError(f"ConnectionLoss: reduction must be one of {', '.join(RECON_REDUCTIONS)}, got {reduction!r}")
        self.reduction, self.detach_target = reduction, bool(detach_target)

    def forward(self, z_oom: torch.Tensor, maps: Sequence[torch.Tensor]) -> LossOutput:
        maps = list(maps)
        if not maps:
            raise ValueError("ConnectionLoss: needs at least one mapping")
        for k, m in enumerate(maps):
            if m.shape != z_oom.shape or z_oom.dim() != 2:
                raise ValueError(f"ConnectionLoss: mapping {k} has shape {tuple(m.shape)}, the OOM features "
                                 f"{tuple(z_oom.shape)}; both must be (P, d)")
        if z_oom.shape[0] == 0:
            zero = sum(m.sum() for m in maps) * 0.0
            return LossOutput(zero, {"recon": zero.detach()})
        target = z_oom.detach() if self.detach_target else z_oom
        per = [((target - m) ** 2).sum(dim=1) for m in maps]
        loss = torch.stack(per).sum(dim=0).mean()
        if self.reduction == "mean":
            loss = loss / z_oom.shape[1]
        return LossOutput(loss, {"recon": loss.detach()})


def gaussian_kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over samples of KL(N(mu, diag(exp(logvar))) || N(0, I)) — the VIB prior term (off in the paper).

    The shared :func:`mmib.info.vib.gaussian_kl` with its defaults (prior N(0, I), summed over latent dimensions,
    mean over the batch): ``½ Σ_k (μ² + e^{logvar} − 1 − logvar)``. Non-finite inputs raise a ``ValueError``.
    """
    return gaussian_kl(mu, logvar, reduction="mean")


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").pow(2)


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """Squared maximum mean discrepancy (biased V-statistic) with ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``.

    ``bandwidth`` sigma defaults to the median pairwise distance of the pooled sample (median heuristic, computed
    without gradient). The paper does not name its kernel (spec Section 4).
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"mmd_rbf: x and y must be (n, d) and (m, d), got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 1 or y.shape[0] < 1:
        raise ValueError("mmd_rbf: empty sample")
    if bandwidth is None:
        with torch.no_grad():
            pool = torch.cat([x, y])
            d = _sq_dists(pool, pool).sqrt()
            med = d[d > 0].median() if bool((d > 0).any()) else torch.tensor(1.0)
            sigma = float(med)
    else:
        sigma = float(bandwidth)
        if not sigma > 0:
            raise ValueError(f"mmd_rbf: bandwidth must be > 0, got {bandwidth!r}")
    g = 1.0 / (2.0 * sigma * sigma)
    kxx = torch.exp(-g * _sq_dists(x, x)).mean()
    kyy = torch.exp(-g * _sq_dists(y, y)).mean()
    kxy = torch.exp(-g * _sq_dists(x, y)).mean()
    return kxx + kyy - 2.0 * kxy
