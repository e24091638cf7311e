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
Function :class:`_ProjectionScores`.

Properties (checked by the tests): s ∈ [0, 1]; s = 1 when z lies in span(A), 0 when orthogonal to it; s is
**sign-blind** (z and −z score the same) and for M = 2 equals |cos(z^(1), z^(2))|.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives import _fused
from mmib.objectives.base import (
    LossOutput,
    Temperature,
    check_embeddings,
    check_queries,
    contrastive_ce,
    gather_candidates,
    l2_normalize,
)

#: dtype of the (M−1)×(M−1) algebra of the projection score
SMALL_ALGEBRA_DTYPE = torch.float64
#: squared-norm floor of the score (zero anchors, zero projections): one value for both kernels
_EPS2 = _fused.EPS2


def _small_dtype(t: torch.Tensor) -> torch.dtype:
    return SMALL_ALGEBRA_DTYPE if t.dtype != torch.float64 else torch.float64


def tuple_gram(tuple_embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-sample Gram matrices K_n = A_nᵀ A_n of a tuple of k embeddings (each (N, d)) → (N, k, k), in float64.

    Computed in float64 (O(N k² d), negligible) so that it is positive semi-definite to float64 precision even for
    nearly collinear tuples, which a float32 Gram matrix is not.
    """
    return rowwise_gram(tuple_embeddings)


def rowwise_gram(embeddings: Sequence[torch.Tensor], index: Sequence[int] | None = None) -> torch.Tensor:
    """Per-row Gram matrices of all M embeddings (each (N, d)) → (N, M, M) in float64; ``index`` selects a sub-tuple.

    The forward is one float64 batched matmul; the backward, ∂L/∂A_n = (Ḡ_n + Ḡ_nᵀ) A_n, runs in the embeddings'
    dtype (:class:`_RowwiseGram`).
    """
    g = _RowwiseGram.apply(*embeddings)
    if index is not None:
        idx = torch.as_tensor(list(index), device=g.device)
        g = g[:, idx][:, :, idx]
    return g


class _RowwiseGram(torch.autograd.Function):
    """G_n = A_n A_nᵀ (A_n = the n-th rows of the M embeddings) in float64, with a backward in the input dtype."""

    @staticmethod
    def forward(ctx, *embeddings):  # noqa: D102
        a = torch.stack(list(embeddings), dim=1)  # (N, M, d)
        a64 = a.to(_small_dtype(a))
        ctx.save_for_backward(a)
        return a64 @ a64.mT

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_g):  # noqa: D102
        (a,) = ctx.saved_tensors
        grad_a = (grad_g + grad_g.mT).to(a.dtype) @ a
        return tuple(grad_a.unbind(1))


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


#: elements per block of the (Nt, Na) arrays that :class:`_ProjectionScores` processes at a time: the ~12 block
#: arrays of one step stay in a core's L2 cache instead of streaming 3k full N×N arrays through memory per operation
BLOCK_ELEMENTS = 32768


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
    (:mod:`mmib.objectives._fused`: the same algebra fused by ``torch.compile`` into one loop per pass). If
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
        z_ok = sq > _EPS2
        z_norm = sq.clamp_min(_EPS2).sqrt()  # (A, Na)
        out = None
        if kernel == "compiled":
            xs = [x for a in range(n_anchor) for x in candidate_major(a)]
            out = _fused_call("forward", _coefficient_columns(linv, dtype), xs, z_norm.unsqueeze(1), ridge)
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
            out = _fused_call("backward", _coefficient_columns(linv, dtype), gs, states)
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
                grad_grams[a] = _fused.upper_to_full(upper, k)
            else:
                s, a1, a2, *w = states[a]
                wbuf = w[0] if ctx.kernel == "eager" else torch.stack(w, dim=1)
                gc, grad_grams[a], gs_dot_s = _eager_backward(
                    grads[a], s, a1, a2, wbuf, _row_coefficients(linv[a], dtype)
                )
            # ∂s/∂‖z‖² = −s/(2‖z‖²) (zero where the anchor norm was clamped)
            grad_sq[a] = -gs_dot_s / (2.0 * z_norm[a] * z_norm[a]) * z_ok[a]
            grad_cross += [g.T for g in gc]
        return (grad_grams.to(ctx.grams_dtype), grad_sq.to(ctx.sq_dtype), None, None, *grad_cross)


#: the kernels of the projection score's elementwise algebra (:class:`_ProjectionScores`)
KERNEL_CHOICES = ("eager", "compiled")


def _fused_call(which: str, coef: torch.Tensor, *args):
    """Run the compiled forward/backward kernels of every anchor (one compiled call per pass): a list per anchor
    of the kernel's outputs, or None when compilation failed (:func:`mmib.objectives._fused.call`)."""
    who = "OVA-IB kernel='compiled'"
    if which == "forward":
        xs, z_norm, ridge = args
        return _fused.call("scores_forward", xs, coef, z_norm, ridge, who=who)
    gs, states = args
    return _fused.call("scores_backward", gs, states, coef, who=who)


def _eager_forward(xs, coef, z_norm, ridge):
    """Blocked eager forward: (s, a1, a2, wbuf) with wbuf (Nt, k, Na)."""
    k = len(xs)
    nt, na = xs[0].shape
    s, a1, a2 = (xs[0].new_empty(nt, na) for _ in range(3))
    wbuf = xs[0].new_empty(nt, k, na)  # (Nt, k, Na): the backward's batched matmul reads it as is
    for r in _blocks(nt, na, xs[0].device):
        cf = [[c[r] for c in row] for row in coef]
        y = _lower_mix([x[r] for x in xs], cf)
        q1 = _sum_of_squares(y)
        w = _upper_mix(y, cf, out=[wbuf[r, i] for i in range(k)])
        p = torch.addcmul(q1, _sum_of_squares(w), q1.new_tensor(-ridge))  # P = q1 − λ q2
        p_ok = p > _EPS2
        p.clamp_min_(_EPS2)
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
    for r in _blocks(nt, na, wbuf.device):
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


def _blocks(nt: int, na: int, device: torch.device | None = None) -> list[slice]:
    """Row blocks of an (nt, na) array of about :data:`BLOCK_ELEMENTS` elements each on the CPU (cache blocking);
    one block elsewhere (on a GPU each block is a round of kernel launches, and there is no cache to fit)."""
    if device is not None and device.type != "cpu":
        return [slice(0, nt)]
    step = max(1, BLOCK_ELEMENTS // max(na, 1))
    return [slice(r, min(r + step, nt)) for r in range(0, nt, step)]


def _coefficient_columns(linv: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(L⁻¹)_ij of every anchor and candidate as one (A, k, k, Nt, 1) tensor (the compiled kernels index it as
    coef[a][i][j])."""
    return linv.to(dtype).permute(0, 2, 3, 1).unsqueeze(-1).contiguous()


def _row_coefficients(linv: torch.Tensor, dtype: torch.dtype) -> list[list[torch.Tensor]]:
    """coef[i][j] = (L⁻¹)_ij of every candidate as an (Nt, 1) column, to broadcast along (Nt, Na) rows."""
    c = linv.to(dtype).permute(1, 2, 0).contiguous()  # (k, k, Nt)
    return [[c[i, j].unsqueeze(1) for j in range(c.shape[1])] for i in range(c.shape[0])]


def check_kernel(kernel: str) -> str:
    """Validate the name of a projection-score kernel (:data:`KERNEL_CHOICES`)."""
    if kernel not in KERNEL_CHOICES:
        raise ValueError(f"kernel must be one of {KERNEL_CHOICES}, got {kernel!r}")
    return kernel


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


def factor_tuple_grams(grams: torch.Tensor, ridge: float, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Cholesky factor L of K = grams + ridge·I (float64) and its inverse L⁻¹ (lower), both (..., k, k).

    For k ≤ :data:`SMALL_FACTOR_MAX` on the CPU the factorization and the inversion are written out entry by entry,
    each step one vectorized operation over the whole batch (:func:`_small_cholesky`): 2–3× faster than LAPACK's
    per-matrix calls (``torch.linalg.cholesky_ex`` + ``solve_triangular``) there; larger k use LAPACK.

    Raises:
        ValueError: (naming ``what``) if a K is not positive definite (NaN or inf embeddings).
    """
    k = grams.shape[-1]
    work = _small_dtype(grams)
    eye = torch.eye(k, dtype=work, device=grams.device)
    kmat = grams.to(work) + ridge * eye
    if k <= SMALL_FACTOR_MAX and grams.device.type == "cpu":
        chol, linv, ok = _small_cholesky(kmat)
    else:
        chol, info = torch.linalg.cholesky_ex(kmat)
        ok = bool((info == 0).all())
        linv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False) if ok else None
    if not ok:
        raise ValueError(f"{what}: the tuple Gram matrix is not positive definite (NaN or inf embeddings?)")
    return chol, linv


#: the largest tuple size k whose Cholesky factor :func:`factor_tuple_grams` computes entry by entry (measured:
#: 2–3× faster than LAPACK at k = 2, 3; even at k = 5, where assembling the (.., k, k) matrices costs what it saves)
SMALL_FACTOR_MAX = 3


def _small_cholesky(kmat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(L, L⁻¹, ok) of a batch of small symmetric matrices (..., k, k): K = L Lᵀ, L lower-triangular with a positive
    diagonal; ``ok`` is False if a pivot is not positive (K not positive definite, NaN or inf)."""
    el, inv, ok = _small_cholesky_entries(kmat)
    batch = kmat.shape[:-2]
    return _entries_to_matrices(el, batch), _entries_to_matrices(inv, batch), ok


def _small_cholesky_entries(kmat: torch.Tensor) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]], bool]:
    """:func:`_small_cholesky` as entries: ``L[i][j]`` and ``L⁻¹[i][j]`` (j ≤ i; the lists hold only those) are
    contiguous vectors over the flattened batch. The matrices are transposed to (k, k, batch) once, so that every
    step is one elementwise operation over the whole batch."""
    k = kmat.shape[-1]
    kt = kmat.reshape(-1, k, k).permute(1, 2, 0).contiguous()  # (k, k, B)
    el: list[list[torch.Tensor]] = [[] for _ in range(k)]
    ok = True
    for j in range(k):
        piv = kt[j, j].clone()
        for p in range(j):
            piv.addcmul_(el[j][p], el[j][p], value=-1.0)
        ok = ok and bool(piv.gt(0).all())  # False for NaN pivots too
        ljj = piv.clamp_min_(1e-300).sqrt_()
        el[j].append(ljj)
        rinv = ljj.reciprocal()
        for i in range(j + 1, k):
            acc = kt[i, j].clone()
            for p in range(j):
                acc.addcmul_(el[i][p], el[j][p], value=-1.0)
            el[i].append(acc.mul_(rinv))
    inv: list[list[torch.Tensor]] = [[] for _ in range(k)]
    for i in range(k):  # forward substitution: L⁻¹[i][j] = −(Σ_{j≤p<i} L[i][p] L⁻¹[p][j]) / L[i][i]
        rdiag = el[i][i].reciprocal()
        for j in range(i):
            acc = el[i][j] * inv[j][j]
            for p in range(j + 1, i):
                acc.addcmul_(el[i][p], inv[p][j])
            inv[i].append(acc.mul_(rdiag).neg_())
        inv[i].append(rdiag)
    return el, inv, ok


def _entries_to_matrices(entries: list[list[torch.Tensor]], batch: torch.Size) -> torch.Tensor:
    """Lower-triangular entries (vectors over the flattened batch) → (*batch, k, k)."""
    k = len(entries)
    zero = torch.zeros_like(entries[0][0])
    flat = torch.stack([entries[i][j] if j <= i else zero for i in range(k) for j in range(k)])  # (k², B)
    return flat.T.contiguous().reshape(*batch, k, k)


def flat_anchor_inputs(
    cross: Sequence[Sequence[torch.Tensor]], grams: torch.Tensor, anchor_sq_norms: torch.Tensor, what: str
) -> list[torch.Tensor]:
    """Check the per-anchor inputs of a multi-anchor tuple measure and flatten ``cross`` anchor-major.

    Raises:
        ValueError: (naming ``what``) unless grams is (A, Nt, k, k), the norms (A, Na) and every anchor has k
            cross matrices.
    """
    n_anchor = len(cross)
    if grams.dim() != 4 or grams.shape[0] != n_anchor or anchor_sq_norms.shape[0] != n_anchor:
        raise ValueError(
            f"{what}: {n_anchor} anchors need grams (A, Nt, k, k) and norms (A, Na), got "
            f"{tuple(grams.shape)} and {tuple(anchor_sq_norms.shape)}"
        )
    k = grams.shape[-1]
    if any(len(c) != k for c in cross):
        raise ValueError(f"{what}: every anchor needs k = {k} cross matrices")
    return [c for per in cross for c in per]


def one_vs_rest_inputs(
    zs: Sequence[torch.Tensor], cands: Sequence[torch.Tensor], anchors: Sequence[int]
) -> tuple[list[list[torch.Tensor]], torch.Tensor, torch.Tensor]:
    """The inputs of :func:`projection_scores_from_gram` / GRAM's volumes for the given anchor modalities.

    ``zs``: the local embeddings (n, d) of the M modalities; ``cands``: the candidates (N_all, d) (``zs`` itself
    without gathering). Each pair's cross matrix is one matmul; when the candidates are the local embeddings it is
    shared by the pair's two anchors (one the transpose of the other: the M(M−1)/2 matmuls of pairwise CLIP). The
    tuple Gram matrices are sub-blocks of one per-row Gram matrix of all candidates.

    Returns:
        ``(cross, grams, sq_norms)``: per anchor its k = M−1 cross matrices (n, N_all), grams (A, N_all, k, k) and
        the anchors' squared norms (A, n).
    """
    m = len(zs)
    others = [[b for b in range(m) if b != a] for a in anchors]
    cross: dict[tuple[int, int], torch.Tensor] = {}
    for a, oth in zip(anchors, others):
        for b in oth:
            if (a, b) not in cross:
                cross[(a, b)] = zs[a] @ cands[b].T
                if cands[b] is zs[b] and cands[a] is zs[a]:
                    cross[(b, a)] = cross[(a, b)].T
    full_gram = rowwise_gram(cands)  # (N_all, M, M)
    idx = torch.as_tensor(others, device=full_gram.device)  # (A, M−1)
    grams = full_gram[:, idx[:, :, None], idx[:, None, :]].transpose(0, 1)  # (A, N_all, M−1, M−1)
    sq_norms = torch.stack([(zs[a] * zs[a]).sum(-1) for a in anchors])
    return [[cross[(a, b)] for b in oth] for a, oth in zip(anchors, others)], grams, sq_norms


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
        rz = anchor_sq_norms[a].to(dtype).clamp_min(_EPS2).rsqrt()  # (Na,)
        rt = grams[a, :, 0, 0].to(dtype).clamp_min(_EPS2).rsqrt()  # (Nt,)
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


def _inverse_factor_entries(kmat: torch.Tensor, what: str) -> tuple[list[list[torch.Tensor]], torch.Tensor,
                                                                     torch.Tensor]:
    """Entries of L⁻¹ (K = L Lᵀ, float64) as vectors over the flattened batch (``inv[i][j]``, j ≤ i), K⁻¹ as
    (..., k, k) matrices and det K (flattened batch). Entry by entry (:func:`_small_cholesky_entries`) up to
    k = 8, LAPACK above.

    Raises:
        ValueError: (naming ``what``) if a K is not positive definite (NaN or inf embeddings).
    """
    k = kmat.shape[-1]
    if k <= 8 and kmat.device.type == "cpu":
        el, inv, ok = _small_cholesky_entries(kmat)
        if not ok:
            raise ValueError(f"{what}: the tuple Gram matrix is not positive definite (NaN or inf embeddings?)")
        linv = _entries_to_matrices(inv, kmat.shape[:-2])
        diag = torch.stack([el[j][j] for j in range(k)], 1)
    else:
        eye = torch.eye(k, dtype=kmat.dtype, device=kmat.device)
        chol, info = torch.linalg.cholesky_ex(kmat)
        if bool((info > 0).any()):
            raise ValueError(f"{what}: the tuple Gram matrix is not positive definite (NaN or inf embeddings?)")
        linv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
        flat = linv.reshape(-1, k, k)
        inv = [[flat[:, i, j].contiguous() for j in range(i + 1)] for i in range(k)]
        diag = torch.diagonal(chol, dim1=-2, dim2=-1).reshape(-1, k)
    return inv, linv.mT @ linv, diag.prod(1) ** 2


def _pair_cross(zs: Sequence[torch.Tensor]) -> torch.Tensor:
    """(M, M−1, N, N) cross entries, anchor-major: ``cross[a, i] = Z_a Z_bᵀ`` for b the i-th of the other
    modalities. One matmul per pair of modalities (pairwise CLIP's), its transpose copied for the other anchor."""
    m, n = len(zs), zs[0].shape[0]
    slots = _anchor_slots(m)
    cross = zs[0].new_empty(m, m - 1, n, n)
    with _pass("gram matmuls"):
        for a in range(m):
            for b in range(a + 1, m):
                torch.mm(zs[a], zs[b].T, out=cross[a, slots[a][b]])
    with _pass("transposed copies"):
        for a in range(m):
            for b in range(a + 1, m):
                cross[b, slots[b][a]].copy_(cross[a, slots[a][b]].T)
    return cross


def _tuple_factors(zs: Sequence[torch.Tensor], ridge: float, what: str):
    """``(zstack (N, M, d), full (N, M, M) per-row Gram matrices in float64, inv, K⁻¹ (M, N, k, k), det K (M·N,))``
    for the M one-vs-rest tuples: K = (Gram of the other modalities) + ridge·I per anchor and candidate; ``inv``
    the entries of L⁻¹ as vectors over (anchor, candidate) (:func:`_inverse_factor_entries`)."""
    m = len(zs)
    zstack = torch.stack(zs, 1)  # (N, M, d)
    z64 = zstack.to(_small_dtype(zstack))
    full = z64 @ z64.mT
    idx = torch.as_tensor(_others(m), device=full.device)  # (M, k)
    eye = torch.eye(m - 1, dtype=full.dtype, device=full.device)
    kmat = full[:, idx[:, :, None], idx[:, None, :]].transpose(0, 1) + ridge * eye  # (M, N, k, k)
    inv, kinv, det = _inverse_factor_entries(kmat, what)
    return zstack, full, inv, kinv, det


def _pair_backward(cross, zs, zstack, cx, cg, grad_k, grad_sq, g_rows=None) -> list[torch.Tensor]:
    """Gradients of the M embeddings from a fused one-vs-rest pass: ``cross[a, i]`` holds ∂L_a/∂(cross entries)
    per unit of ``cx[a]``; ``grad_k`` (M, N, k, k) ∂L_a/∂K and ``grad_sq`` (M, N) ∂L_a/∂‖z_a‖² per unit of ``cg[a]``;
    ``g_rows`` (M, M): a gradient w.r.t. every row's Gram matrix (added to each row)."""
    m, n = cross.shape[0], cross.shape[2]
    slots = _anchor_slots(m)
    grads = [torch.zeros_like(z) for z in zs]
    for a in range(m):
        for b in range(a + 1, m):  # ∂L/∂(Z_a Z_bᵀ) from anchor a and (transposed) from anchor b
            with _pass("backward: sum of the two anchors' gradients"):  # a transposed copy, then contiguous
                dc = cross[b, slots[b][a]].T.contiguous().mul_(cx[b]).add_(cross[a, slots[a][b]], alpha=cx[a])
            with _pass("backward: gram matmuls"):
                grads[a].addmm_(dc, zs[b])
                grads[b].addmm_(dc.T, zs[a])
    with _pass("backward: tuple Gram matrices"):
        k = m - 1
        # ∂L/∂(per-row Gram matrices) (N, M·M): every anchor's ∂/∂K and ∂/∂‖z_a‖² scattered in one index_add_
        others = _others(m)
        flat = [others[a][i] * m + others[a][j] for a in range(m) for i in range(k) for j in range(k)]
        flat += [a * m + a for a in range(m)]
        src = torch.cat([(grad_k * cg[:, None, None, None]).permute(1, 0, 2, 3).reshape(n, m * k * k),
                         (grad_sq * cg[:, None]).T], 1)
        gfull = grad_k.new_zeros(n, m * m).index_add_(1, torch.as_tensor(flat, device=src.device), src)
        gfull = gfull.view(n, m, m)
        if g_rows is not None:
            gfull += g_rows
        gz = (gfull + gfull.mT).to(zstack.dtype) @ zstack  # (N, M, d)
    return [g.add_(gz[:, a]) for a, g in enumerate(grads)]


class _OneVsAllSufficiency(torch.autograd.Function):
    """The sufficiency term of every anchor, L^(a) = mean_n CE(scale · s_a[n, :], n) for a = 1..M, from the M unit
    embeddings in one pass over the N×N score blocks, with the gradient computed in that same pass.

    The default (``kernel="eager"``) path of :class:`OVAIBLoss` when the candidates are the local embeddings. Why it
    is faster than :class:`_ProjectionScores` followed by one cross-entropy per anchor:

    - **one sweep**: the score, the row softmax of the cross-entropy and every factor of the gradient are computed
      block by block of anchor rows (all M anchors at once, :data:`BLOCK_ELEMENTS` elements per operation), while
      the block is in cache; the loss of anchor a is a scalar, so its gradient is the one computed here times the
      incoming scalar, and nothing of the forward needs to be read again in the backward;
    - **anchor-major layout**: the arrays are (anchor rows, candidates), the layout of the Gram matmuls
      Z_a Z_bᵀ (one per pair, its transpose copied for the other anchor) and of the row softmax, so no transposed
      copies are made for the score or the cross-entropy; the gradient w.r.t. the cross entries overwrites them;
    - **closed forms**: with g = ∂L/∂s, ∂s/∂q1 = 1/(‖z‖√P) − s/(2P), ∂s/∂q2 = λ s/(2P) (P = q1 − λ q2 clamped; a
      clamped P passes no gradient through its own factors, as ``clamp_min``): ∂L/∂c = 2(g₁ w + g₂ v), v = K⁻¹w,
      and ∂L/∂K = −(S₁ + S₂K⁻¹ + K⁻¹S₂) with S_· = Σ_anchors g_· w wᵀ (wvᵀ = wwᵀK⁻¹, so v enters no contraction);
      ∂L/∂‖z‖² = −Σ_t g s / (2‖z‖²); ∂L/∂scale = mean_n Σ_t (softmax − onehot) s;
    - the Cholesky factors of the M·N tuple Gram matrices entry by entry (:func:`_small_cholesky_entries`), whose
      vectors over candidates are the coefficient rows of the elementwise algebra as they are.

    Inputs: ``scale`` (0-d tensor, 1/τ; its gradient is returned), ``ridge``, ``positive_in_denominator`` and the
    M unit embeddings (N, d). Output: (M,) losses.
    """

    @staticmethod
    def forward(ctx, scale, ridge, positive_in_denominator, kernel, *zs):  # noqa: D102
        m, k = len(zs), len(zs) - 1
        n = zs[0].shape[0]
        dtype, device = zs[0].dtype, zs[0].device
        need_grad = any(ctx.needs_input_grad)
        lam = float(ridge)
        beta = float(scale)
        cross = _pair_cross(zs)
        pf = _pass("factor")
        pf.__enter__()
        zstack, full, inv, kinv, _ = _tuple_factors(zs, lam, "OVA-IB projection score")
        coef = [[inv[i][j].to(dtype).view(m, 1, n) for j in range(i + 1)] for i in range(k)]
        sq = torch.diagonal(full, dim1=1, dim2=2).T  # (M, N) ‖z_a‖², float64
        z_ok = sq > _EPS2
        sq_c = sq.clamp_min(_EPS2)
        zn_inv = sq_c.rsqrt().to(dtype)
        loss_rows = zs[0].new_empty(m, n)
        rowdot = zs[0].new_empty(m, n)
        blocks = _blocks(n, m * n, device)
        pairs = [(i, j) for j in range(k) for i in range(j + 1)]  # the upper triangle of a k×k matrix
        # Σ over anchor rows of g₁ w_i w_j and gh w_i w_j, accumulated elementwise over the blocks, reduced at the end
        acc = zs[0].new_zeros(m, 2, len(pairs), blocks[0].stop, n) if need_grad else None
        pf.__exit__(None, None, None)
        if kernel == "compiled" and need_grad:
            coef_t = torch.zeros(m, k, k, 1, n, dtype=dtype, device=device)
            for i in range(k):
                for j in range(i + 1):
                    coef_t[:, i, j] = coef[i][j]
            beta_t = torch.tensor(beta, dtype=dtype, device=device)
            for r in blocks:
                with _pass("compiled block"):
                    out = _fused.call("sufficiency_block", cross[:, :, r], coef_t, zn_inv[:, r, None], beta_t,
                                      torch.tensor(r.start, device=device), lam, bool(positive_in_denominator),
                                      who="OVA-IB kernel='compiled'")
                if out is None:  # compilation failed (warned once): the eager loop below does every block
                    break
                loss_rows[:, r], rowdot[:, r] = out[0], out[1]
                cross[:, :, r] = out[2]
                acc[:, :, :, 0] += out[3]
            else:
                blocks = []
        for r in blocks:
            r0, rb = r.start, r.stop - r.start
            x = cross[:, :, r]  # (M, k, rb, N)
            xs = x.unbind(1)
            ps = _pass("score")
            ps.__enter__()
            wb, ws = x, xs  # y and w in place of the cross entries (their block is read once)
            _lower_inplace(xs, coef)  # y = L⁻¹c
            q1 = ws[0] * ws[0]
            for i in range(1, k):
                q1.addcmul_(ws[i], ws[i])
            _upper_inplace(ws, coef)  # w = L⁻ᵀy = K⁻¹c
            p = torch.addcmul(q1, ws[0], ws[0], value=-lam)  # P = ‖p‖² = q1 − λ‖w‖²
            for i in range(1, k):
                p.addcmul_(ws[i], ws[i], value=-lam)
            clamped = bool(p.min() <= _EPS2)  # degenerate pairs (zero tuple or anchor): clamp, mask their factors
            if clamped:
                p_ok = p > _EPS2
                p.clamp_min_(_EPS2)
            inv_ = torch.rsqrt(p).mul_(zn_inv[:, r, None])  # 1 / (‖z‖ √P)
            s = q1.mul_(inv_)
            ps.__exit__(None, None, None)
            ps = _pass("cross-entropy")
            ps.__enter__()
            logits = s * beta
            if positive_in_denominator:
                lp = torch.log_softmax(logits, -1)
                loss_rows[:, r] = -lp.diagonal(r0, 1, 2)
                prob = lp.exp_()
            else:
                diag = logits.diagonal(r0, 1, 2)
                pos = diag.clone()
                diag.fill_(float("-inf"))
                lse = torch.logsumexp(logits, -1, keepdim=True)
                loss_rows[:, r] = lse.squeeze(-1) - pos
                prob = logits.sub_(lse).exp_()
            ps.__exit__(None, None, None)
            if not need_grad:
                continue
            ps = _pass("gradient factors")
            ps.__enter__()
            g = prob
            g.diagonal(r0, 1, 2).sub_(1.0)  # N · ∂CE/∂logits = softmax − onehot
            rowdot[:, r] = (g * s).sum(-1)
            gh = torch.div(s, p)
            if clamped:
                gh.mul_(p_ok)
            gh.mul_(g)  # g s/P (0 where P was clamped)
            g1 = g.mul_(inv_).add_(gh, alpha=-0.5)  # g ∂s/∂q1;  g ∂s/∂q2 = (λ/2) gh
            ps.__exit__(None, None, None)
            with _pass("contractions over anchors"):
                e = wb.new_empty(m, 2, *wb.shape[1:])  # (M, 2, k, rb, N): g₁ w and gh w
                torch.mul(wb, g1[:, None], out=e[:, 0])
                torch.mul(wb, gh[:, None], out=e[:, 1])
                es = e.unbind(2)
                for p_, (i, j) in enumerate(pairs):
                    acc[:, :, p_, :rb].addcmul_(es[i], wb[:, None, j])
            with _pass("gradient of the cross entries"):
                vb = torch.empty_like(wb)
                vs = vb.unbind(1)
                _lower_into(ws, coef, vs)
                _upper_inplace(vs, coef)  # v = K⁻¹w
                e1 = e[:, 0].unbind(1)
                for i in range(k):  # ∂/∂c_i = 2(g₁ w_i + (λ/2) gh v_i): into the cross block (no longer needed)
                    torch.addcmul(e1[i], vs[i], gh, value=0.5 * lam, out=xs[i])
        loss = loss_rows.mean(1)
        with _pass("minimality"):
            # L_M^(a) = C Σ_n ‖z_a − T/M‖² (T = Σ_b z_b, C = (M/(M−1))²/N) from the per-row Gram matrices G (float64):
            # ‖z_a − T/M‖² = G_aa − (2/M) Σ_b G_ab + (1/M²) Σ_bc G_bc
            c_min = (m / (m - 1)) ** 2 / n
            mini = (torch.diagonal(full, dim1=1, dim2=2) - (2.0 / m) * full.sum(2)
                    + full.sum((1, 2))[:, None] / (m * m)).sum(0) * c_min
            mini = mini.to(dtype)
        if need_grad:
            with _pass("gradient of the tuple Gram matrices"):
                sym = [pairs.index((min(i, j), max(i, j))) for i in range(k) for j in range(k)]  # mirror triangles
                s12 = acc.sum(3)[:, :, sym].to(kinv.dtype).permute(0, 3, 1, 2).reshape(m, n, 2, k, k)
                s1, s2 = s12[:, :, 0], (0.5 * lam) * s12[:, :, 1]
                s2k = s2 @ kinv
                grad_k = -(s1 + s2k + s2k.mT)  # (M, N, k, k): ∂L_a/∂K up to the factor scale/N
                grad_sq = -rowdot.to(sq.dtype) / (2.0 * sq_c) * z_ok  # (M, N): ∂L_a/∂‖z_a‖², same factor
                grad_scale = rowdot.sum(1) / n  # (M,): ∂L_a/∂scale
                ctx.save_for_backward(cross, grad_k, grad_sq, grad_scale, zstack, *zs)
        ctx.beta, ctx.n = beta, n
        return loss, mini

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss, grad_mini):  # noqa: D102
        cross, grad_k, grad_sq, grad_scale, zstack, *zs = ctx.saved_tensors
        c = grad_loss.to(grad_k.dtype) * (ctx.beta / ctx.n)  # ∂/∂(the per-anchor factor) of every gradient part
        # minimality: Σ_a g_a ∂L_M^(a)/∂G_bc = C (H diag(g) H)_bc with H = I − 11ᵀ/M, the same for every row
        m = zstack.shape[1]
        h = torch.eye(m, dtype=grad_k.dtype, device=grad_k.device) - 1.0 / m
        g_rows = (h * grad_mini.to(grad_k.dtype)) @ h * ((m / (m - 1)) ** 2 / ctx.n)
        grads = _pair_backward(cross, zs, zstack, (2.0 * c).tolist(), c, grad_k, grad_sq, g_rows)
        g_scale = None
        if ctx.needs_input_grad[0]:
            g_scale = (grad_loss.to(grad_scale.dtype) * grad_scale).sum()
        return g_scale, None, None, None, *grads


#: label the passes of :class:`_OneVsAllSufficiency` for ``torch.profiler`` (the pass-by-pass profile of
#: ``benchmarks/bench_alignment_objectives.py --profile``); off by default (no cost)
PROFILE_PASSES = False


def _pass(name: str):
    return torch.profiler.record_function(f"ova_ib: {name}") if PROFILE_PASSES else contextlib.nullcontext()


def _others(m: int) -> list[list[int]]:
    return [[b for b in range(m) if b != a] for a in range(m)]


def _anchor_slots(m: int) -> list[dict[int, int]]:
    """slots[a][b]: the index of modality b among anchor a's tuple (the other modalities in order)."""
    return [{b: i for i, b in enumerate(o)} for o in _others(m)]


def _lower_into(xs: Sequence[torch.Tensor], coef: list[list[torch.Tensor]], out: Sequence[torch.Tensor]) -> None:
    """out[i] = Σ_{j≤i} coef[i][j] · xs[j] (arrays (A, rows, N); coef[i][j]: (A, 1, N))."""
    for i in range(len(xs)):
        oi = torch.mul(xs[0], coef[i][0], out=out[i])
        for j in range(1, i + 1):
            oi.addcmul_(xs[j], coef[i][j])


def _lower_inplace(xs: Sequence[torch.Tensor], coef: list[list[torch.Tensor]]) -> None:
    """xs[i] ← Σ_{j≤i} coef[i][j] · xs[j] in place (descending i: xs[i] is read by no earlier row)."""
    for i in reversed(range(len(xs))):
        xi = xs[i].mul_(coef[i][i])
        for j in range(i):
            xi.addcmul_(xs[j], coef[i][j])


def _upper_inplace(ys: Sequence[torch.Tensor], coef: list[list[torch.Tensor]]) -> None:
    """ys[i] ← Σ_{j≥i} coef[j][i] · ys[j] in place (ascending i: ys[i] is read by no later row)."""
    k = len(ys)
    for i in range(k):
        yi = ys[i].mul_(coef[i][i])
        for j in range(i + 1, k):
            yi.addcmul_(ys[j], coef[j][i])


def one_vs_all_terms(
    zs: Sequence[torch.Tensor], scale: torch.Tensor, ridge: float = 1e-8, positive_in_denominator: bool = True,
    kernel: str = "eager",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The M per-anchor sufficiency terms of OVA-IB (Eq. 12 with the projection score of Eq. 11) and the M
    per-modality minimality terms L_M^(m) (Eq. 19) for M ≥ 3 unit embeddings (N, d) scored against each other
    (targets on the diagonal): two (M,) tensors from one fused pass (:class:`_OneVsAllSufficiency`). ``scale`` =
    1/τ (a tensor; learned temperatures get their gradient)."""
    if len(zs) < 3:
        raise ValueError(f"one_vs_all_terms needs M >= 3 modalities (M = 2 is the |cos| path), got {len(zs)}")
    if not isinstance(scale, torch.Tensor):
        scale = torch.tensor(float(scale), dtype=zs[0].dtype, device=zs[0].device)
    return _OneVsAllSufficiency.apply(scale, float(ridge), bool(positive_in_denominator), check_kernel(kernel), *zs)


def one_vs_all_sufficiency(
    zs: Sequence[torch.Tensor], scale: torch.Tensor, ridge: float = 1e-8, positive_in_denominator: bool = True,
    kernel: str = "eager",
) -> torch.Tensor:
    """The (M,) sufficiency terms of :func:`one_vs_all_terms`."""
    return one_vs_all_terms(zs, scale, ridge, positive_in_denominator, kernel)[0]


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
        kernel: ``"eager"`` (default) or ``"compiled"``: each block of the fused pass (:class:`_OneVsAllSufficiency`)
            as one ``torch.compile``d function (needs a C++ compiler; the first step per M compiles, 5–20 s here;
            steps measured 1.12–1.33× faster than eager by wall clock, 1.14–1.25× by CPU time, at M = 3, 4, 6 and
            N = 256, 1024 in docs/results/alignment/bench-objectives.txt (2026-12-07), about equal at M = 2; falls
            back to eager with a warning when compilation fails).

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
