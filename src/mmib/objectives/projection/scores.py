"""The OVA-IB projection score s = cos(z, p) (Eq. 11) of anchors against tuples from Gram entries: the score-only
autograd Function :class:`_ProjectionScores` (hand-written backward; eager blocks or the compiled kernels of
:mod:`mmib.objectives.projection.fused`), the |cos| path of one-embedding tuples (M = 2) and the public functions
:func:`projection_score`, :func:`projection_score_from_gram`, :func:`projection_scores_from_gram` (retrieval scores,
gathered candidates; the loss on local candidates is :mod:`mmib.objectives.projection.one_vs_all`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmib.objectives.projection import fused
from mmib.objectives.projection.factor import factor_tuple_grams, tuple_gram
from mmib.objectives.projection.fused import EPS2
from mmib.objectives.projection.layout import (
    check_kernel,
    coefficient_columns,
    flat_anchor_inputs,
    row_blocks,
)


def _sum_of_squares(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    out = xs[0] * xs[0]
    for x in xs[1:]:
        out = torch.addcmul(out, x, x)
    return out


def _lower_mix(xs: Sequence[torch.Tensor], coef: list[list[torch.Tensor]],
               out: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """y_i = Σ_{j≤i} coef[i][j] · x_j (coef: per-candidate coefficients of a lower-triangular matrix, broadcast
    against the x_j); written into ``out[i]`` when given (no autograd: used inside :class:`_ProjectionScores`)."""
    res = []
    for i in range(len(xs)):
        acc = torch.mul(xs[0], coef[i][0], out=out[i]) if out is not None else xs[0] * coef[i][0]
        for j in range(1, i + 1):
            acc.addcmul_(xs[j], coef[i][j])
        res.append(acc)
    return res


def _upper_mix(xs: Sequence[torch.Tensor], coef: list[list[torch.Tensor]],
               out: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """w_i = Σ_{j≥i} coef[j][i] · x_j (multiplication by the transpose of the lower-triangular ``coef``)."""
    k = len(xs)
    res = []
    for i in range(k):
        acc = torch.mul(xs[i], coef[i][i], out=out[i]) if out is not None else xs[i] * coef[i][i]
        for j in range(i + 1, k):
            acc.addcmul_(xs[j], coef[j][i])
        res.append(acc)
    return res


class _ProjectionScores(torch.autograd.Function):
    """s = cᵀK⁻¹c / (‖z‖ √(cᵀK⁻¹c − λ cᵀK⁻²c)) for A anchor modalities at once, with a hand-written backward.

    The score alone (retrieval, gathered candidates, the loss before issue 24's fused pass); the loss of
    :class:`OVAIBLoss` on local candidates is :class:`_OneVsAllSufficiency`.

    Inputs: ``grams`` (A, Nt, k, k) tuple Gram matrices, ``sq_norms`` (A, Na) anchor ‖z‖², and A·k cross matrices
    (Na, Nt) (anchor-major: those of anchor 0 first). One call serves all anchors of a step, so that the per-call
    costs (one batched Cholesky factorization, one compiled kernel launch per pass) are paid once.

    Forward: K = L Lᵀ in float64 per candidate, y = L⁻¹c (q1 = ‖y‖²), w = L⁻ᵀy = K⁻¹c (q2 = ‖w‖²); nothing of
    autograd's graph of the ~30 elementwise operations on (Nt, Na) arrays is kept: the backward uses the
    closed forms ∂q1/∂c = 2w, ∂q2/∂c = 2v, ∂q1/∂K = −wwᵀ, ∂q2/∂K = −(wvᵀ + vwᵀ) with v = K⁻¹w, and contracts over the
    anchors for ∂/∂K. The arrays are laid out candidate-major, (Nt, Na), so that the per-candidate coefficients
    broadcast along rows and the contraction over anchors runs along contiguous memory.

    Two kernels compute the elementwise algebra: ``"eager"`` (PyTorch operations on blocks of candidate rows that
    fit in cache, :data:`BLOCK_ELEMENTS`; the contraction by batched matmuls) and ``"compiled"``
    (:mod:`mmib.objectives.projection.fused`: the same algebra fused by ``torch.compile`` into one loop per pass). If
    compilation fails, a warning says why and the eager kernel is used for the rest of the process.
    The clamps of the degenerate cases (zero anchor, zero projection) pass no gradient, as ``clamp_min`` would.
    """

    @staticmethod
    def forward(ctx, grams, sq_norms, ridge, kernel, *cross):  # noqa: D102
        n_anchor, nt, k, _ = grams.shape

        def candidate_major(a: int) -> list[torch.Tensor]:  # (Nt, Na) each; free for a transposed contiguous one
            return [c.T.contiguous() for c in cross[a * k : (a + 1) * k]]

        _, linv = factor_tuple_grams(grams, ridge, "projection score")
        dtype = cross[0].dtype
        sq = sq_norms.to(dtype)
        z_ok = sq > EPS2
        z_norm = sq.clamp_min(EPS2).sqrt()  # (A, Na)
        out = None
        if kernel in ("compiled", "inductor"):  # the score-only Function has no numba path
            xs = [x for a in range(n_anchor) for x in candidate_major(a)]
            out = _fused_call("forward", coefficient_columns(linv, dtype), xs, z_norm.unsqueeze(1), ridge)
            del xs
        saved: list[torch.Tensor] = []
        scores = []
        for a in range(n_anchor):
            if out is not None:
                s, a1, a2, *w = out[a]  # w: k arrays (Nt, Na)
            else:
                s, a1, a2, wbuf = _eager_forward(
                    candidate_major(a), _row_coefficients(linv[a], dtype), z_norm[a], ridge
                )
                w = [wbuf]  # (Nt, k, Na): the eager backward's batched matmul reads it as is
            saved += [s, a1, a2, *w]
            scores.append(s.T)
        ctx.kernel = "compiled" if out is not None else "eager"
        ctx.n_anchor = n_anchor
        ctx.grams_dtype = grams.dtype
        ctx.sq_dtype = sq_norms.dtype
        ctx.save_for_backward(linv, z_norm, z_ok, *saved)
        return tuple(scores)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_out):  # noqa: D102
        linv, z_norm, z_ok, *saved = ctx.saved_tensors
        n_anchor, nt, k, _ = linv.shape
        per = len(saved) // n_anchor
        states = [saved[a * per : (a + 1) * per] for a in range(n_anchor)]
        grads = [g.T if g is not None else None for g in grad_out]  # (Nt, Na), usually transposed views
        dtype = states[0][0].dtype
        out = None
        if ctx.kernel == "compiled":
            gs = [
                g.contiguous() if g is not None else torch.zeros_like(st[0]) for g, st in zip(grads, states)
            ]
            out = _fused_call("backward", coefficient_columns(linv, dtype), gs, states)
        grad_grams = linv.new_empty(n_anchor, nt, k, k, dtype=dtype)
        grad_sq = z_norm.new_empty(z_norm.shape)
        grad_cross: list[torch.Tensor | None] = []
        for a in range(n_anchor):
            if grads[a] is None and out is None:
                grad_grams[a].zero_()
                grad_sq[a].zero_()
                grad_cross += [None] * k
                continue
            if out is not None:
                *gc, upper, gs_dot_s = out[a]
                grad_grams[a] = fused.upper_to_full(upper, k)
            else:
                s, a1, a2, *w = states[a]
                wbuf = w[0] if ctx.kernel != "compiled" else torch.stack(w, dim=1)
                gc, grad_grams[a], gs_dot_s = _eager_backward(
                    grads[a], s, a1, a2, wbuf, _row_coefficients(linv[a], dtype)
                )
            # ∂s/∂‖z‖² = −s/(2‖z‖²) (zero where the anchor norm was clamped)
            grad_sq[a] = -gs_dot_s / (2.0 * z_norm[a] * z_norm[a]) * z_ok[a]
            grad_cross += [g.T for g in gc]
        return (grad_grams.to(ctx.grams_dtype), grad_sq.to(ctx.sq_dtype), None, None, *grad_cross)


def _fused_call(which: str, coef: torch.Tensor, *args):
    """Run the compiled forward/backward kernels of every anchor (one compiled call per pass): a list per anchor
    of the kernel's outputs, or None when compilation failed (:func:`mmib.objectives.projection.fused.call`)."""
    who = "OVA-IB kernel='compiled'"
    if which == "forward":
        xs, z_norm, ridge = args
        return fused.call("scores_forward", xs, coef, z_norm, ridge, who=who)
    gs, states = args
    return fused.call("scores_backward", gs, states, coef, who=who)


def _eager_forward(xs, coef, z_norm, ridge):
    """Blocked eager forward: (s, a1, a2, wbuf) with wbuf (Nt, k, Na)."""
    k = len(xs)
    nt, na = xs[0].shape
    s, a1, a2 = (xs[0].new_empty(nt, na) for _ in range(3))
    wbuf = xs[0].new_empty(nt, k, na)  # (Nt, k, Na): the backward's batched matmul reads it as is
    for r in row_blocks(nt, na, xs[0].device):
        cf = [[c[r] for c in row] for row in coef]
        y = _lower_mix([x[r] for x in xs], cf)
        q1 = _sum_of_squares(y)
        w = _upper_mix(y, cf, out=[wbuf[r, i] for i in range(k)])
        p = torch.addcmul(q1, _sum_of_squares(w), q1.new_tensor(-ridge))  # P = q1 − λ q2
        p_ok = p > EPS2
        p.clamp_min_(EPS2)
        inv = p.sqrt().mul_(z_norm).reciprocal_()  # 1 / (‖z‖ √P)
        torch.mul(q1, inv, out=s[r])
        # ∂s/∂q1 = 1/(‖z‖√P) − s/(2P) and ∂s/∂q2 = λ s/(2P), both zero through a clamped P
        half = (s[r] / p).mul_(0.5).mul_(p_ok)
        torch.sub(inv, half, out=a1[r])
        torch.mul(half, ridge, out=a2[r])
    return s, a1, a2, wbuf


def _eager_backward(grad_s, s, a1, a2, wbuf, coef):
    """Blocked eager backward: (grad_cross list of (Nt, Na), grad_gram (Nt, k, k), gs_dot_s (Na,))."""
    nt, k, na = wbuf.shape
    grad_cross = [wbuf.new_empty(nt, na) for _ in range(k)]
    grad_gram = wbuf.new_empty(nt, k, k)
    gs_dot_s = wbuf.new_zeros(na)
    for r in row_blocks(nt, na, wbuf.device):
        cf = [[c[r] for c in row] for row in coef]
        gs = grad_s[r].contiguous()
        g1 = gs * a1[r]
        g2 = gs * a2[r]
        gs_dot_s.add_((gs * s[r]).sum(0))  # not in place: grad_out may be shared with other inputs
        wb = wbuf[r]
        w = [wb[:, i] for i in range(k)]
        vb, e1b, e2b = (torch.empty_like(wb) for _ in range(3))
        v = _upper_mix(_lower_mix(w, cf), cf, out=[vb[:, i] for i in range(k)])  # v = K⁻¹w
        for i in range(k):
            torch.mul(g1, w[i], out=e1b[:, i])
            torch.mul(g2, w[i], out=e2b[:, i])
            torch.addcmul(e1b[:, i], g2, v[i], out=grad_cross[i][r]).mul_(2.0)  # 2(g1 w + g2 v)
        # ∂L/∂K_t = −(T1 + T2 + T2ᵀ), T1_ij = Σ_a g1 w_i w_j, T2_ij = Σ_a g2 w_i v_j (contractions over anchors)
        t1 = torch.bmm(e1b, wb.mT)
        t2 = torch.bmm(e2b, vb.mT)
        torch.neg(t1.add_(t2).add_(t2.mT), out=grad_gram[r])
    return grad_cross, grad_gram, gs_dot_s


def _row_coefficients(linv: torch.Tensor, dtype: torch.dtype) -> list[list[torch.Tensor]]:
    """coef[i][j] = (L⁻¹)_ij of every candidate as an (Nt, 1) column, to broadcast along (Nt, Na) rows."""
    c = linv.to(dtype).permute(1, 2, 0).contiguous()  # (k, k, Nt)
    return [[c[i, j].unsqueeze(1) for j in range(c.shape[1])] for i in range(c.shape[0])]


def projection_score_from_gram(
    cross: Sequence[torch.Tensor],
    gram: torch.Tensor,
    anchor_sq_norm: torch.Tensor,
    ridge: float = 1e-8,
    kernel: str = "eager",
) -> torch.Tensor:
    """OVA-IB score s = cos(z, p) (Eq. 11) from Gram entries: returns (Na, Nt) in the dtype of ``cross``.

    ``anchor_sq_norm`` is ‖z_a‖² (Na,). Degenerate inputs (zero anchor, zero tuple) give 0, not NaN. The backward
    is hand-written (:class:`_ProjectionScores`); the tests check it against autograd through a float64 loop.
    ``kernel``: ``"eager"`` or ``"compiled"`` (``torch.compile``-fused elementwise algebra; same values).
    """
    return projection_scores_from_gram([list(cross)], gram[None], anchor_sq_norm[None], ridge, kernel)[0]


def projection_scores_from_gram(
    cross: Sequence[Sequence[torch.Tensor]],
    grams: torch.Tensor,
    anchor_sq_norms: torch.Tensor,
    ridge: float = 1e-8,
    kernel: str = "eager",
) -> tuple[torch.Tensor, ...]:
    """:func:`projection_score_from_gram` for A anchors in one call (what :class:`OVAIBLoss` uses per step).

    ``cross[a]``: the k cross matrices (Na, Nt) of anchor a (they may be shared between anchors, e.g. one the
    transpose of another's); ``grams`` (A, Nt, k, k); ``anchor_sq_norms`` (A, Na). Returns A scores (Na, Nt).
    """
    flat = flat_anchor_inputs(cross, grams, anchor_sq_norms, "projection scores")
    check_kernel(kernel)
    if grams.shape[-1] == 1:
        return _abs_cosine_scores(flat, grams, anchor_sq_norms)
    return _ProjectionScores.apply(grams, anchor_sq_norms, float(ridge), kernel, *flat)


def _abs_cosine_scores(cross: Sequence[torch.Tensor], grams: torch.Tensor,
                       anchor_sq_norms: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The projection score for tuples of one embedding (M = 2): s = |c| / (‖z‖ ‖t‖) = |cos(z, t)|, exactly what
    the general formula gives for every ridge λ (K = ‖t‖² + λ, q1 − λ q2 = c²‖t‖²/K², so s = (c²/K)/(‖z‖|c|‖t‖/K)).
    A few elementwise passes with autograd instead of the Cholesky algebra; zero anchors or tuples score 0."""
    dtype = cross[0].dtype
    out = []
    for a, c in enumerate(cross):
        rz = anchor_sq_norms[a].to(dtype).clamp_min(EPS2).rsqrt()  # (Na,)
        rt = grams[a, :, 0, 0].to(dtype).clamp_min(EPS2).rsqrt()  # (Nt,)
        out.append(c.abs() * rz[:, None] * rt[None, :])
    return tuple(out)


def projection_score(
    anchors: torch.Tensor, tuples: Sequence[torch.Tensor], ridge: float = 1e-8, kernel: str = "eager"
) -> torch.Tensor:
    """Projection score of every anchor row (Na, d) against every tuple row (tuples: k tensors (Nt, d)) → (Na, Nt).

    The embeddings are used as given (the objective L2-normalizes them first).
    """
    cross = [anchors @ t.T for t in tuples]
    return projection_score_from_gram(cross, tuple_gram(tuples), (anchors * anchors).sum(-1), ridge, kernel)
