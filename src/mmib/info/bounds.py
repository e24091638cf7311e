"""Variational bounds on mutual information, computed from a matrix of critic scores.

Layout of ``scores`` (every function here): a square ``(N, N)`` tensor with ``scores[i, j] = f(x_i, y_j)``, the
critic evaluated on ``x`` of sample ``i`` and ``y`` of sample ``j`` of one batch. The diagonal holds the *positive*
(jointly drawn) pairs; the off-diagonal entries are pairs drawn from the product of the marginals. An optional boolean
``mask`` of the same shape says which pairs are *candidates*: ``mask[i, j] = True`` lets ``y_j`` serve as a negative
for ``x_i``. The conditional estimators use it to keep only negatives with the same conditioning value (negatives
from ``p(y | c)``, FactorCL Eq. 13); the diagonal must always be ``True``.

All values are in **nats**. References:

- Poole, Ozair, van den Oord, Alemi, Tucker, "On Variational Bounds of Mutual Information", ICML 2019 (Poole et al.).
- van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive Coding", 2018 (InfoNCE).
- Nguyen, Wainwright, Jordan, "Estimating divergence functionals and the likelihood ratio by convex risk
  minimization", IEEE T-IT 2010 (NWJ / f-GAN KL bound).
- Belghazi et al., "Mutual Information Neural Estimation", ICML 2018 (MINE, Donsker–Varadhan bound).
- Cheng et al., "CLUB: A Contrastive Log-ratio Upper Bound of Mutual Information", ICML 2020 (CLUB).
- Liang et al., "Factorized Contrastive Learning", NeurIPS 2023 (FactorCL; NCE-CLUB, Eq. 11).
"""

from __future__ import annotations

import math

import torch


def check_scores(scores: torch.Tensor, mask: torch.Tensor | None = None, name: str = "scores") -> torch.Tensor | None:
    """Validate a critic-score matrix (square, at least 2×2, finite) and its optional candidate mask.

    Returns the mask as a bool tensor (or ``None``).

    Raises:
        ValueError: naming the argument and what was expected.
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"{name} must be a square 2-D tensor (N, N) with scores[i, j] = f(x_i, y_j), got {got}")
    if scores.shape[0] < 2:
        raise ValueError(f"{name} needs a batch of at least 2 samples (N >= 2), got N = {scores.shape[0]}")
    if not torch.isfinite(scores).all():
        raise ValueError(f"{name} contains NaN or inf; the critic diverged or its inputs are not finite")
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.shape != scores.shape:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor of the shape of {name} {tuple(scores.shape)}, got {got}")
    mask = mask.to(device=scores.device, dtype=torch.bool)
    if not bool(mask.diagonal().all()):
        raise ValueError("mask must be True on the diagonal (the positive pair is always a candidate)")
    return mask


def _offdiag(n: int, device: torch.device) -> torch.Tensor:
    return ~torch.eye(n, dtype=torch.bool, device=device)


def _masked_logmeanexp(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log( mean over the True entries of ``mask`` of exp(scores) ), pooled over the whole matrix."""
    count = int(mask.sum())
    if count == 0:
        raise ValueError("no product-of-marginals pairs: every off-diagonal pair is masked out "
                         "(with negatives='same_condition' each conditioning value needs >= 2 samples in the batch)")
    vals = scores.masked_fill(~mask, float("-inf"))
    return torch.logsumexp(vals.reshape(-1), dim=0) - math.log(count)


def infonce_lower_bound(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE lower bound with the ``+ log N`` convention (van den Oord et al. 2018; Poole et al. Eq. 12;
    FactorCL Eq. 10 and its released code, spec A.3.1)::

        I_NCE = mean_i [ f(x_i, y_i) - logsumexp_{j in C_i} f(x_i, y_j) + log |C_i| ]

    ``C_i`` are the candidates of row ``i`` (all ``j`` without a mask; the positive is included). Each row is a
    softmax over the ``y`` candidates for a fixed ``x_i`` (transpose ``scores`` to normalize over ``x`` instead).
    The value never exceeds ``log N`` (``log |C_i|`` per row, averaged): a softmax probability is at most 1.
    """
    mask = check_scores(scores, mask)
    n = scores.shape[0]
    pos = scores.diagonal()
    if mask is None:
        return (pos - torch.logsumexp(scores, dim=1)).mean() + math.log(n)
    lse = torch.logsumexp(scores.masked_fill(~mask, float("-inf")), dim=1)
    counts = mask.sum(dim=1).to(scores.dtype)
    return (pos - lse + counts.log()).mean()


def nwj_lower_bound(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """NWJ lower bound (Nguyen, Wainwright & Jordan 2010; Poole et al. Eq. 6 with the ``e^{-1}`` shift, also
    called f-GAN KL / MINE-f)::

        I_NWJ = E_p(x,y)[ f ] - e^{-1} E_p(x)p(y)[ e^{f} ]

    The joint expectation is the mean of the diagonal, the product-of-marginals expectation the mean over the
    off-diagonal candidate pairs. The optimum is ``f* = 1 + log p(y|x)/p(y)``.
    """
    mask = check_scores(scores, mask)
    n = scores.shape[0]
    marg = _offdiag(n, scores.device) if mask is None else mask & _offdiag(n, scores.device)
    return scores.diagonal().mean() - torch.exp(_masked_logmeanexp(scores, marg) - 1.0)


def mine_lower_bound(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Donsker–Varadhan lower bound used by MINE (Belghazi et al. 2018, Eq. 10 / Thm 1; OMIB App. E Eq. 99)::

        I_DV = E_p(x,y)[ T ] - log E_p(x)p(y)[ e^{T} ]

    Product-of-marginals samples are all off-diagonal candidate pairs of the batch (Belghazi et al. shuffle ``y``,
    which draws one of them per row). This is the *value*; its minibatch gradient is biased, see
    :class:`mmib.info.MINEEstimator` for the moving-average correction.
    """
    mask = check_scores(scores, mask)
    n = scores.shape[0]
    marg = _offdiag(n, scores.device) if mask is None else mask & _offdiag(n, scores.device)
    return scores.diagonal().mean() - _masked_logmeanexp(scores, marg)


def nce_club_upper_bound(
    scores: torch.Tensor, mask: torch.Tensor | None = None, include_diagonal: bool = True
) -> torch.Tensor:
    """NCE-CLUB (FactorCL Eq. 11 / 54; spec A.3.2): the CLUB form evaluated with the InfoNCE-trained critic::

        I_NCE-CLUB = mean_i f(x_i, y_i) - mean_{(i,j) in P} f(x_i, y_j)

    ``include_diagonal=True`` (FactorCL's released code): ``P`` is every candidate pair, diagonal included. This is
    exactly invariant to ``f + c(x)`` and ``f + c(y)`` (spec D.1.2). ``include_diagonal=False``: ``P`` is the
    off-diagonal pairs only (strict product of marginals); without a mask it is exactly shift-invariant too (a shift
    ``c(x_i)`` moves the diagonal mean and the off-diagonal mean both by ``mean_i c(x_i)``; spec D.1.2's remark
    that it is not is wrong, tested in ``tests/objectives/test_factorcl.py``). With a mask the shifts are weighted
    by the candidate counts per row and invariance can fail for either variant.
    It is an upper bound only when ``f`` is the *optimal* InfoNCE critic ``log p(y|x) + c(x)`` (FactorCL Thm 2).
    """
    mask = check_scores(scores, mask)
    n = scores.shape[0]
    pairs = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask
    if not include_diagonal:
        pairs = pairs & _offdiag(n, scores.device)
    count = int(pairs.sum())
    if count == 0:
        raise ValueError("no product-of-marginals pairs left for the NCE-CLUB marginal term")
    return scores.diagonal().mean() - scores.masked_fill(~pairs, 0.0).sum() / count


def club_upper_bound(log_q: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """CLUB (Cheng et al. 2020, Eq. 14 with a variational ``q``; sampled form as in their released code)::

        I_vCLUB = mean_i log q(y_i | x_i) - mean_{i,j} log q(y_j | x_i)

    ``log_q[i, j] = log q(y_j | x_i)``. The marginal term averages all candidate pairs, the diagonal included (as in
    the authors' ``CLUB.forward``). It upper-bounds I(X;Y) when ``q`` is close enough to ``p(y|x)`` (their Thm 3.2:
    ``KL(p(x,y) || q(x,y)) <= KL(p(x)p(y) || q(x,y))``).
    """
    return nce_club_upper_bound(log_q, mask, include_diagonal=True)
