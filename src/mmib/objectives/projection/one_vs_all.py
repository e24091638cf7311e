"""OVA-IB's fused one-vs-all sweep: the sufficiency term of every anchor and the minimality terms, with their
gradient, in one pass over blocks of anchor rows (:class:`_OneVsAllSufficiency`, :func:`one_vs_all_terms`; the
default path of :class:`mmib.objectives.ova_ib.OVAIBLoss`; docs/methods/ova_ib.md, "Performance").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmib.objectives.projection import fused, numba_kernels
from mmib.objectives.projection.fused import EPS2
from mmib.objectives.projection.layout import check_kernel, profile_pass, row_blocks, uses_inductor
from mmib.objectives.projection.pairs import (
    lower_inplace,
    pair_backward,
    pair_cross,
    tuple_factors,
    tuple_factors_numba,
    upper_inplace,
)


class _OneVsAllSufficiency(torch.autograd.Function):
    """The sufficiency term of every anchor, L^(a) = mean_n CE(scale · s_a[n, :], n) for a = 1..M, from the M unit
    embeddings in one pass over the N×N score blocks, with the gradient computed in that same pass.

    The default (``kernel="eager"``) path of :class:`OVAIBLoss` when the candidates are the local embeddings; there,
    on the CPU where numba imports, the block loop below is one numba kernel over every anchor row
    (:func:`numba_kernels.ova_sweep`: the same outputs, each row's algebra in two passes over its candidates);
    ``kernel="torch"`` runs the loop of PyTorch operations. Why it is faster than :class:`_ProjectionScores`
    followed by one cross-entropy per anchor:

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
        cross = pair_cross(zs)
        pf = profile_pass("factor")
        pf.__enter__()
        # the numba kernels (kernel "eager" on the CPU where numba imports): factors and sweep, numba_kernels
        fast = numba_kernels.use_numba(kernel, zs[0])
        if fast:
            zstack, full, linv, kin, kinv, _ = tuple_factors_numba(zs, lam, "OVA-IB projection score")
        else:
            zstack, full, inv, kinv, _ = tuple_factors(zs, lam, "OVA-IB projection score")
            coef = [[inv[i][j].to(dtype).view(m, 1, n) for j in range(i + 1)] for i in range(k)]
        sq = torch.diagonal(full, dim1=1, dim2=2).T  # (M, N) ‖z_a‖², float64
        z_ok = sq > EPS2
        sq_c = sq.clamp_min(EPS2)
        zb_inv = (beta * sq_c.rsqrt()).to(dtype)  # scale / ‖z‖: the block algebra carries the factor scale
        loss_rows = zs[0].new_empty(m, n)
        rowdot = zs[0].new_empty(m, n)
        blocks = row_blocks(n, m * n, device)
        pairs = [(i, j) for j in range(k) for i in range(j + 1)]  # the upper triangle of a k×k matrix
        # Σ over anchor rows of g₁ w_i w_j and gh w_i w_j, accumulated elementwise over the blocks, reduced at the end
        # (the numba sweep sums over the rows itself: one row)
        acc = zs[0].new_zeros(m, 2, len(pairs), 1 if fast else blocks[0].stop, n) if need_grad else None
        # K⁻¹ per candidate as coefficient rows (v = K⁻¹w in k² multiply-adds instead of L⁻¹ then L⁻ᵀ)
        kic = kinv.permute(2, 3, 0, 1).to(dtype).contiguous().view(k, k, m, 1, n) if need_grad and not fast else None
        pf.__exit__(None, None, None)
        if fast:  # the numba kernel: every anchor row in two passes over its candidates (numba_kernels.ova_sweep)
            with profile_pass("numba sweep"):
                acc_r = acc.view(m, 2, len(pairs), n) if need_grad else zs[0].new_zeros(m, 2, 1, n)
                numba_kernels.ova_sweep(cross.numpy(), linv.numpy(), kin.numpy(), zb_inv.contiguous().numpy(), lam,
                                        positive_in_denominator, need_grad, loss_rows.numpy(), rowdot.numpy(),
                                        acc_r.numpy())
            blocks = []
        if uses_inductor(kernel, fast) and need_grad:
            coef_t = torch.zeros(m, k, k, 1, n, dtype=dtype, device=device)
            for i in range(k):
                for j in range(i + 1):
                    coef_t[:, i, j] = coef[i][j]
            for r in blocks:
                with profile_pass("compiled block"):
                    out = fused.call("sufficiency_block", cross[:, :, r], coef_t, zb_inv[:, r, None],
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
            ps = profile_pass("score")
            ps.__enter__()
            wb, ws = x, xs  # y and w in place of the cross entries (their block is read once)
            lower_inplace(xs, coef)  # y = L⁻¹c
            q1 = ws[0] * ws[0]
            for i in range(1, k):
                q1.addcmul_(ws[i], ws[i])
            upper_inplace(ws, coef)  # w = L⁻ᵀy = K⁻¹c
            p = torch.addcmul(q1, ws[0], ws[0], value=-lam)  # P = ‖p‖² = q1 − λ‖w‖²
            for i in range(1, k):
                p.addcmul_(ws[i], ws[i], value=-lam)
            clamped = bool(p.min() <= EPS2)  # degenerate pairs (zero tuple or anchor): clamp, mask their factors
            if clamped:
                p_ok = p > EPS2
                p.clamp_min_(EPS2)
            inv_ = torch.rsqrt(p).mul_(zb_inv[:, r, None])  # scale / (‖z‖ √P)
            logits = q1.mul_(inv_)  # scale · s
            ps.__exit__(None, None, None)
            ps = profile_pass("cross-entropy")
            ps.__enter__()
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
                prob = torch.sub(logits, lse).exp_()
                diag.copy_(pos)
            ps.__exit__(None, None, None)
            if not need_grad:
                continue
            ps = profile_pass("gradient factors")
            ps.__enter__()
            g = prob
            g.diagonal(r0, 1, 2).sub_(1.0)  # N · ∂CE/∂logits = softmax − onehot
            rowdot[:, r] = (g * logits).sum(-1)
            gh = torch.div(logits, p)
            if clamped:
                gh.mul_(p_ok)
            gh.mul_(g)  # scale · g s/P (0 where P was clamped)
            g1 = g.mul_(inv_).add_(gh, alpha=-0.5)  # scale · g ∂s/∂q1;  g ∂s/∂q2 = (λ/2) gh
            ps.__exit__(None, None, None)
            with profile_pass("contractions over anchors"):
                e = wb.new_empty(m, 2, *wb.shape[1:])  # (M, 2, k, rb, N): g₁ w and gh w
                torch.mul(wb, g1[:, None], out=e[:, 0])
                torch.mul(wb, gh[:, None], out=e[:, 1])
                es = e.unbind(2)
                for p_, (i, j) in enumerate(pairs):
                    acc[:, :, p_, :rb].addcmul_(es[i], wb[:, None, j])
            with profile_pass("gradient of the cross entries"):
                vb = torch.empty_like(wb)
                vs = vb.unbind(1)
                for i in range(k):  # v = K⁻¹w
                    vi = torch.mul(ws[0], kic[i][0], out=vs[i])
                    for j in range(1, k):
                        vi.addcmul_(ws[j], kic[i][j])
                e1 = e[:, 0].unbind(1)
                for i in range(k):  # ∂/∂c_i = 2(g₁ w_i + (λ/2) gh v_i): into the cross block (no longer needed)
                    torch.addcmul(e1[i], vs[i], gh, value=0.5 * lam, out=xs[i])
        loss = loss_rows.mean(1)
        with profile_pass("minimality"):
            # L_M^(a) = C Σ_n ‖z_a − T/M‖² (T = Σ_b z_b, C = (M/(M−1))²/N) from the per-row Gram matrices G (float64):
            # ‖z_a − T/M‖² = G_aa − (2/M) Σ_b G_ab + (1/M²) Σ_bc G_bc
            c_min = (m / (m - 1)) ** 2 / n
            mini = (torch.diagonal(full, dim1=1, dim2=2) - (2.0 / m) * full.sum(2)
                    + full.sum((1, 2))[:, None] / (m * m)).sum(0) * c_min
            mini = mini.to(dtype)
        if need_grad:
            with profile_pass("gradient of the tuple Gram matrices"):
                sym = [pairs.index((min(i, j), max(i, j))) for i in range(k) for j in range(k)]  # mirror triangles
                s12 = acc.sum(3)[:, :, sym].to(kinv.dtype).permute(0, 3, 1, 2).reshape(m, n, 2, k, k)
                s1, s2 = s12[:, :, 0], (0.5 * lam) * s12[:, :, 1]
                s2k = s2 @ kinv
                grad_k = -(s1 + s2k + s2k.mT)  # (M, N, k, k): ∂L_a/∂K up to the factor 1/N
                grad_sq = -rowdot.to(sq.dtype) / (2.0 * sq_c) * z_ok  # (M, N): ∂L_a/∂‖z_a‖², same factor
                grad_scale = rowdot.sum(1) / (n * beta)  # (M,): ∂L_a/∂scale
                ctx.save_for_backward(cross, grad_k, grad_sq, grad_scale, zstack, *zs)
        ctx.n = n
        return loss, mini

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss, grad_mini):  # noqa: D102
        cross, grad_k, grad_sq, grad_scale, zstack, *zs = ctx.saved_tensors
        c = grad_loss.to(grad_k.dtype) / ctx.n  # ∂/∂(the per-anchor factor) of every gradient part (× scale)
        # minimality: Σ_a g_a ∂L_M^(a)/∂G_bc = C (H diag(g) H)_bc with H = I − 11ᵀ/M, the same for every row
        m = zstack.shape[1]
        h = torch.eye(m, dtype=grad_k.dtype, device=grad_k.device) - 1.0 / m
        g_rows = (h * grad_mini.to(grad_k.dtype)) @ h * ((m / (m - 1)) ** 2 / ctx.n)
        grads = pair_backward(cross, zs, zstack, (2.0 * c).tolist(), c, grad_k, grad_sq, g_rows)
        g_scale = None
        if ctx.needs_input_grad[0]:
            g_scale = (grad_loss.to(grad_scale.dtype) * grad_scale).sum()
        return g_scale, None, None, None, *grads


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
