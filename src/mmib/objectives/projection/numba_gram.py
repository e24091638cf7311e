"""GRAM's fused sweep over all anchors as numba kernels (``kernel="eager"`` where numba imports): pass 1, the volumes
and the rows' / columns' softmax sums (:func:`gram_sweep_volumes`), and pass 2, the gradient
(:func:`gram_sweep_gradient`), for :class:`mmib.objectives.projection.all_anchors._GramAllAnchors`. Compiled,
cached and imported as the kernels of :mod:`mmib.objectives.projection.numba_kernels` (same fast-math flags).
"""

from __future__ import annotations

import numpy as np

from mmib.objectives.projection.numba_kernels import jitted


def _gram_rows1(cross, linv, det, sq, beta, eps, pid, fast, vol, lse_row, col_sum, mean_row, mean_col, diag_l):
    """Pass 1 of :func:`gram_sweep` (arguments as there)."""
    m, k, n = cross.shape[0], cross.shape[1], cross.shape[3]
    dt = cross.dtype
    y = np.empty((k, n), dt)
    q = np.empty(n, dt)
    lg = np.empty(n, dt)
    zero = dt.type(0.0)
    eps_t = dt.type(eps)
    nbeta = dt.type(-beta)
    inv_n = dt.type(1.0 / n)
    for a in range(m):
        for r in range(n):
            for i in range(k):  # y = L⁻¹c
                yi = y[i]
                lij = linv[a, i, 0]
                c0 = cross[a, 0, r]
                for t in range(n):
                    yi[t] = lij[t] * c0[t]
                for j in range(1, i + 1):
                    lij = linv[a, i, j]
                    cj = cross[a, j, r]
                    for t in range(n):
                        yi[t] += lij[t] * cj[t]
            y0 = y[0]
            for t in range(n):
                q[t] = y0[t] * y0[t]
            for i in range(1, k):
                yi = y[i]
                for t in range(n):
                    q[t] += yi[t] * yi[t]
            for i in range(k):  # w = L⁻ᵀy = K⁻¹c in place of the cross entries (for pass 2)
                wi = cross[a, i, r]
                lii = linv[a, i, i]
                yi = y[i]
                for t in range(n):
                    wi[t] = lii[t] * yi[t]
                for j in range(i + 1, k):
                    lji = linv[a, j, i]
                    yj = y[j]
                    for t in range(n):
                        wi[t] += lji[t] * yj[t]
            sa = sq[a, r]
            va = vol[a, r]
            da = det[a]
            mr = zero
            for t in range(n):  # det G = det K (‖a‖² − cᵀK⁻¹c), clamped at eps (marked by a negative volume)
                dg = (sa - q[t]) * da[t]
                ok = dg > eps_t
                v = np.sqrt(dg if ok else eps_t)
                va[t] = v if ok else -v
                lt = nbeta * v
                lg[t] = lt
                mr += lt
            mean_row[a, r] = mr * inv_n
            diag_l[a, r] = lg[r]
            mc = mean_col[a]
            for t in range(n):
                mc[t] += lg[t] * inv_n
            if not pid:
                lg[r] = -np.inf
            if fast:  # exp(l) unshifted: the caller checked scale · (a bound on vol) < EXP_LOGIT_BOUND
                cs = col_sum[a]
                s = zero
                for t in range(n):
                    e = np.exp(lg[t])
                    s += e
                    cs[t] += e
                lse_row[a, r] = s
            else:
                mx = lg[0]
                for t in range(1, n):
                    mx = max(mx, lg[t])
                s = zero
                for t in range(n):
                    s += np.exp(lg[t] - mx)
                lse_row[a, r] = mx + np.log(s)


def _gram_rows2(cross, vol, det, beta, row_f, col_f, fast, pid, diag_sub, shift, acc, g_det, grad_sq, gvol):
    """Pass 2 of :func:`gram_sweep` (arguments as there)."""
    m, k, n = cross.shape[0], cross.shape[1], cross.shape[3]
    dt = cross.dtype
    g = np.empty(n, dt)
    zero = dt.type(0.0)
    half = dt.type(0.5)
    nbeta = dt.type(-beta)
    shift = dt.type(shift)
    diag_sub = dt.type(diag_sub)
    for a in range(m):
        gsum = zero
        da = det[a]
        gd_a = g_det[a]
        cf = col_f[a]
        for r in range(n):
            va = vol[a, r]
            rf = row_f[a, r]
            if fast:  # softmax_rows + softmax_cols = exp(l) (1/Σ_row + 1/Σ_col)
                for t in range(n):
                    g[t] = np.exp(nbeta * abs(va[t])) * (rf + cf[t])
            else:
                for t in range(n):
                    lt = nbeta * abs(va[t])
                    g[t] = np.exp(lt - rf) + np.exp(lt - cf[t])
            if pid:
                g[r] -= diag_sub
            else:
                g[r] = dt.type(-2.0)
            gs = zero
            for t in range(n):  # G = g − 2ε/N; Σ G vol (∂/∂scale); G/(2 vol) det K (0 where det G was clamped)
                v = va[t]
                av = abs(v)
                gt = g[t] - shift
                gv = gt * av
                gsum += gv
                ok = v > zero
                gd_a[t] += half * gv if ok else zero
                gd = half * gt / av * da[t] if ok else zero
                g[t] = gd
                gs += gd
            grad_sq[a, r] = gs
            p_ = 0
            for j in range(k):  # Σ_rows G det K/(2 vol) w_i w_j, then ∂/∂c (per unit) into the cross entries
                wj = cross[a, j, r]
                for i in range(j + 1):
                    ap = acc[a, p_]
                    wi = cross[a, i, r]
                    for t in range(n):
                        ap[t] += g[t] * wi[t] * wj[t]
                    p_ += 1
            for i in range(k):
                wi = cross[a, i, r]
                for t in range(n):
                    wi[t] = g[t] * wi[t]
        gvol[a] = gsum


def gram_sweep_volumes(cross, linv, det, sq, beta, eps, positive_in_denominator, fast, vol, lse_row, col_sum,
                       mean_row, mean_col, diag_l):
    """Pass 1 of GRAM's fused sweep (:class:`mmib.objectives.projection.all_anchors._GramAllAnchors`) over every
    anchor row (numpy arrays of one dtype, C order). ``cross`` (M, k, N, N): the cross entries, overwritten by
    w = K⁻¹c; ``linv`` (M, k, k, N): L⁻¹ per candidate; ``det`` (M, N): det K; ``sq`` (M, N): ‖a‖². Writes ``vol``
    (M, N, N): the volumes, negative where det G was clamped at ``eps``; ``lse_row`` (M, N): the rows' Σ exp(l)
    (``fast``) or logsumexp; ``mean_row``, ``diag_l`` (M, N); adds the columns' mean logits to ``mean_col`` and,
    when ``fast``, their Σ exp(l) to ``col_sum`` (M, N). l = −scale·vol; the diagonal leaves the sums unless
    ``positive_in_denominator``."""
    jitted(_gram_rows1)(cross, linv, det, sq, float(beta), float(eps), bool(positive_in_denominator), bool(fast),
                         vol, lse_row, col_sum, mean_row, mean_col, diag_l)


def gram_sweep_gradient(cross, vol, det, beta, row_f, col_f, fast, positive_in_denominator, diag_sub, shift, acc,
                        g_det, grad_sq, gvol):
    """Pass 2 of GRAM's fused sweep: from ``cross`` = w and ``vol`` of pass 1 and the rows' / columns' ``row_f`` /
    ``col_f`` (M, N) (1/Σ exp(l) when ``fast``, else the logsumexps), with G = softmax_rows + softmax_cols −
    ``diag_sub`` on the diagonal (−2 there when not ``positive_in_denominator``) − ``shift``: adds Σ_rows
    G det K/(2 vol) w_i w_j to ``acc`` (M, k(k+1)/2, N) and Σ_rows G vol/2 (clamped entries excluded) to ``g_det``
    (M, N); writes ``grad_sq`` (M, N) = Σ_t G det K/(2 vol), ``gvol`` (M,) = Σ G vol and G det K/(2 vol) w into
    ``cross``."""
    jitted(_gram_rows2)(cross, vol, det, float(beta), row_f, col_f, bool(fast), bool(positive_in_denominator),
                         float(diag_sub), float(shift), acc, g_det, grad_sq, gvol)
