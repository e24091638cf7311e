"""GRAM's volume vol = √det G of an anchor and a tuple from Gram entries (Schur complement, docs/methods/gram.md):
the autograd Function :class:`_GramVolumes` (hand-written backward; the elementwise algebra of
:mod:`mmib.objectives.projection.fused`, eager or compiled) and the public functions :func:`gram_volume`,
:func:`volume_from_gram`, :func:`volumes_from_gram`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmib.objectives.projection import fused
from mmib.objectives.projection.factor import factor_tuple_grams, tuple_gram
from mmib.objectives.projection.layout import check_kernel, coefficient_columns, flat_anchor_inputs

#: ridge added to the tuple Gram matrix before its Cholesky factorization (float64; changes det G by O(1e-10))
GRAM_RIDGE = 1e-10


#: volumes are sqrt(max(det G, VOLUME_EPS)) so that the gradient of a zero volume stays finite
VOLUME_EPS = 1e-20


_WHO = "GRAM kernel='compiled'"


class _GramVolumes(torch.autograd.Function):
    """vol = √max(det K · (‖a‖² − cᵀK⁻¹c), ε) for A anchor modalities at once, with a hand-written backward.

    Inputs as :class:`mmib.objectives.projection.scores._ProjectionScores`: ``grams`` (A, Nt, k, k), ``sq_norms`` (A, Na) and
    A·k cross matrices (Na, Nt). K = AᵀA + ridge·I = L Lᵀ per candidate (float64), y = L⁻¹c, w = L⁻ᵀy = K⁻¹c; the
    backward uses ∂(cᵀK⁻¹c)/∂c = 2w, ∂(cᵀK⁻¹c)/∂K = −wwᵀ and ∂det K/∂K = det K · K⁻¹. The elementwise algebra is
    :func:`mmib.objectives.projection.fused.volume_forward` / ``volume_backward`` on candidate-major (Nt, Na) arrays, run
    as is (``kernel="eager"``) or fused by ``torch.compile`` (``"compiled"``; eager with a warning if compilation
    fails).
    """

    @staticmethod
    def forward(ctx, grams, sq_norms, ridge, kernel, *cross):  # noqa: D102
        n_anchor, nt, k, _ = grams.shape
        dtype = cross[0].dtype
        chol, linv = factor_tuple_grams(grams, ridge, "GRAM volume")  # (A, Nt, k, k)
        det_k = torch.diagonal(chol, dim1=-2, dim2=-1).prod(-1) ** 2  # (A, Nt), float64
        coef = coefficient_columns(linv, dtype)
        det_col = det_k.to(dtype).unsqueeze(-1)  # (A, Nt, 1)
        sq = sq_norms.to(dtype).unsqueeze(1)  # (A, 1, Na)
        xs = [c.T.contiguous() for c in cross]
        ctx.kernel = kernel
        out = fused.run("volumes_forward", kernel, xs, coef, det_col, sq, VOLUME_EPS, who=_WHO)
        del xs
        ctx.n_anchor = n_anchor
        ctx.grams_dtype, ctx.sq_dtype = grams.dtype, sq_norms.dtype
        ctx.save_for_backward(linv, det_k, *[t for st in out for t in st])
        return tuple(st[0].T for st in out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_out):  # noqa: D102
        linv, det_k, *saved = ctx.saved_tensors
        n_anchor, nt, k, _ = linv.shape
        per = len(saved) // n_anchor
        states = [saved[a * per : (a + 1) * per] for a in range(n_anchor)]
        dtype = states[0][0].dtype
        gv = [g.T.contiguous() if g is not None else torch.zeros_like(st[0]) for g, st in zip(grad_out, states)]
        det_col = det_k.to(dtype).unsqueeze(-1)
        out = fused.run("volumes_backward", ctx.kernel, gv, states, det_col, VOLUME_EPS, who=_WHO)
        k_inv = linv.mT @ linv  # (A, Nt, k, k) float64
        grad_grams = linv.new_empty(linv.shape)
        grad_sq, grad_cross = [], []
        for a, (*gc, upper, g_det, g_sq) in enumerate(out):
            # ∂L/∂K = Σ_a g det K · w wᵀ (from −det K · cᵀK⁻¹c) + (Σ_a g r) · det K · K⁻¹ (from det K)
            full = fused.upper_to_full(upper, k).to(linv.dtype)
            grad_grams[a] = full + (g_det.to(linv.dtype) * det_k[a])[:, None, None] * k_inv[a]
            grad_sq.append(g_sq)
            grad_cross += [g.T for g in gc]
        return (grad_grams.to(ctx.grams_dtype), torch.stack(grad_sq).to(ctx.sq_dtype), None, None, *grad_cross)


def volumes_from_gram(
    cross: Sequence[Sequence[torch.Tensor]],
    grams: torch.Tensor,
    anchor_sq_norms: torch.Tensor,
    ridge: float = GRAM_RIDGE,
    kernel: str = "eager",
) -> tuple[torch.Tensor, ...]:
    """:func:`volume_from_gram` for A anchors in one call (what :class:`GRAMLoss` uses per step).

    ``cross[a]``: the k cross matrices (Na, Nt) of anchor a (they may be shared between anchors); ``grams``
    (A, Nt, k, k); ``anchor_sq_norms`` (A, Na). Returns A volume matrices (Na, Nt).
    """
    flat = flat_anchor_inputs(cross, grams, anchor_sq_norms, "GRAM volumes")
    return _GramVolumes.apply(grams, anchor_sq_norms, float(ridge), check_kernel(kernel), *flat)


def volume_from_gram(
    cross: Sequence[torch.Tensor],
    gram: torch.Tensor,
    anchor_sq_norm: torch.Tensor,
    ridge: float = GRAM_RIDGE,
    kernel: str = "eager",
) -> torch.Tensor:
    """Volume sqrt(det G) of [anchor_a, tuple_t] for all pairs (Na, Nt), from Gram entries (Schur complement).

    ``cross``: k tensors (Na, Nt) of ⟨anchor, tuple^(i)⟩; ``gram``: (Nt, k, k) tuple Gram matrices;
    ``anchor_sq_norm``: (Na,).
    """
    return volumes_from_gram([list(cross)], gram[None], anchor_sq_norm[None], ridge, kernel)[0]


def gram_volume(anchors: torch.Tensor, tuples: Sequence[torch.Tensor], kernel: str = "eager") -> torch.Tensor:
    """Volume of the parallelotope spanned by anchor row a and tuple row t, for all pairs → (Na, Nt).

    The vectors are used as given (the objective L2-normalizes them first).
    """
    cross = [anchors @ t.T for t in tuples]
    return volume_from_gram(cross, tuple_gram(tuples), (anchors * anchors).sum(-1), kernel=kernel)
