"""GRAM's fused sweep over all anchors: the label-smoothed symmetric cross-entropy of every anchor modality and its
gradient in two passes over blocks of anchor rows (:class:`_GramAllAnchors`; the default path of
:class:`mmib.objectives.gram.GRAMLoss`; docs/methods/gram.md).
"""

from __future__ import annotations

import torch

from mmib.objectives.projection import numba_gram, numba_kernels
from mmib.objectives.projection.layout import row_blocks
from mmib.objectives.projection.pairs import (
    lower_inplace,
    pair_backward,
    pair_cross,
    tuple_factors,
    tuple_factors_numba,
    upper_inplace,
)

#: the fused GRAM passes exponentiate the logits −scale·vol directly (softmax = exp(l) / Σ exp(l), no shift by the
#: maximum, one exponential for the rows and the columns) only when scale · (a bound on vol) stays below this, so that
#: exp(l) ≥ e^−80 (far from float32's underflow at e^−87); above it, the shifted logsumexp as before
EXP_LOGIT_BOUND = 80.0


class _GramAllAnchors(torch.autograd.Function):
    """GRAM's loss for every anchor, L^(a) = ½ [CE_rows(−scale·vol_a) + CE_cols(−scale·vol_a)] with label smoothing,
    from the M unit embeddings in two passes over the N×N blocks, with the gradient formed in the forward (the
    default path of :class:`GRAMLoss`: all modalities as anchors, candidates the local embeddings).

    As :class:`mmib.objectives.projection.one_vs_all._OneVsAllSufficiency`: anchor-major blocks of all anchors at once, the Gram
    matmuls one per pair of modalities, the Cholesky factors entry by entry. Pass 1 computes the volumes (y = L⁻¹c
    and w = L⁻ᵀy in place of the cross entries), the rows' logsumexp and, online, the columns' (running max and
    sum); pass 2 the gradient: with G = ½ (softmax_rows + softmax_cols − 2(1−ε) onehot − 2ε/N) (per unit of 1/N),
    ∂L/∂vol = −scale G, g = ∂L/∂vol / (2 vol) (0 where det G was clamped), ∂L/∂c = −2 g det K w,
    ∂L/∂K = Σ_anchors g det K w wᵀ + (Σ_anchors g r) det K K⁻¹, ∂L/∂‖a‖² = Σ_t g det K, ∂L/∂scale = −Σ G vol.
    Label-smoothed CE = (1−ε) CE + ε mean_t(−log softmax) needs only each row's (column's) logsumexp and mean.
    While scale · √(max det K · max ‖a‖²) (a bound on the volumes) is below :data:`EXP_LOGIT_BOUND`, the sums
    are of exp(l) itself (no running maximum), and pass 2 forms both softmaxes from one exponential.

    With ``kernel="eager"`` on the CPU where numba imports, each pass is one numba kernel over every anchor row
    (:func:`numba_gram.gram_sweep_volumes`, :func:`numba_gram.gram_sweep_gradient`: the same quantities, the
    row's intermediates in cache-resident buffers; the columns' logsumexp above the bound from the stored volumes);
    otherwise (``"torch"``) PyTorch operations on blocks of rows.

    Inputs: ``scale`` (0-d, 1/τ), ``ridge``, ``eps`` (volume floor), ``smoothing``, ``positive_in_denominator``,
    ``kernel`` (``"eager"`` or ``"torch"``), the M unit embeddings. Output: (M,) losses.
    """

    @staticmethod
    def forward(ctx, scale, ridge, eps, smoothing, positive_in_denominator, kernel, *zs):  # noqa: D102
        m, k = len(zs), len(zs) - 1
        n = zs[0].shape[0]
        dtype, device = zs[0].dtype, zs[0].device
        need_grad = any(ctx.needs_input_grad)
        beta = float(scale)
        cross = pair_cross(zs)
        numba_pass = numba_kernels.use_numba(kernel, zs[0])
        if numba_pass:  # factors and both passes as numba kernels (numba_kernels)
            zstack, full, linv, _, kinv, det = tuple_factors_numba(zs, float(ridge), "GRAM volume")
        else:
            zstack, full, inv, kinv, det = tuple_factors(zs, float(ridge), "GRAM volume")
            coef = [[inv[i][j].to(dtype).view(m, 1, n) for j in range(i + 1)] for i in range(k)]
        det_row = det.to(dtype).view(m, 1, n)
        sq = torch.diagonal(full, dim1=1, dim2=2).T.to(dtype)  # (M, N) ‖a‖²
        vol = zs[0].new_empty(m, n, n)
        lse_row = zs[0].new_empty(m, n)
        col_max = zs[0].new_full((m, n), torch.finfo(dtype).min)  # finite: a block may hide a whole column
        col_sum = zs[0].new_zeros(m, n)
        mean_row = zs[0].new_empty(m, n)
        mean_col = zs[0].new_zeros(m, n)
        diag_l = zs[0].new_empty(m, n)
        masks: dict[int, torch.Tensor] = {}
        blocks = row_blocks(n, m * n, device)
        # vol ≤ √(det K ‖a‖²): while scale times that bound stays below EXP_LOGIT_BOUND, the softmaxes are
        # exp(l) / Σ exp(l) without a shift (one exponential per pass serves the rows and the columns)
        fast = beta * float((det.max() * torch.diagonal(full, dim1=1, dim2=2).max()).sqrt()) < EXP_LOGIT_BOUND
        if numba_pass:  # pass 1 as a numba kernel (numba_gram.gram_sweep_volumes): the same quantities
            numba_gram.gram_sweep_volumes(
                cross.numpy(), linv.numpy(), det_row.view(m, n).numpy(), sq.contiguous().numpy(), beta, eps,
                positive_in_denominator, fast, vol.numpy(), lse_row.numpy(), col_sum.numpy(), mean_row.numpy(),
                mean_col.numpy(), diag_l.numpy())
            if not fast:  # the columns' logsumexp from the volumes (negative where clamped)
                logits = vol.abs().mul_(-beta)
                if not positive_in_denominator:
                    logits.diagonal(0, 1, 2).fill_(float("-inf"))
                col_max, col_sum = torch.logsumexp(logits, 1), torch.ones_like(col_sum)  # lse_col = log 1 + lse
            blocks = []
        for bi, r in enumerate(blocks):  # pass 1: volumes, row logsumexp, column logsumexp online
            r0 = r.start
            xs = cross[:, :, r].unbind(1)
            lower_inplace(xs, coef)  # y = L⁻¹c
            q = xs[0] * xs[0]
            for i in range(1, k):
                q.addcmul_(xs[i], xs[i])
            upper_inplace(xs, coef)  # w = L⁻ᵀy = K⁻¹c, kept for pass 2
            dg = torch.sub(sq[:, r, None], q).mul_(det_row)  # det G = det K (‖a‖² − cᵀK⁻¹c)
            if bool(dg.min() <= eps):
                masks[bi] = dg > eps
                dg.clamp_min_(eps)
            v = torch.sqrt(dg, out=vol[:, r])
            logits = v * (-beta)
            diag_l[:, r] = logits.diagonal(r0, 1, 2)
            mean_row[:, r] = logits.mean(-1)
            mean_col.add_(logits.sum(1), alpha=1.0 / n)
            if not positive_in_denominator:
                logits.diagonal(r0, 1, 2).fill_(float("-inf"))
            if fast:
                e = logits.exp_()
                torch.sum(e, -1, out=lse_row[:, r])
                col_sum.add_(e.sum(1))
                continue
            lse_row[:, r] = torch.logsumexp(logits, -1)
            new_max = torch.maximum(col_max, logits.amax(1))
            col_sum.mul_((col_max - new_max).exp_()).add_(logits.sub_(new_max[:, None]).exp_().sum(1))
            col_max = new_max
        if fast:
            lse_row.log_()
            lse_col = col_sum.log_()
        else:
            lse_col = col_sum.log_().add_(col_max)
        sm = float(smoothing)
        ce_row = lse_row - (1.0 - sm) * diag_l - sm * mean_row
        ce_col = lse_col - (1.0 - sm) * diag_l - sm * mean_col
        loss = 0.5 * (ce_row.mean(1) + ce_col.mean(1))
        if not need_grad:
            return loss
        pairs = [(i, j) for j in range(k) for i in range(j + 1)]
        # Σ_rows g det K w_i w_j, accumulated elementwise over the blocks (the numba kernel: over the rows), reduced
        acc = zs[0].new_zeros(m, len(pairs), 1 if numba_pass else row_blocks(n, m * n, device)[0].stop, n)
        g_det = zs[0].new_zeros(m, n)  # Σ_rows g r
        grad_sq = zs[0].new_empty(m, n)
        gvol = zs[0].new_zeros(m)
        shift = 2.0 * sm / n
        if fast:
            inv_row, inv_col = lse_row.neg().exp_(), lse_col.neg().exp_()
        if numba_pass:  # pass 2 as a numba kernel (numba_gram.gram_sweep_gradient)
            row_f, col_f = (inv_row, inv_col) if fast else (lse_row, lse_col)
            numba_gram.gram_sweep_gradient(
                cross.numpy(), vol.numpy(), det_row.view(m, n).numpy(), beta, row_f.contiguous().numpy(),
                col_f.contiguous().numpy(), fast, positive_in_denominator,
                2.0 * (1.0 - sm), shift, acc.view(m, len(pairs), n).numpy(), g_det.numpy(), grad_sq.numpy(),
                gvol.numpy())
        for bi, r in enumerate(blocks):  # pass 2: the gradient
            r0, rb = r.start, r.stop - r.start
            v = vol[:, r]
            logits = v * (-beta)
            if fast:  # exp(l − lse_row) + exp(l − lse_col) = exp(l) (1/Σ_row + 1/Σ_col)
                e = logits.exp_()
                g = torch.mul(e, inv_row[:, r, None]).addcmul_(e, inv_col[:, None, :])
            else:
                g = torch.sub(logits, lse_row[:, r, None]).exp_()
                g.add_(torch.sub(logits, lse_col[:, None, :]).exp_())
            gd = g.diagonal(r0, 1, 2)
            if positive_in_denominator:
                gd.sub_(2.0 * (1.0 - sm))
            else:
                gd.fill_(-2.0)
            if shift:
                g.sub_(shift)
            gv = g * v  # Σ G vol → ∂/∂scale; G vol / (2 det K) = G r / (2 vol)
            gvol.add_(gv.sum((1, 2)))
            gr = g.div_(v).mul_(0.5)  # G / (2 vol)
            if bi in masks:
                gr.mul_(masks[bi])
                gv.mul_(masks[bi])
            g_det.add_(gv.sum(1), alpha=0.5)  # Σ_rows G r / (2 vol) · det K
            gd_ = gr.mul_(det_row)  # G det K / (2 vol)
            grad_sq[:, r] = gd_.sum(-1)
            w = cross[:, :, r]
            e = w * gd_[:, None]  # (M, k, rb, N)
            es, ws = e.unbind(1), w.unbind(1)
            for p_, (i, j) in enumerate(pairs):
                acc[:, p_, :rb].addcmul_(es[i], ws[j])
            w.copy_(e)  # ∂L/∂c = −2 G det K w / (2 vol), per unit of −2 (−scale/N)(½): into the cross block
        # per unit of α = −scale/(2N) (½ from the average of the two directions, 1/N from the means):
        sym = [pairs.index((min(i, j), max(i, j))) for i in range(k) for j in range(k)]
        s1 = acc.sum(2)[:, sym].to(kinv.dtype).permute(0, 2, 1).reshape(m, n, k, k)
        grad_k = s1 + g_det.to(kinv.dtype)[:, :, None, None] * kinv  # + (Σ_rows G r / (2 vol)) · det K · K⁻¹
        ctx.save_for_backward(cross, grad_k, grad_sq.to(kinv.dtype), gvol, zstack, *zs)
        ctx.beta, ctx.n = beta, n
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):  # noqa: D102
        cross, grad_k, grad_sq, gvol, zstack, *zs = ctx.saved_tensors
        c = grad_loss.to(grad_k.dtype) * (-0.5 * ctx.beta / ctx.n)  # ∂L/∂vol = −scale·½·G/N
        grads = pair_backward(cross, zs, zstack, (-2.0 * c).tolist(), c, grad_k, grad_sq)
        g_scale = None
        if ctx.needs_input_grad[0]:  # ∂L/∂scale = Σ (½ G/N)(−vol)
            g_scale = (grad_loss.to(gvol.dtype) * gvol).sum() * (-0.5 / ctx.n)
        return g_scale, None, None, None, None, None, *grads


class _GramTwoModalities(torch.autograd.Function):
    """GRAM's all-anchors loss at M = 2 from one volume matrix: vol[n, t] = √max(‖a_n‖²(‖b_t‖² + λ) − c², ε) with
    c = Z_a Z_bᵀ (the Schur complement at k = 1), L = ½ [CE_rows(−scale·vol) + CE_cols(−scale·vol)] label-smoothed,
    and its gradient formed in the forward (one Gram matmul and two in the backward, as pairwise CLIP).

    The second anchor's volume matrix is this one's transpose up to where the ridge enters (λ‖b_t‖² against
    λ‖a_n‖²), so on unit embeddings (the caller checks that no row is zero) the two anchors' losses agree to float
    rounding and one is computed. The softmaxes are exp(l) / Σ exp(l) without a shift (the caller checks that
    scale · vol stays below :data:`EXP_LOGIT_BOUND`), so that one exponential serves the rows and the columns.
    With G = ∂L/∂l = (softmax_rows + softmax_cols − 2(1−ε) onehot − 2ε/N) / (2N) and t = G/vol (0 where the
    volume was clamped): ∂L/∂c = scale · t c, ∂L/∂‖a_n‖² = −(scale/2) Σ_t t (‖b_t‖² + λ), ∂L/∂‖b_t‖² =
    −(scale/2) Σ_n t ‖a_n‖², ∂L/∂scale = −Σ G vol.
    """

    @staticmethod
    def forward(ctx, scale, ridge, eps, smoothing, za, zb):  # noqa: D102
        beta, sm = float(scale), float(smoothing)
        n, dtype = za.shape[0], za.dtype
        sq_a = (za.to(torch.float64) ** 2).sum(-1)
        sq_b = (zb.to(torch.float64) ** 2).sum(-1) + ridge
        c = za @ zb.T
        vol = torch.outer(sq_a.to(dtype), sq_b.to(dtype)).addcmul_(c, c, value=-1.0)  # det G
        mask = None
        if bool(vol.min() <= eps):
            mask = vol > eps
            vol.clamp_min_(eps)
        vol.sqrt_()
        e = torch.mul(vol, -beta).exp_()  # exp(l), l = −scale·vol
        rs, cs = e.sum(1), e.sum(0)
        mean_r, mean_c = vol.mean(1) * -beta, vol.mean(0) * -beta
        diag_l = vol.diagonal() * -beta
        ce_r = rs.log() - (1.0 - sm) * diag_l - sm * mean_r
        ce_c = cs.log() - (1.0 - sm) * diag_l - sm * mean_c
        loss = 0.5 * (ce_r.mean() + ce_c.mean())
        if not any(ctx.needs_input_grad):
            return loss
        g = torch.mul(e, rs.reciprocal_()[:, None]).addcmul_(e, cs.reciprocal_()[None, :])  # the softmaxes' sum
        del e
        g.diagonal().sub_(2.0 * (1.0 - sm))
        if sm:
            g.sub_(2.0 * sm / n)  # 2N · G
        g_scale = -torch.dot(g.view(-1), vol.view(-1)) / (2 * n)  # ∂L/∂scale = −Σ G vol
        t = g.div_(vol)
        if mask is not None:
            t.mul_(mask)
        g_sa = t @ sq_b.to(dtype)  # Σ_t t (‖b_t‖² + λ)
        g_sb = t.T @ sq_a.to(dtype)
        gc = t.mul_(c)
        ctx.save_for_backward(gc, g_sa, g_sb, g_scale, za, zb)
        ctx.beta, ctx.n = beta, n
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):  # noqa: D102
        gc, g_sa, g_sb, g_scale, za, zb = ctx.saved_tensors
        f = grad_loss * (ctx.beta / (2 * ctx.n))  # ∂L/∂c = f · gc, ∂L/∂‖a‖² = −(f/2) g_sa (∂‖a‖²/∂a = 2a)
        grad_a = torch.addmm(za * (g_sa * -f)[:, None], gc, zb, alpha=f)
        grad_b = torch.addmm(zb * (g_sb * -f)[:, None], gc.T, za, alpha=f)
        gs = grad_loss * g_scale if ctx.needs_input_grad[0] else None
        return gs, None, None, None, grad_a, grad_b


def gram_two_modalities(za: torch.Tensor, zb: torch.Tensor, scale: torch.Tensor, ridge: float, eps: float,
                        smoothing: float) -> torch.Tensor | None:
    """GRAM's all-anchors loss for M = 2 unit embeddings (:class:`_GramTwoModalities`; the standard InfoNCE form),
    or None when its conditions do not hold (a zero row, where the two anchors' volume matrices differ by the
    ridge, scale · vol possibly above :data:`EXP_LOGIT_BOUND`, or not on the CPU, where it is not measured): then
    the caller runs :class:`_GramAllAnchors`."""
    if za.device.type != "cpu":
        return None
    sq_a, sq_b = (za.detach() ** 2).sum(-1), (zb.detach() ** 2).sum(-1)
    if bool(torch.minimum(sq_a.min(), sq_b.min()) < 0.5):
        return None
    beta = float(scale.detach()) if isinstance(scale, torch.Tensor) else float(scale)
    bound = beta * (float(sq_a.max()) * (float(sq_b.max()) + ridge)) ** 0.5
    if not bound < EXP_LOGIT_BOUND:
        return None
    return _GramTwoModalities.apply(scale, float(ridge), float(eps), float(smoothing), za, zb)
